//! Convolutional networks in the trainer: a Bayesian CNN (and its MC-dropout and deterministic counterparts)
//! learns the synthetic bars images and exports a runtime model of image input; seeded CNN training is
//! bit-reproducible, with or without moving its training images; recipe mistakes about the architecture are
//! named before training.

use bnn_runtime::{Model, ModelWriter, Shape};
use bnn_trainer::{Recipe, Run};
use candle_core::Device;

fn recipe(kind: &str, arch: &str, seed: u64, extra: &str) -> String {
    format!(
        r#"
[data]
source = "synthetic"
name = "bars"
train_points = 400
test_points = 200
normalize = "none"
[model]
kind = "{kind}"
arch = "{arch}"
rho_init = -4.0
{extra}
[training]
epochs = 6
batch_size = 32
learning_rate = 0.01
seed = {seed}
"#
    )
}

const ARCH: &str = "1x8x8-conv4k3p1-maxpool2-flatten-16";

fn train(text: &str) -> Run {
    let mut run = Run::new(Recipe::from_toml(text).unwrap(), None, Device::Cpu).unwrap();
    run.train(None, &mut ()).unwrap();
    run
}

#[test]
fn bayesian_mc_dropout_and_deterministic_cnns_learn_bars_and_export_image_models() {
    for (kind, extra) in [("bayesian", ""), ("mc_dropout", "dropout = 0.1"), ("deterministic", "")] {
        let run = train(&recipe(kind, ARCH, 1, extra));
        let accuracy = run.history.last().unwrap().test.metric;
        // Chance is 50%; a bar is one row or column of 8 clearly brighter pixels.
        assert!(accuracy > 0.95, "{kind}: test accuracy {accuracy}");
        let model = Model::from_bytes(&ModelWriter::new(&run.export().unwrap()).to_bytes().unwrap()).unwrap();
        assert_eq!(model.input_shape(), Shape::Image([1, 8, 8]), "{kind}");
    }
}

#[test]
fn seeded_cnn_training_is_bit_reproducible() {
    let bytes = |seed, estimator: &str| {
        let text =
            recipe("bayesian", ARCH, seed, "").replace("seed =", &format!("estimator = \"{estimator}\"\nseed ="));
        let model = train(&text).export().unwrap().with_provenance(Default::default());
        ModelWriter::new(&model).to_bytes().unwrap()
    };
    for estimator in ["local_reparam", "weight_sampling"] {
        assert_eq!(bytes(3, estimator), bytes(3, estimator), "{estimator}");
        assert_ne!(bytes(3, estimator), bytes(4, estimator), "{estimator}");
    }
}

#[test]
fn moving_the_training_images_is_seeded_and_still_learns() {
    let shifted = |seed, shift| {
        let text = recipe("bayesian", ARCH, seed, "").replace("seed =", &format!("shift_pixels = {shift}\nseed ="));
        train(&text)
    };
    let bytes =
        |run: &Run| ModelWriter::new(&run.export().unwrap().with_provenance(Default::default())).to_bytes().unwrap();
    let run = shifted(3, 1);
    // A bar moved by one pixel is still a row or a column (one move in twelve takes it out of the image: an
    // edge bar moved outwards).
    let accuracy = run.history.last().unwrap().test.metric;
    assert!(accuracy > 0.9, "test accuracy {accuracy}");
    assert_eq!(bytes(&run), bytes(&shifted(3, 1)), "the same seed moves the images alike");
    assert_ne!(bytes(&run), bytes(&shifted(3, 0)), "the images were moved");
}

#[test]
fn architecture_mistakes_are_named_before_training() {
    let both = recipe("bayesian", ARCH, 1, "hidden = [8]");
    let err = Recipe::from_toml(&both).unwrap_err().to_string();
    assert!(err.contains("not both"), "{err}");
    for (arch, want) in [
        ("1x9x9-conv4k3-flatten", "reads 81 values"),
        ("1x8x8-conv4k3-maxpool4-flatten", "must tile"),
        ("1x8x8-conv4k3-maxpool2s1-flatten", "stride = window"),
        ("1x8x8-conv4k3-16", "flatten"),
        ("1x8x8-conv4x-flatten", "model.arch"),
    ] {
        let err = match Recipe::from_toml(&recipe("bayesian", arch, 1, "")) {
            Err(e) => e.to_string(),
            Ok(r) => Run::new(r, None, Device::Cpu).err().expect(arch).to_string(),
        };
        assert!(err.contains(want), "{arch}: {err}");
    }
}
