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
