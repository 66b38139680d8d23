//! `bnn train`: fit a recipe, checkpoint every epoch, export the model.

use anyhow::Context;
use bnn_runtime::ModelWriter;
use bnn_trainer::{Recipe, Run};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// The TOML recipe.
    #[arg(long)]
    recipe: PathBuf,
    /// Where to write the trained model (.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Data directory (MNIST) or file (CSV); overrides the recipe and BNN_MNIST_DIR.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Override the recipe's number of epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Checkpoint file, rewritten atomically after every epoch [default: OUT.ckpt].
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Also checkpoint inside an epoch once this many seconds have passed since the last checkpoint.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    checkpoint_every: f64,
    /// Continue from the checkpoint instead of starting over.
    #[arg(long)]
    resume: bool,
    /// Start over even though the checkpoint exists, replacing it.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// `cpu`, or `cuda[:N]` with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let checkpoint = a.checkpoint.clone().unwrap_or_else(|| a.out.with_extension("ckpt"));
    let mut inputs = vec![("recipe", a.recipe.as_path())];
    inputs.extend(a.data.as_deref().map(|d| ("data", d)));
    super::refuse_overwriting(&checkpoint, &inputs)?;
    inputs.push(("checkpoint", checkpoint.as_path()));
    super::refuse_overwriting(&a.out, &inputs)?;
    if checkpoint.exists() && !a.resume && !a.force {
        anyhow::bail!(
            "the checkpoint {} exists (a run's progress): pass --resume to continue it, or --force to start over \
             and replace it",
            checkpoint.display()
        );
    }
    let text = std::fs::read_to_string(&a.recipe).with_context(|| format!("reading {}", a.recipe.display()))?;
    let mut recipe = Recipe::from_toml(&text)?;
    if let Some(e) = a.epochs {
        recipe.training.epochs = e;
    }
    recipe.validate()?;
    let dtype: bnn_runtime::StorageDtype = recipe.export.dtype.parse()?;
    let mut run = Run::new(recipe, a.data.as_deref(), super::device(&a.device)?)?;
    run.recipe_source = Some(text);
    run.checkpoint_every = std::time::Duration::try_from_secs_f64(a.checkpoint_every)
        .map_err(|e| anyhow::anyhow!("--checkpoint-every {}: {e}", a.checkpoint_every))?;
    if a.resume {
        run.resume_from(&checkpoint).with_context(|| format!("resuming from {}", checkpoint.display()))?;
        eprintln!("resumed from {} after epoch {}", checkpoint.display(), run.epochs_done);
    }
    eprintln!(
        "training on {} examples ({} test), {} inputs",
        run.split.train.len(),
        run.split.test.len(),
        run.split.train.dim
    );
    let beta = run.recipe.training.kl_scale;
    if beta != 1.0 {
        eprintln!("the KL term is weighted {beta} (a tempered posterior): the elbo column is -(NLL + {beta} KL / N)");
    }
    run.train(Some(&checkpoint), &mut super::progress::TrainBar::standard()?)?;
    let model = run.export()?;
    ModelWriter::new(&model).dtype(dtype).write(&a.out)?;
    let size = std::fs::metadata(&a.out)?.len();
    eprintln!("wrote {} ({size} bytes, {})", a.out.display(), run.recipe.export.dtype);
    if let Some(epoch) = model.provenance().extra.get("selected_epoch") {
        eprintln!("  the weights of epoch {epoch} of {}: the lowest validation NLL", run.epochs_done);
    }
    Ok(())
}
