//! Shared by the host tests: where the built `libbnn_android` lies, the shipped test models, running commands.

use std::path::{Path, PathBuf};

/// The directory holding the freshly built `libbnn_android.so` (and `.a`): `cargo test` leaves it in `deps/`
/// beside the test binary; `cargo build` also copies it one level up.
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps directory");
    let found = [Some(deps), deps.parent()].into_iter().flatten().find(|dir| dir.join("libbnn_android.so").exists());
    found.unwrap_or_else(|| panic!("libbnn_android.so not found next to {}", exe.display())).to_path_buf()
}

/// A shipped model, by file name under `models/`.
pub fn shipped_model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("models").join(name).canonicalize().expect("shipped model")
}

/// The shipped f16 classifier with a fixed calibration (temperature 1.7, conformal levels 0.9 and 0.99,
/// abstention below 0.95), written once per test binary into its temporary directory.
pub fn calibrated_classifier() -> PathBuf {
    use bnn_runtime::{Calibration, CalibrationSplit, ConformalLevel, Model, ModelWriter, StorageDtype};
    let model = Model::load(shipped_model("mnist-bbb-snr95-f16.safetensors")).unwrap();
    let calibration = Calibration {
        temperature: 1.7,
        sets: vec![ConformalLevel { level: 0.9, threshold: 0.9 }, ConformalLevel { level: 0.99, threshold: 0.999 }],
        abstain_below: Some(0.95),
        intervals: vec![],
        split: CalibrationSplit { examples: 1000, seed: 1, source: "a test fixture".into() },
    };
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("calibrated-classifier.safetensors");
    let model = model.with_calibration(Some(calibration)).unwrap();
    ModelWriter::new(&model).dtype(StorageDtype::F16).write(&path).unwrap();
    path
}

/// The shipped curve regression model with conformal intervals (level 0.9: mean ± 1.5 sd; 0.99: ± 2.8 sd).
pub fn calibrated_regression() -> PathBuf {
    use bnn_runtime::{Calibration, CalibrationSplit, ConformalLevel, Model, ModelWriter};
    let model = Model::load(shipped_model("curve-bbb.safetensors")).unwrap();
    let calibration = Calibration {
        temperature: 1.0,
        sets: vec![],
        abstain_below: None,
        intervals: vec![ConformalLevel { level: 0.9, threshold: 1.5 }, ConformalLevel { level: 0.99, threshold: 2.8 }],
        split: CalibrationSplit { examples: 1000, seed: 1, source: "a test fixture".into() },
    };
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("calibrated-regression.safetensors");
    ModelWriter::new(&model.with_calibration(Some(calibration)).unwrap()).write(&path).unwrap();
    path
}

/// A small Bayesian CNN classifier for 1x8x8 images (Bayesian 3x3 convolution to 4 channels, ReLU, 2x2 max
/// pooling, flatten, Bayesian dense to 3 classes; fixed pseudo-random parameters), written once per test binary
/// into its temporary directory as `cnn-classifier.safetensors`.
pub fn cnn_classifier() -> PathBuf {
    use bnn_runtime::{
        Activation, BayesianConv2d, BayesianDense, ConvGeometry, Layer, Model, ModelWriter, Pool2d, PoolGeometry,
        PoolKind, Provenance, Task,
    };
    let wave = |n: usize, f: f32, scale: f32| (0..n).map(|k| ((k as f32) * f).sin() * scale).collect::<Vec<f32>>();
    let g = ConvGeometry::new(1, 4, [3, 3]);
    let n = g.weight_count().unwrap();
    let positive = |v: Vec<f32>| v.into_iter().map(|x| 0.05 + x.abs()).collect::<Vec<f32>>();
    let layers = vec![
        Layer::BayesianConv2d(BayesianConv2d::new(
            g,
            wave(n, 0.9, 1.0),
            positive(wave(n, 0.3, 0.2)),
            vec![0.1; 4],
            vec![0.05; 4],
        )),
        Layer::Activation(Activation::Relu),
        Layer::Pool2d(Pool2d { kind: PoolKind::Max, geometry: PoolGeometry::new([2, 2]) }),
        Layer::Flatten,
        Layer::BayesianDense(BayesianDense::new(
            36,
            3,
            wave(108, 0.45, 1.0),
            positive(wave(108, 0.17, 0.1)),
            vec![0.0; 3],
            vec![0.05; 3],
        )),
    ];
    let task = Task::Classification { classes: 3, labels: vec![] };
    let model = Model::new_image(layers, [1, 8, 8], task, None, Provenance::default()).unwrap();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cnn-classifier.safetensors");
    ModelWriter::new(&model).write(&path).unwrap();
    path
}

/// Runs a command, failing the test with its output if it does not succeed.
pub fn run(command: &mut std::process::Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
