//! Crash safety of `bnn train`, with real kills: the training process is SIGKILLed at several moments (some
//! land while a checkpoint of a few MB is being written); after every kill the checkpoint and the exported model,
//! when present, are complete files that load, and `--resume` after the last kill reaches the same weights as an
//! uninterrupted run of the same recipe. The killed runs checkpoint after every step (`--checkpoint-every 0`), so
//! most kills resume from inside an epoch.

use bnn_runtime::{Model, ModelWriter};
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const RECIPE: &str = r#"
[data]
source = "synthetic"
name = "curve"
train_points = 256
test_points = 64
[model]
hidden = [384, 384]
[likelihood]
kind = "gaussian"
sigma = 0.1414
[training]
epochs = 40
batch_size = 64
learning_rate = 0.003
seed = 9
eval_samples = 4
"#;

fn bnn(recipe: &Path, out: &Path, resume: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bnn"));
    command.arg("train").arg("--recipe").arg(recipe).arg("--out").arg(out).stdout(Stdio::null()).stderr(Stdio::null());
    command.args(["--checkpoint-every", "0"]);
    if resume {
        command.arg("--resume");
    }
    command
}

/// The model's weights and task as bytes, without provenance (which records wall-clock times).
fn weights(path: &Path) -> Vec<u8> {
    let model = Model::load(path).unwrap().with_provenance(Default::default());
    ModelWriter::new(&model).to_bytes().unwrap()
}

#[test]
fn killed_training_leaves_loadable_files_and_resume_reaches_the_uninterrupted_weights() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-safety-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let recipe = dir.join("recipe.toml");
    std::fs::write(&recipe, RECIPE).unwrap();

    let reference = dir.join("uninterrupted.safetensors");
    assert!(bnn(&recipe, &reference, false).status().unwrap().success());

    let out = dir.join("killed.safetensors");
    // `bnn train` checkpoints to OUT with the extension `ckpt`.
    let checkpoint = dir.join("killed.ckpt");
    let mut kills = 0;
    for delay_ms in [700u64, 350, 900, 500, 1200, 650] {
        let mut child = bnn(&recipe, &out, checkpoint.exists()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL: no destructor, no flush, no cleanup runs
            kills += 1;
        }
        child.wait().unwrap();
        if checkpoint.exists() {
            // The checkpoint is whole: a truncated or half-written file would not load.
            assert!(std::fs::metadata(&checkpoint).unwrap().len() > 1_000_000, "checkpoint unexpectedly small");
            bnn_trainer::checkpoint::load(&checkpoint, &Device::Cpu).expect("the checkpoint left by a kill loads");
        }
        if out.exists() {
            Model::load(&out).expect("the model left by a kill loads");
        }
    }
    let interrupted_writes = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "tmp"))
        .count();
    eprintln!("{kills} kills; {interrupted_writes} of them interrupted a write (its temporary file was left behind)");
    assert!(kills >= 2, "only {kills} runs were still going when killed; the recipe is too short for this machine");

    let status = bnn(&recipe, &out, checkpoint.exists()).status().unwrap();
    assert!(status.success());
    assert_eq!(weights(&out), weights(&reference), "resumed weights differ from the uninterrupted run's");
    std::fs::remove_dir_all(&dir).unwrap();
}
