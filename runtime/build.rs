//! Generates the ziggurat tables of the Gaussian sampler (256 layers, Marsaglia & Tsang 2000) at build
//! time, so the runtime needs neither start-up work nor `std` for them.

use std::fmt::Write as _;

/// Start of the tail for 256 layers.
const R: f64 = 3.654_152_885_361_009;
/// Area of each layer (and of the base strip plus tail).
const V: f64 = 0.004_928_673_233_99;

fn f(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

fn main() {
    // x[0] is the base strip's virtual width; x[1] = R; x[i + 1] = f^-1(f(x[i]) + V / x[i]); x[256] = 0.
    let mut x = [0.0f64; 257];
    x[0] = V / f(R);
    x[1] = R;
    for i in 1..255 {
        x[i + 1] = (-2.0 * (f(x[i]) + V / x[i]).ln()).sqrt();
    }
    x[256] = 0.0;
    let fx: Vec<f64> = x.iter().map(|v| f(*v)).collect();
    let mut out = String::new();
    writeln!(out, "/// Tail start.\npub(crate) const R: f64 = {R:?};").unwrap();
    writeln!(
        out,
        "/// Layer edges, decreasing from the base strip's width to 0.\npub(crate) const X: [f64; 257] = {x:?};"
    )
    .unwrap();
    writeln!(out, "/// The density exp(-x^2/2) at each edge.\npub(crate) const F: [f64; 257] = {fx:?};").unwrap();
    // The 32-bit fast path: position u < 2^23 inside layer i lies in the layer's inner rectangle iff
    // u < K[i] (= ceil(2^23 x[i+1] / x[i])); the draw is then u * W[i] (W[i] = x[i] / 2^23).
    let scale = (1u64 << 23) as f64;
    let k: Vec<u32> = (0..256).map(|i| (x[i + 1] / x[i] * scale).ceil() as u32).collect();
    let w: Vec<f32> = (0..256).map(|i| (x[i] / scale) as f32).collect();
    writeln!(out, "/// Inner-rectangle bounds of the 32-bit fast path.\npub(crate) const K: [u32; 256] = {k:?};")
        .unwrap();
    writeln!(out, "/// Layer widths over 2^23, for the 32-bit fast path.\npub(crate) const W: [f32; 256] = {w:?};")
        .unwrap();
    let path = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("ziggurat_tables.rs");
    std::fs::write(path, out).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
