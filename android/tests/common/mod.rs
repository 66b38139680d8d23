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
