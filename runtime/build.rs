//! Generates the ziggurat tables of the Gaussian samplers (Marsaglia & Tsang 2000) at build time, so the
//! runtime needs neither start-up work nor `std` for them: 256 layers for one-at-a-time draws (the trainer's
//! noise), 1024 layers for the bulk draws of local reparameterization (fewer draws leave the fast path).
//! The 1024-layer tables use the `libm` crate's functions, so every build host computes the same bits; the
//! 256-layer tables keep the standard library's (the platform's libm), which they were first built with:
//! `libm`'s differ in the last bit of some entries, which would change the trainer's noise stream.

use std::fmt::Write as _;

/// The exponential and logarithm the tables are computed with.
#[derive(Clone, Copy)]
struct Math {
    exp: fn(f64) -> f64,
    ln: fn(f64) -> f64,
}

const STD: Math = Math { exp: f64::exp, ln: f64::ln };
const LIBM: Math = Math { exp: libm::exp, ln: libm::log };

impl Math {
    /// The unnormalised standard-normal density.
    fn f(self, x: f64) -> f64 {
        (self.exp)(-0.5 * x * x)
    }
}

/// Layer edges for `n` layers with the tail starting at `r` and every layer of area `v`: x[0] is the base
/// strip's virtual width, x[1] = r, x[i + 1] = f^-1(f(x[i]) + v / x[i]), x[n] = 0. Also returns how far the
/// top layer's top misses the density's peak (0 for the exact `r`), or `None` if the layers reach the peak
/// before the n-th (`r` too small).
fn edges(m: Math, n: usize, r: f64, v: f64) -> Option<(Vec<f64>, f64)> {
    let mut x = vec![0.0f64; n + 1];
    x[0] = v / m.f(r);
    x[1] = r;
    for i in 1..n - 1 {
        let top = m.f(x[i]) + v / x[i];
        if top >= 1.0 {
            return None;
        }
        x[i + 1] = (-2.0 * (m.ln)(top)).sqrt();
    }
    let miss = m.f(x[n - 1]) + v / x[n - 1] - 1.0;
    Some((x, miss))
}

/// Area of each layer when the tail starts at `r`: the base strip (rectangle plus tail).
fn layer_area(r: f64) -> f64 {
    r * LIBM.f(r) + libm::sqrt(std::f64::consts::FRAC_PI_2) * libm::erfc(r / std::f64::consts::SQRT_2)
}

/// The tail start for `n` layers, by bisection on the top layer closing at the peak.
fn tail_start(n: usize) -> f64 {
    let (mut lo, mut hi) = (2.0f64, 6.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        match edges(LIBM, n, mid, layer_area(mid)) {
            Some((_, miss)) if miss < 0.0 => hi = mid,
            _ => lo = mid,
        }
    }
    hi
}

/// Writes `R`, `X` (edges, decreasing to 0) and `F` (the density at each edge) of one table set.
fn write_layers(out: &mut String, m: Math, n: usize, r: f64, v: f64) -> Vec<f64> {
    let (mut x, _) = edges(m, n, r, v).expect("the tail start closes the layers");
    x[n] = 0.0;
    let fx: Vec<f64> = x.iter().map(|v| m.f(*v)).collect();
    writeln!(out, "    /// Tail start.\n    pub(crate) const R: f64 = {r:?};").unwrap();
    writeln!(
        out,
        "    /// Layer edges, decreasing from the base strip's width to 0.\n    pub(crate) const X: [f64; {}] = {x:?};",
        n + 1
    )
    .unwrap();
    writeln!(out, "    /// The density exp(-x^2/2) at each edge.\n    pub(crate) const F: [f64; {}] = {fx:?};", n + 1)
        .unwrap();
    x
}

fn main() {
    let mut out = String::new();
    // 256 layers: the classic constants of Marsaglia & Tsang.
    out.push_str("/// 256 layers: one draw per 64-bit word.\npub(crate) mod layers_256 {\n");
    write_layers(&mut out, STD, 256, 3.654_152_885_361_009, 0.004_928_673_233_99);
    out.push_str("}\n");
    // 1024 layers, 32 bits per draw: bits 0–9 pick the layer, bit 10 the sign, bits 11–31 the position u.
    // Position u < 2^21 of layer i lies in the layer's inner rectangle iff u < K[i] (= ceil(2^21 x[i+1] /
    // x[i])); the draw is then u * W[i] (W[i] = x[i] / 2^21).
    out.push_str("/// 1024 layers: 32 bits per draw, for bulk draws.\npub(crate) mod layers_1024 {\n");
    let r = tail_start(1024);
    let x = write_layers(&mut out, LIBM, 1024, r, layer_area(r));
    let scale = (1u64 << 21) as f64;
    let k: Vec<u32> = (0..1024).map(|i| (x[i + 1] / x[i] * scale).ceil() as u32).collect();
    let w: Vec<f32> = (0..1024).map(|i| (x[i] / scale) as f32).collect();
    writeln!(
        out,
        "    /// Inner-rectangle bounds of the 32-bit fast path.\n    pub(crate) const K: [u32; 1024] = {k:?};"
    )
    .unwrap();
    writeln!(
        out,
        "    /// Layer widths over 2^21, for the 32-bit fast path.\n    pub(crate) const W: [f32; 1024] = {w:?};"
    )
    .unwrap();
    out.push_str("}\n");
    let path = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("ziggurat_tables.rs");
    std::fs::write(path, out).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
