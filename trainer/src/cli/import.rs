//! `bnn import`: a PyTorch state dict (bayesian-torch, blitz or torchbnn, saved as safetensors) to a bnn-edge
//! model file.

use bnn_runtime::{Activation, ModelWriter, NoiseModel, StorageDtype, Task};
use bnn_trainer::import::{import_state, Architecture, ImportError, ImportSpec, Source};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ImportArgs {
    /// The library that wrote the state dict: bayesian-torch, blitz or torchbnn.
    #[arg(long = "from")]
    source: Source,
    /// The state dict, saved with `safetensors.torch.save_file(model.state_dict(), ...)`.
    #[arg(long)]
    state: PathBuf,
    /// The network, input first, stages separated by `-`: layer sizes (784-400-400-10), or for a CNN an image
    /// input CxHxW and `conv<OUT>k<K>[s<S>][p<P>][d<D>][g<G>]`, `maxpool<K>[s<S>][p<P>]`, `avgpool<K>...`, flatten
    /// (LeNet-5: 1x28x28-conv6k5p2-maxpool2-conv16k5-maxpool2-flatten-120-84-10).
    #[arg(long)]
    arch: String,
    /// Activation between layers: relu, tanh, sigmoid, gelu or identity.
    #[arg(long, default_value = "relu")]
    activation: Activation,
    /// classification:K, regression:K:sigma=S (fixed noise sd) or regression:K:heteroscedastic (the last layer
    /// gives K means then K raw scales, sd = softplus(raw) + 1e-6).
    #[arg(long)]
    task: String,
    /// Module names in forward order, comma-separated (default: natural name order).
    #[arg(long, value_delimiter = ',')]
    layers: Option<Vec<String>>,
    #[arg(long)]
    out: PathBuf,
    /// Storage dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: StorageDtype,
}

pub fn run(a: ImportArgs) -> anyhow::Result<()> {
    super::refuse_overwriting(&a.out, &[("state dict", &a.state)])?;
    let spec = ImportSpec {
        source: a.source,
        arch: Architecture::parse(&a.arch).map_err(ImportError::Architecture)?,
        activation: a.activation,
        task: parse_task(&a.task)?,
        layers: a.layers,
    };
    let bytes = std::fs::read(&a.state).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.state.display()))?;
    let imported = import_state(&bytes, &spec)?;
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    ModelWriter::new(&imported.model).dtype(a.dtype).write(&a.out)?;
    eprintln!("imported {} ({}) -> {}", a.state.display(), a.source, a.out.display());
    Ok(())
}

/// `classification:K`, `regression:K:sigma=S` or `regression:K:heteroscedastic`.
fn parse_task(text: &str) -> anyhow::Result<Task> {
    let parts: Vec<&str> = text.split(':').collect();
    let count = |s: &str| s.parse::<usize>().map_err(|_| anyhow::anyhow!("--task `{text}`: `{s}` is not a count"));
    Ok(match parts[..] {
        ["classification", k] => Task::Classification { classes: count(k)?, labels: vec![] },
        ["regression", k, "heteroscedastic"] => {
            Task::Regression { outputs: count(k)?, noise: NoiseModel::Heteroscedastic }
        }
        ["regression", k, noise] => {
            let sigma = noise
                .strip_prefix("sigma=")
                .and_then(|s| s.parse::<f32>().ok())
                .ok_or_else(|| anyhow::anyhow!("--task `{text}`: noise must be sigma=S or heteroscedastic"))?;
            Task::Regression { outputs: count(k)?, noise: NoiseModel::Homoscedastic { sigma } }
        }
        _ => {
            anyhow::bail!("--task `{text}`: use classification:K, regression:K:sigma=S or regression:K:heteroscedastic")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_and_arch_flags_parse() {
        assert_eq!(Architecture::parse("784-400-10").unwrap(), Architecture::mlp(&[784, 400, 10]));
        assert!(Architecture::parse("784-x").is_err());
        assert_eq!(parse_task("classification:10").unwrap(), Task::Classification { classes: 10, labels: vec![] });
        assert_eq!(
            parse_task("regression:2:sigma=0.5").unwrap(),
            Task::Regression { outputs: 2, noise: NoiseModel::Homoscedastic { sigma: 0.5 } }
        );
        assert_eq!(
            parse_task("regression:1:heteroscedastic").unwrap(),
            Task::Regression { outputs: 1, noise: NoiseModel::Heteroscedastic }
        );
        for bad in ["classification", "regression:2", "regression:2:sigma=x", "clustering:3"] {
            assert!(parse_task(bad).is_err(), "{bad}");
        }
    }
}
