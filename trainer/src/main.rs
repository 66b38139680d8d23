//! `bnn`: train, inspect and run Bayesian neural networks from the command line.

mod cli;

// Training allocates and frees many megabyte-sized tensors per step; glibc returns each to the OS and
// page-faults it back in (a quarter of the run time in a profile). mimalloc keeps and reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bnn",
    version,
    about = "Bayesian neural networks for the edge: train, prune, export, predict with uncertainty"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model from a TOML recipe and export it.
    Train(cli::train::TrainArgs),
    /// Predict with Monte-Carlo uncertainty from a model file.
    Predict(cli::predict::PredictArgs),
    /// Train, prune, export, predict and draw on the 1-D curve, in under a minute.
    Demo(cli::demo::DemoArgs),
    /// Calibration, shift and out-of-distribution evaluation (classification) or the 1-D regression picture.
    Eval(cli::eval::EvalArgs),
    /// Two classifiers on the same images: each difference (error, NLL, Brier, OOD AUROC) and whether it could be chance.
    Compare(cli::compare::CompareArgs),
    /// Print a model file's description.
    Info(cli::info::InfoArgs),
    /// Remove weights by signal-to-noise ratio, magnitude or at random, and write the sparse model.
    Prune(cli::prune::PruneArgs),
    /// The pruning benchmark: error, NLL, ECE, size and latency over sparsities and criteria.
    PruneSweep(cli::prune_sweep::SweepArgs),
    /// Fit a classifier's calibration (temperature, conformal sets, abstention) on its held-out validation set.
    Calibrate(cli::calibrate::CalibrateArgs),
    /// Import a PyTorch Bayesian network (bayesian-torch, blitz or torchbnn state dict saved as safetensors).
    Import(cli::import::ImportArgs),
}

/// mimalloc's `mi_option_purge_delay` (position 15 of `mi_option_e` in mimalloc.h, v2 and v3; the Rust bindings
/// name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> anyhow::Result<()> {
    // Never hand freed memory back to the OS: a training step frees and reallocates the same megabyte-sized
    // tensors, and each purge made the kernel zero the pages again on the next step (a fifth of a training
    // profile, in 2 MB transparent huge pages).
    // SAFETY: a plain setter of a global option, called before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // A closed pipe ends the process quietly, as it does other command-line tools (`bnn info M | head -1`);
    // Rust ignores SIGPIPE by default, and the next print would panic instead.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match Cli::parse().command {
        Command::Train(a) => cli::train::run(a),
        Command::Predict(a) => cli::predict::run(a),
        Command::Demo(a) => cli::demo::run(a),
        Command::Eval(a) => cli::eval::run(a),
        Command::Compare(a) => cli::compare::run(a),
        Command::Info(a) => cli::info::run(a),
        Command::Prune(a) => cli::prune::run(a),
        Command::PruneSweep(a) => cli::prune_sweep::run(a),
        Command::Import(a) => cli::import::run(a),
        Command::Calibrate(a) => cli::calibrate::run(a),
    }
}
