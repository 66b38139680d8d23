//! `bnn predict`: one prediction with its uncertainty, from numbers on the command line or an MNIST test image.

use anyhow::Context;
use bnn_runtime::{Model, PredictOptions, Prediction, Sampler};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum SamplerArg {
    LocalReparam,
    WeightSampling,
    Mean,
}

impl From<SamplerArg> for Sampler {
    fn from(s: SamplerArg) -> Self {
        match s {
            SamplerArg::LocalReparam => Sampler::LocalReparam,
            SamplerArg::WeightSampling => Sampler::WeightSampling,
            SamplerArg::Mean => Sampler::Mean,
        }
    }
}

#[derive(Args)]
pub struct PredictArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// Input features, comma-separated (raw, before normalisation).
    #[arg(long, allow_hyphen_values = true, conflicts_with = "mnist_test")]
    input: Option<String>,
    /// Use image N of the MNIST test set as input.
    #[arg(long)]
    mnist_test: Option<usize>,
    /// MNIST directory for --mnist-test [default: $BNN_MNIST_DIR].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Monte-Carlo samples.
    #[arg(long, default_value_t = 32)]
    samples: usize,
    /// Stop early once the standard error of the mean is below this (at most --samples).
    #[arg(long)]
    tolerance: Option<f32>,
    #[arg(long, value_enum, default_value = "local-reparam")]
    sampler: SamplerArg,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    let model = Model::load(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
    let (input, truth) = match (&a.input, a.mnist_test) {
        (Some(text), _) => (parse_input(text)?, None),
        (None, Some(i)) => {
            let dir = bnn_trainer::data::mnist_dir(a.data.as_deref(), None)?;
            let test = bnn_trainer::data::load_mnist_test(&dir, Some(i + 1))?;
            anyhow::ensure!(i < test.len(), "the MNIST test set has {} images", test.len());
            let bnn_trainer::data::Targets::Classes { labels, .. } = &test.targets else { unreachable!() };
            (test.input(i).to_vec(), Some(labels[i]))
        }
        (None, None) => anyhow::bail!("give --input V1,V2,... or --mnist-test N"),
    };
    let mut options = PredictOptions::default().samples(a.samples).seed(a.seed).sampler(a.sampler.into());
    if let Some(t) = a.tolerance {
        options = options.adaptive(a.samples, t);
    }
    let p = model.predict(&input, &options)?;
    print!("{}", describe(&model, &p));
    if let Some(t) = truth {
        println!("true label       {t}");
    }
    Ok(())
}

fn parse_input(text: &str) -> anyhow::Result<Vec<f32>> {
    text.split(',').map(|s| s.trim().parse::<f32>().with_context(|| format!("`{s}` is not a number"))).collect()
}

/// A readable report of a prediction.
pub fn describe(model: &Model, p: &Prediction) -> String {
    match p {
        Prediction::Classification(c) => {
            let labels = match model.task() {
                bnn_runtime::Task::Classification { labels, .. } => labels.clone(),
                _ => vec![],
            };
            let name = |k: usize| labels.get(k).cloned().unwrap_or_else(|| k.to_string());
            let mut ranked: Vec<usize> = (0..c.probabilities.len()).collect();
            ranked.sort_by(|a, b| c.probabilities[*b].total_cmp(&c.probabilities[*a]));
            let top: Vec<String> =
                ranked.iter().take(3).map(|k| format!("{}: {:.4}", name(*k), c.probabilities[*k])).collect();
            format!(
                "class            {}\nprobabilities    {}\npredictive entropy (total)      {:.4} nats\nexpected entropy (aleatoric)    {:.4} nats\nmutual information (epistemic)  {:.4} nats\nsamples used     {}\n",
                name(c.class),
                top.join(", "),
                c.predictive_entropy,
                c.expected_entropy,
                c.mutual_information,
                c.samples_used
            )
        }
        Prediction::Regression(r) => {
            let mut s = String::new();
            for k in 0..r.mean.len() {
                s += &format!(
                    "output {k}: mean {:.4}  aleatoric var {:.5}  epistemic var {:.5}  total var {:.5}  {:.0}% interval [{:.4}, {:.4}]\n",
                    r.mean[k],
                    r.aleatoric_variance[k],
                    r.epistemic_variance[k],
                    r.total_variance[k],
                    100.0 * r.interval_level,
                    r.lower[k],
                    r.upper[k]
                );
            }
            s + &format!("samples used {}\n", r.samples_used)
        }
    }
}
