//! `bnn demo`: the whole flow on the paper's 1-D curve in well under a minute — train with Bayes by Backprop,
//! prune by signal-to-noise ratio, export a sparse f16 file, load it back, predict inside and far outside
//! the data, and draw the picture.

use anyhow::Context;
use bnn_runtime::{Model, ModelWriter, PredictOptions, StorageDtype};
use bnn_trainer::prune::{prune, Criterion};
use bnn_trainer::{Recipe, Run};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

const RECIPE: &str = include_str!("../../../models/curve-bbb.toml");

#[derive(Args)]
pub struct DemoArgs {
    /// Where the models and the picture go.
    #[arg(long, default_value = "runs/demo")]
    out_dir: PathBuf,
    /// Fraction of weights removed by SNR pruning.
    #[arg(long, default_value_t = 0.5)]
    sparsity: f64,
}

pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    anyhow::ensure!((0.0..=1.0).contains(&a.sparsity), "--sparsity must lie in [0, 1], found {}", a.sparsity);
    std::fs::create_dir_all(&a.out_dir).with_context(|| format!("creating {}", a.out_dir.display()))?;
    let recipe = Recipe::from_toml(RECIPE)?;
    eprintln!(
        "1/5 training a Bayesian MLP on the 1-D curve (recipe models/curve-bbb.toml, {} epochs)",
        recipe.training.epochs
    );
    let mut run = Run::new(recipe, None, candle_core::Device::Cpu)?;
    run.recipe_source = Some(RECIPE.to_string());
    run.train(None, &mut super::progress::TrainBar::new("    [{bar:40}] {pos}/{len} steps {per_sec}", 100)?)?;
    let model = run.export()?;
    let dense_path = a.out_dir.join("curve-bbb.safetensors");
    ModelWriter::new(&model).write(&dense_path)?;

    eprintln!("2/5 pruning {:.0}% of the weights by signal-to-noise ratio", 100.0 * a.sparsity);
    let (pruned, report) = prune(&model, a.sparsity, Criterion::Snr, 0)?;
    let pruned_path = a.out_dir.join("curve-bbb-pruned-f16.safetensors");
    eprintln!("3/5 exporting the survivors sparsely in f16");
    ModelWriter::new(&pruned).dtype(StorageDtype::F16).write(&pruned_path)?;
    eprintln!(
        "    {} ({} bytes) -> {} ({} bytes), SNR threshold {:.3}",
        dense_path.display(),
        std::fs::metadata(&dense_path)?.len(),
        pruned_path.display(),
        std::fs::metadata(&pruned_path)?.len(),
        report.threshold
    );

    eprintln!("4/5 predicting with the runtime from the pruned file (x in the data is in [0, 0.5])");
    let loaded = Model::load(&pruned_path)?;
    for x in [0.25f32, 0.75, 1.25] {
        let p = loaded.predict(&[x], &PredictOptions::default().samples(256).seed(1))?;
        println!("x = {x}:\n{}", super::report::describe(&loaded, &p));
    }

    eprintln!("5/5 drawing the predictive distribution");
    let picture = a.out_dir.join("curve.png");
    // The run's own copy of the data is normalised; the runtime model takes raw inputs.
    let raw = bnn_trainer::data::load(&run.recipe.data, None, run.recipe.training.seed)?;
    let truth = bnn_trainer::data::conditional_mean(&run.recipe.data);
    println!("{}", super::report::regression_picture(&loaded, &raw.train, &raw.test, truth, &picture, 256)?.markdown());
    eprintln!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
