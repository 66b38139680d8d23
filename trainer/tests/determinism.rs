//! Training is a function of the recipe: the same seed gives bit-identical models, a different seed a
//! different one, and a run resumed from a checkpoint reaches the same weights as an uninterrupted run.
//! A non-finite loss stops training with an error naming the epoch and the step.

use bnn_runtime::ModelWriter;
use bnn_trainer::{Recipe, Run, TrainError};
use candle_core::Device;

fn recipe(seed: u64, epochs: usize, extra: &str) -> Recipe {
    Recipe::from_toml(&format!(
        r#"
[data]
source = "synthetic"
name = "two_moons"
train_points = 120
test_points = 30
[model]
hidden = [8]
[prior]
kind = "scale_mixture"
pi = 0.5
sigma1 = 1.0
sigma2 = 0.1
[training]
epochs = {epochs}
batch_size = 32
learning_rate = 0.01
seed = {seed}
{extra}
"#
    ))
    .unwrap()
}

fn model_bytes(run: &Run) -> Vec<u8> {
    // Provenance records the metrics history, including wall-clock seconds; compare the weights only.
    let model = run.export().unwrap().with_provenance(Default::default());
    ModelWriter::new(&model).to_bytes().unwrap()
}

fn train(r: Recipe) -> Run {
    let mut run = Run::new(r, None, Device::Cpu).unwrap();
    run.train(None, &mut ()).unwrap();
    run
}

#[test]
fn the_same_seed_gives_a_bit_identical_model_and_another_seed_does_not() {
    for estimator in ["local_reparam", "weight_sampling"] {
        let extra = format!("estimator = \"{estimator}\"");
        let a = model_bytes(&train(recipe(3, 2, &extra)));
        let b = model_bytes(&train(recipe(3, 2, &extra)));
        let c = model_bytes(&train(recipe(4, 2, &extra)));
        assert_eq!(a, b, "{estimator}");
        assert_ne!(a, c, "{estimator}");
    }
}

#[test]
fn resuming_from_a_checkpoint_reaches_the_uninterrupted_weights() {
    let dir = std::env::temp_dir().join(format!("bnn-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("run.ckpt");
    let uninterrupted = model_bytes(&train(recipe(5, 4, "")));

    let mut first = Run::new(recipe(5, 2, ""), None, Device::Cpu).unwrap();
    first.train(Some(&ckpt), &mut ()).unwrap();
    drop(first); // the "killed" process

    let mut resumed = Run::new(recipe(5, 4, ""), None, Device::Cpu).unwrap();
    resumed.resume_from(&ckpt).unwrap();
    assert_eq!(resumed.epochs_done, 2);
    resumed.train(Some(&ckpt), &mut ()).unwrap();
    assert_eq!(resumed.history.len(), 4);
    assert_eq!(model_bytes(&resumed), uninterrupted);

    // A checkpoint of another recipe is refused.
    let mut other = Run::new(recipe(6, 4, ""), None, Device::Cpu).unwrap();
    assert!(matches!(other.resume_from(&ckpt), Err(TrainError::Checkpoint { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_non_finite_loss_names_the_epoch_and_step() {
    let r = Recipe::from_toml(
        r#"
[data]
source = "synthetic"
name = "curve"
train_points = 64
[model]
hidden = [8]
[likelihood]
kind = "gaussian"
sigma = 1e-30
[training]
epochs = 2
batch_size = 32
learning_rate = 1e30
"#,
    )
    .unwrap();
    let mut run = Run::new(r, None, Device::Cpu).unwrap();
    let err = run.train(None, &mut ()).unwrap_err();
    assert!(matches!(err, TrainError::NonFiniteLoss { epoch: 0, .. }), "{err}");
    assert!(err.to_string().contains("epoch 0, step"), "{err}");
}
