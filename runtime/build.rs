//! Generates the ziggurat tables of the one-at-a-time Gaussian sampler (Marsaglia & Tsang 2000, 256 layers;
//! the trainer's noise) at build time, so the runtime needs neither start-up work nor `std` for them.

use std::fmt::Write as _;

/// The unnormalised standard-normal density.
fn f(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

/// Layer edges for `n` layers with the tail starting at `r` and every layer of area `v`: x[0] is the base
/// strip's virtual width, x[1] = r, x[i + 1] = f^-1(f(x[i]) + v / x[i]), x[n] = 0.
fn edges(n: usize, r: f64, v: f64) -> Vec<f64> {
    let mut x = vec![0.0f64; n + 1];
    x[0] = v / f(r);
    x[1] = r;
    for i in 1..n - 1 {
        let top = f(x[i]) + v / x[i];
        x[i + 1] = (-2.0 * top.ln()).sqrt();
    }
    x
}

fn main() {
    // 256 layers: the classic constants of Marsaglia & Tsang.
    let (n, r, v) = (256, 3.654_152_885_361_009, 0.004_928_673_233_99);
    let x = edges(n, r, v);
    let fx: Vec<f64> = x.iter().map(|v| f(*v)).collect();
    let mut out = String::new();
    out.push_str("/// 256 layers: one draw per 64-bit word.\npub(crate) mod layers_256 {\n");
    writeln!(out, "    /// Tail start.\n    pub(crate) const R: f64 = {r:?};").unwrap();
    writeln!(
        out,
        "    /// Layer edges, decreasing from the base strip's width to 0.\n    pub(crate) const X: [f64; {}] = {x:?};",
        n + 1
    )
    .unwrap();
    writeln!(out, "    /// The density exp(-x^2/2) at each edge.\n    pub(crate) const F: [f64; {}] = {fx:?};", n + 1)
        .unwrap();
    out.push_str("}\n");
    let path = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("ziggurat_tables.rs");
    std::fs::write(path, out).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
