//! `bnn calibrate`: fit a model's calibration on examples training never saw — the validation set its recipe
//! held out (`training.validation`) — and write the calibrated model: for a classifier temperature, conformal
//! prediction sets at the asked levels and an abstention threshold; for a regression model conformal intervals.
//! The test set is never used.

use anyhow::Context;
use bnn_runtime::{CalibrationSplit, ConformalLevel, Model, ModelWriter, PredictOptions, StorageDtype, Task};
use bnn_trainer::calibrate::{fit, fit_regression, AbstainTarget, CalibrationRequest};
use bnn_trainer::data::Targets;
use bnn_trainer::evaluate::predict_all;
use bnn_trainer::train::recipe_data;
use bnn_trainer::Recipe;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct CalibrateArgs {
    /// The trained classifier.
    #[arg(long)]
    model: PathBuf,
    /// Where to write the calibrated model.
    #[arg(long)]
    out: PathBuf,
    /// MNIST directory or CSV file, as for training [default: as the recipe says, or $BNN_MNIST_DIR].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Conformal levels (nominal coverages) of the sets or intervals, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.9,0.95,0.99")]
    levels: Vec<f32>,
    /// Abstain below the confidence that still answers this share of the calibration examples.
    #[arg(long, conflicts_with = "abstain_risk")]
    abstain_coverage: Option<f32>,
    /// Abstain below the lowest confidence at which the answered calibration examples err at most this often
    /// (an estimate on the calibration split, without a finite-sample guarantee).
    #[arg(long)]
    abstain_risk: Option<f32>,
    /// Monte-Carlo samples per prediction.
    #[arg(long, default_value_t = 32, value_parser = super::positive_count)]
    samples: usize,
    /// Use at most this many of the calibration examples.
    #[arg(long, value_parser = super::positive_count)]
    examples: Option<usize>,
    /// Storage dtype of the written model: f32, f16 or bf16 [default: the input's].
    #[arg(long)]
    dtype: Option<StorageDtype>,
    #[arg(long, default_value_t = 2, value_parser = super::positive_count)]
    threads: usize,
}

pub fn run(a: CalibrateArgs) -> anyhow::Result<()> {
    super::refuse_overwriting(&a.out, &[("input model", &a.model)])?;
    let bytes = std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let model = Model::from_bytes(&bytes).with_context(|| format!("loading {}", a.model.display()))?;
    let text =
        model.provenance().recipe.clone().context("the model's provenance holds no recipe: its data is unknown")?;
    let recipe = Recipe::from_toml(&text)?;
    let (_, validation) = recipe_data(&recipe, a.data.as_deref())?;
    let held = validation.with_context(|| {
        "the model's recipe held out no validation set (training.validation = 0): every training example was \
         seen in training, so conformal guarantees would not hold; retrain with training.validation > 0"
    })?;
    let held = held.first(a.examples.unwrap_or(usize::MAX));
    eprintln!("calibrating on {} held-out validation examples, S = {}", held.len(), a.samples);
    let options = PredictOptions::default().samples(a.samples).seed(recipe.training.seed);
    let split = CalibrationSplit {
        examples: held.len(),
        seed: recipe.training.seed,
        source: format!(
            "the recipe's validation set: {} training examples held out of training (seeded draw)",
            recipe.training.validation
        ),
    };
    let thresholds = |levels: &[ConformalLevel]| -> String {
        levels.iter().map(|s| format!("{:.0}%: {:.4}", 100.0 * s.level, s.threshold)).collect::<Vec<_>>().join(", ")
    };
    let calibration = match (&held.targets, model.task()) {
        (Targets::Classes { labels, .. }, Task::Classification { .. }) => {
            let predictions = predict_all(&model, &held, &options, a.threads)?;
            let abstain = match (a.abstain_coverage, a.abstain_risk) {
                (Some(c), _) => Some(AbstainTarget::Coverage(c)),
                (None, Some(r)) => Some(AbstainTarget::Risk(r)),
                (None, None) => None,
            };
            let c = fit(&predictions, labels, &CalibrationRequest { levels: a.levels.clone(), abstain, split })?;
            eprintln!("temperature {:.4}; set thresholds {}", c.temperature, thresholds(&c.sets));
            if let Some(t) = c.abstain_below {
                eprintln!("abstain below confidence {t:.4}");
            }
            c
        }
        (Targets::Values { values, .. }, Task::Regression { .. }) => {
            anyhow::ensure!(
                a.abstain_coverage.is_none() && a.abstain_risk.is_none(),
                "abstention is for classifiers; a regression model gets conformal intervals"
            );
            let predictions = model.predict_batch_parallel(&held.inputs, &options, a.threads)?;
            let predictions: Vec<_> = predictions.iter().filter_map(|p| p.as_regression().cloned()).collect();
            let c = fit_regression(&predictions, values, &a.levels, split)?;
            eprintln!("interval thresholds (in predicted total sd) {}", thresholds(&c.intervals));
            c
        }
        _ => anyhow::bail!("the recipe's data does not match the model's task"),
    };
    let calibrated = model.with_calibration(Some(calibration))?;
    let dtype = match a.dtype {
        Some(d) => d,
        None => stored_dtype(&bytes)?,
    };
    ModelWriter::new(&calibrated).dtype(dtype).write(&a.out)?;
    eprintln!("wrote {} ({} bytes, {dtype})", a.out.display(), std::fs::metadata(&a.out)?.len());
    Ok(())
}

/// The dtype the model file stores its values in (the writer stores every value tensor in one dtype; the
/// index tensors of sparse layers are integers).
fn stored_dtype(bytes: &[u8]) -> anyhow::Result<StorageDtype> {
    let file = safetensors::SafeTensors::deserialize(bytes)?;
    let dtypes: Vec<safetensors::Dtype> = file.tensors().iter().map(|(_, view)| view.dtype()).collect();
    Ok(if dtypes.contains(&safetensors::Dtype::F16) {
        StorageDtype::F16
    } else if dtypes.contains(&safetensors::Dtype::BF16) {
        StorageDtype::Bf16
    } else {
        StorageDtype::F32
    })
}
