//! The `bnn` subcommands, one file each.

pub mod demo;
pub mod eval;
pub mod import;
pub mod info;
pub mod predict;
pub mod prune;
pub mod prune_sweep;
pub mod train;

/// Parses `cpu` or `cuda[:N]`.
pub fn device(name: &str) -> anyhow::Result<candle_core::Device> {
    match name {
        "cpu" => Ok(candle_core::Device::Cpu),
        s if s.starts_with("cuda") => {
            let ordinal = s.strip_prefix("cuda:").map(str::parse).transpose()?.unwrap_or(0);
            Ok(candle_core::Device::new_cuda(ordinal)
                .map_err(|e| anyhow::anyhow!("{e} (build with `--features cuda` to train on a GPU)"))?)
        }
        other => anyhow::bail!("unknown device `{other}` (use cpu or cuda[:N])"),
    }
}

/// Parses the storage dtype names used by recipes and flags.
pub fn storage_dtype(name: &str) -> anyhow::Result<bnn_runtime::StorageDtype> {
    Ok(match name {
        "f32" => bnn_runtime::StorageDtype::F32,
        "f16" => bnn_runtime::StorageDtype::F16,
        "bf16" => bnn_runtime::StorageDtype::Bf16,
        other => anyhow::bail!("unknown dtype `{other}` (use f32, f16 or bf16)"),
    })
}
