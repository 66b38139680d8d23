//! The `bnn` subcommands, one file each.

pub mod calibrate;
pub mod compare;
pub mod demo;
pub mod eval;
pub mod import;
pub mod info;
pub mod predict;
pub mod progress;
pub mod prune;
pub mod prune_sweep;
pub mod report;
pub mod train;

/// Refuses to write `out` when it is one of `inputs` (the same file through any path, hard link or symlink):
/// the write would destroy the input.
pub fn refuse_overwriting(out: &std::path::Path, inputs: &[(&str, &std::path::Path)]) -> anyhow::Result<()> {
    for (what, input) in inputs {
        if same_file(out, input) {
            anyhow::bail!(
                "{} is the {what} ({}): writing it would destroy the input; choose another output path",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Whether two paths name one existing file (symlinks followed).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        ma.dev() == mb.dev() && ma.ino() == mb.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (ma, mb);
        matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
    }
}

/// A count flag that must be at least 1.
pub fn positive_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

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
