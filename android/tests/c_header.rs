//! `include/bnn.h` is what cbindgen generates from the C ABI today (regenerate it with
//! `BNN_UPDATE_HEADER=1 cargo test -p bnn-android --test c_header`).

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let header = crate_dir.join("include/bnn.h");
    if std::env::var_os("BNN_UPDATE_HEADER").is_some() {
        std::fs::write(&header, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(committed == generated, "include/bnn.h is stale: rerun with BNN_UPDATE_HEADER=1");
}
