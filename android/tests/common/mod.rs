//! Shared by the host tests: where the built `libbnn_android` lies, the shipped test models, running commands.

use std::path::{Path, PathBuf};

/// The directory holding `libbnn_android.so` (and `.a`): cargo builds every crate type of the library next to
/// the `deps/` folder of the running test binary.
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target profile directory").to_path_buf();
    assert!(dir.join("libbnn_android.so").exists(), "libbnn_android.so not found in {}", dir.display());
    dir
}

/// A shipped model, by file name under `models/`.
pub fn shipped_model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("models").join(name).canonicalize().expect("shipped model")
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
