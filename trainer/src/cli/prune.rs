//! `bnn prune`: remove the lowest-ranked weights with one global threshold and write the sparse model.

use bnn_runtime::{Model, ModelWriter, Named, StorageDtype};
use bnn_trainer::prune::{finetune, prune_within, Criterion, KeptBounds};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct PruneArgs {
    /// The trained model.
    #[arg(long = "in")]
    input: PathBuf,
    /// Where to write the pruned model.
    #[arg(long)]
    out: PathBuf,
    /// Fraction of weights to remove, in [0, 1].
    #[arg(long)]
    sparsity: f64,
    /// What ranks the weights: snr (|mu| / sigma), magnitude (|mu|) or random.
    #[arg(long, default_value = "snr")]
    criterion: Criterion,
    /// Storage dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f16")]
    dtype: StorageDtype,
    /// Seed of the random criterion.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Retrain the surviving weights for N epochs with the pruning pattern fixed, using the recipe stored in
    /// the model's provenance at the step size of the epoch its weights come from.
    #[arg(long, default_value_t = 0)]
    finetune_epochs: usize,
    /// Data for fine-tuning: MNIST directory or CSV file [default: as the recipe says, or $BNN_MNIST_DIR].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Keep at least this fraction of every layer's weights (its highest-ranked ones), even where the global
    /// threshold would remove more; the model then ends up less sparse than --sparsity, as the report says.
    #[arg(long, default_value_t = 0.0)]
    min_kept_fraction: f64,
    /// LAYER=FRACTION (repeatable): layer LAYER (its index in `bnn info`) keeps at most FRACTION of its weights,
    /// its best-ranked; the weights it gives up go to the next-ranked ones of the other layers, so the sparsity
    /// stays as asked. A convolution's kernel taps cost far more compute than dense weights: capping them is how
    /// a pruned CNN runs faster, not only smaller.
    #[arg(long, value_parser = layer_fraction)]
    max_kept_fraction: Vec<(usize, f64)>,
    /// Write the model even if pruning removes every weight of a layer (its output then ignores its input).
    #[arg(long)]
    allow_empty_layers: bool,
}

pub fn run(a: PruneArgs) -> anyhow::Result<()> {
    super::refuse_overwriting(&a.out, &[("input model", &a.input)])?;
    let input_size = std::fs::metadata(&a.input)?.len();
    let model = Model::load(&a.input)?;
    let bounds = KeptBounds { floor: a.min_kept_fraction, ceilings: a.max_kept_fraction };
    let (mut pruned, report) = prune_within(&model, a.sparsity, a.criterion, a.seed, &bounds)?;
    let emptied: Vec<String> =
        report.kept_fraction.iter().filter(|(_, f)| *f == 0.0).map(|(i, _)| format!("layer {i}")).collect();
    if !emptied.is_empty() && !a.allow_empty_layers {
        anyhow::bail!(
            "pruning {:.1}% by {} removes every weight of {}: that model's output would not depend on its input \
             (nothing written; lower --sparsity, set --min-kept-fraction, or pass --allow-empty-layers to write it \
             anyway)",
            100.0 * a.sparsity,
            a.criterion.name(),
            emptied.join(", ")
        );
    }
    if a.finetune_epochs > 0 {
        eprintln!("fine-tuning the surviving weights for {} epochs", a.finetune_epochs);
        pruned = finetune(&pruned, a.finetune_epochs, a.data.as_deref(), &mut super::progress::TrainBar::standard()?)?;
    }
    ModelWriter::new(&pruned).dtype(a.dtype).write(&a.out)?;
    let kept: Vec<String> = report.kept_fraction.iter().map(|(i, f)| format!("layer {i}: {:.2}%", 100.0 * f)).collect();
    eprintln!(
        "{} pruning at {:.1}%: threshold {:.4e}; kept {}; wrote {} ({} bytes, was {} bytes)",
        a.criterion.name(),
        100.0 * report.sparsity,
        report.threshold,
        kept.join(", "),
        a.out.display(),
        std::fs::metadata(&a.out)?.len(),
        input_size
    );
    Ok(())
}

/// Parses `LAYER=FRACTION` (`--max-kept-fraction 3=0.25`).
fn layer_fraction(text: &str) -> Result<(usize, f64), String> {
    let (layer, fraction) = text.split_once('=').ok_or_else(|| format!("expected LAYER=FRACTION, found {text:?}"))?;
    let layer = layer.trim().parse().map_err(|e| format!("layer index {layer:?}: {e}"))?;
    let fraction = fraction.trim().parse().map_err(|e| format!("fraction {fraction:?}: {e}"))?;
    Ok((layer, fraction))
}
