//! Every architecture-specific line of the runtime: which instruction set the kernels run on ([`Isa`],
//! detected once and passed down), the sample block ([`SAMPLE_BLOCK`]), and the kernels, which the layers call
//! by what they compute.
//!
//! - `portable/`: the reference kernels in plain Rust, unfused (`a + w * h`) or fused (one rounding per
//!   multiply-add) by a const parameter; every other build must give the bits of one of them.
//! - `x86_64/`: the portable kernels compiled for AVX2 + FMA and for AVX-512, AVX-512 intrinsics for the
//!   32-sample block products (the compiler keeps the portable ones at 256 bits), and AVX2 intrinsics for the
//!   one-pass sparse local reparameterization.
//! - `aarch64/`: NEON intrinsics (fused) for the 32-sample block products and the sliced sparse products; the
//!   other kernels are the portable ones, which the compiler vectorises with NEON (the aarch64 baseline).
//! - `sliced`: a sparse layer's weights re-laid for eight rows at a time, for single-input products (and for
//!   eight inputs at a time, a batch's first layer, with `portable/lanes.rs`: every lane the single-input bits).
//!
//! Which results are fused: the block products of local reparameterization, the convolutions of a block of
//! samples and the bulk Gaussian draws, on every instruction set with FMA (AVX2 + FMA, AVX-512, NEON). Their bits
//! then differ from the portable build's in the last place (a seed still gives the same bits on any one machine,
//! and the same bits on every machine with FMA). Single-sample products and convolutions, softmax and entropies
//! are never fused: `Mean` and weight sampling give the same bits on every CPU.

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod aarch64;
#[cfg(any(all(feature = "std", target_arch = "x86_64"), all(target_arch = "aarch64", target_feature = "neon")))]
mod csr_walk;
mod portable;
mod sliced;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86_64;

pub(crate) use portable::{
    conv2d_block, conv2d_block_pooled, dot, entropies, gemv, gemv_lanes, live_rows, pool2d_block, sparse_dot,
    ColumnWeights, ConvPlan, Lanes, INPUT_LANES,
};
pub(crate) use sliced::SlicedWeights;

#[cfg(any(all(feature = "std", target_arch = "x86_64"), all(target_arch = "aarch64", target_feature = "neon")))]
use csr_walk::{CsrBlock, LocalReparamBlock};

use crate::layers::CsrPattern;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The most samples local reparameterization draws together as one block (one pass over each layer's
/// weights per block). Fewer remaining samples are split into blocks of 16, 8, 4, 2 and 1. The intrinsic
/// kernels hold a block row of this many floats in registers; they check it at compile time.
pub const SAMPLE_BLOCK: usize = 32;

/// Block sizes with a register-resident kernel; the predictor splits its samples into these.
pub(crate) const BLOCK_SIZES: [usize; 6] = [SAMPLE_BLOCK, 16, 8, 4, 2, 1];

/// The instruction set the kernels use. A value names only an instruction set this CPU has: it is made by
/// [`Isa::detected`] (or, in tests, [`Isa::available`]), which is what makes the dispatch below sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Isa(Level);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Plain Rust, unfused: any CPU (and the only level without `std` on x86-64). Not built into aarch64
    /// libraries outside tests: NEON is part of that baseline, and leaving the unfused kernels out keeps the
    /// phones' library small.
    #[cfg(any(test, not(all(target_arch = "aarch64", target_feature = "neon"))))]
    Portable,
    /// The portable kernels with fused multiply-adds: the reference the fused builds are tested against.
    #[cfg(test)]
    PortableFused,
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx2Fma,
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx512,
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    Neon,
}

impl Isa {
    /// The best instruction set of this CPU: AVX-512F, else AVX2 with FMA, on x86-64; NEON on aarch64 (part of
    /// its baseline, so known at compile time); else portable.
    pub(crate) fn detected() -> Self {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            if x86_64::has_avx512() {
                return Isa(Level::Avx512);
            }
            if x86_64::has_avx2_fma() {
                return Isa(Level::Avx2Fma);
            }
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        return Isa(Level::Neon);
        #[cfg(not(all(target_arch = "aarch64", target_feature = "neon")))]
        Isa(Level::Portable)
    }

    /// The unfused portable kernels, on any CPU.
    #[cfg(test)]
    pub(crate) const PORTABLE: Isa = Isa(Level::Portable);

    /// Every instruction set this CPU can run, the portable ones first.
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Isa> {
        let mut all = vec![Isa(Level::Portable), Isa(Level::PortableFused)];
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            if x86_64::has_avx2_fma() {
                all.push(Isa(Level::Avx2Fma));
            }
            if x86_64::has_avx512() {
                all.push(Isa(Level::Avx512));
            }
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        all.push(Isa(Level::Neon));
        all
    }

    /// Whether the block products, block convolutions and Gaussian draws fuse their multiply-adds on this
    /// instruction set (a constant where the portable level is not built).
    pub(crate) fn fused(self) -> bool {
        match self.0 {
            #[cfg(any(test, not(all(target_arch = "aarch64", target_feature = "neon"))))]
            Level::Portable => false,
            #[allow(unreachable_patterns)]
            _ => true,
        }
    }

    /// Whether a block convolution with an image and kernels per sample regroups its samples in eights before
    /// it runs (`portable::conv`'s `conv_grouped`): on AVX2, whose sixteen registers the sample-minor tiles
    /// overflow, and on AVX-512, where it pays too (measured: `benches/README.md`, sessions 19 and 24); not on
    /// NEON, where it is not built.
    pub(crate) fn regroups_conv_samples(self) -> bool {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        return matches!(self.0, Level::Avx2Fma | Level::Avx512);
        #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
        false
    }

    /// Whether a first Bayesian convolution of one image for 32 samples runs with the max pooling after it fused
    /// (`conv2d_block_pooled`): on AVX-512, whose 32 registers hold a tile's 4 × 32 sums; on AVX2 they spill and
    /// the regrouped kernel was faster (`benches/README.md`, session 42); not on NEON, where the fused kernel
    /// would grow the phones' library past its budget (`android/size.sh`).
    pub(crate) fn pools_in_conv_tiles(self) -> bool {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        return matches!(self.0, Level::Avx512);
        #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
        false
    }

    /// `work.run()`, compiled for this instruction set where that pays (x86-64: AVX2 + FMA, AVX-512): the
    /// predictor's block of element-wise passes (the noise, ReLU, squares, live rows), whose `#[inline(always)]`
    /// kernels are then built for 256- or 512-bit vectors (the same operations, so the same bits).
    /// `benches/README.md`, "The kernel room", has the measurements.
    #[inline(always)]
    pub(crate) fn run<W: Compiled>(self, work: W) -> W::Output {
        match self.0 {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: an `Isa` names only an instruction set this CPU has (see the type's documentation).
            Level::Avx512 => unsafe { x86_64::avx512::run(work) },
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: as above.
            Level::Avx2Fma => unsafe { x86_64::avx2::run(work) },
            _ => work.run(),
        }
    }
}

/// Work that [`Isa::run`] compiles for an instruction set. Its `run` must be `#[inline(always)]`, and so must
/// everything in it that should be built with the instruction set's features: the compiler inlines such a body
/// into the instruction set's entry point, while a closure stays a function of its own, built for the baseline.
pub(crate) trait Compiled {
    type Output;
    fn run(self) -> Self::Output;
}

/// `y = W · h` for a dense row-major `[rows × cols]` matrix `w` and a block `h` of `s > 1` samples
/// (`[cols × s]`, row-major; `y` is `[rows × s]`), summing over the columns in `live` only, in their order
/// (see [`portable::block_product_dense`] for the bits).
pub(crate) fn dense_block_product(isa: Isa, w: &[f32], cols: usize, h: &[f32], s: usize, live: &[u32], y: &mut [f32]) {
    match isa.0 {
        #[cfg(any(test, not(all(target_arch = "aarch64", target_feature = "neon"))))]
        Level::Portable => portable::block_product_dense::<false>(w, cols, h, s, live, y),
        #[cfg(test)]
        Level::PortableFused => portable::block_product_dense::<true>(w, cols, h, s, live, y),
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        // SAFETY: an `Isa` names only an instruction set this CPU has.
        Level::Avx512 if s == SAMPLE_BLOCK => unsafe { x86_64::avx512::block_product_dense(w, cols, h, live, y) },
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        // SAFETY: AVX-512F implies AVX2 and FMA, and an `Isa` names only an instruction set this CPU has.
        Level::Avx512 | Level::Avx2Fma => unsafe { x86_64::avx2::block_product_dense(w, cols, h, s, live, y) },
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        // SAFETY: an `Isa` names only an instruction set this CPU has.
        Level::Neon if s == SAMPLE_BLOCK => unsafe { aarch64::block_product_dense(w, cols, h, live, y) },
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Level::Neon => portable::block_product_dense::<true>(w, cols, h, s, live, y),
    }
}

/// `y = W · h` for the CSR matrix of `pattern` with `values` and a block `h` of `s > 1` samples (see
/// [`portable::block_product_csr`] for the bits).
pub(crate) fn csr_block_product(isa: Isa, pattern: &CsrPattern, values: &[f32], h: &[f32], s: usize, y: &mut [f32]) {
    // The intrinsic kernels for blocks of 32 (where every column index has its row of `h`).
    #[cfg(any(all(feature = "std", target_arch = "x86_64"), all(target_arch = "aarch64", target_feature = "neon")))]
    if let Some(block) = CsrBlock::new(pattern, values, h).filter(|_| s == SAMPLE_BLOCK) {
        match isa.0 {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: an `Isa` names only an instruction set this CPU has.
            Level::Avx512 => return unsafe { x86_64::avx512::block_product_csr(&block, y) },
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            // SAFETY: as above.
            Level::Neon => return unsafe { aarch64::block_product_csr(&block, y) },
            // (On aarch64 outside tests NEON is the only level.)
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
    let (row_ptr, col_idx) = (pattern.row_ptr(), pattern.col_idx());
    match isa.0 {
        #[cfg(any(test, not(all(target_arch = "aarch64", target_feature = "neon"))))]
        Level::Portable => portable::block_product_csr::<false>(row_ptr, col_idx, values, h, s, y),
        #[cfg(test)]
        Level::PortableFused => portable::block_product_csr::<true>(row_ptr, col_idx, values, h, s, y),
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        // SAFETY: AVX-512F implies AVX2 and FMA, and an `Isa` names only an instruction set this CPU has.
        Level::Avx512 | Level::Avx2Fma => unsafe { x86_64::avx2::block_product_csr(row_ptr, col_idx, values, h, s, y) },
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Level::Neon => portable::block_product_csr::<true>(row_ptr, col_idx, values, h, s, y),
    }
}

/// Local reparameterization of a CSR Bayesian layer for a block of [`SAMPLE_BLOCK`] samples in one pass over
/// the pattern, where the instruction set has such a kernel: `y[j, t] = m + (bias_mu[j] + sqrt(v + bias_var[j])
/// * noise[j, t])` with `m = sum_c mu[j, c] h[c, t]` and `v = sum_c var[j, c] h[c, t]^2` over row `j`'s entries
/// in order, fused. The bits of two fused [`csr_block_product`]s (on `h` and its squares) followed by the
/// element-wise sum. Returns `false`, leaving `y` alone, where there is no such kernel (or `s` is not
/// [`SAMPLE_BLOCK`]).
pub(crate) fn csr_local_reparam_one_pass(
    isa: Isa,
    pattern: &CsrPattern,
    weights: (&[f32], &[f32]),
    bias: (&[f32], &[f32]),
    (h, s): (&[f32], usize),
    noise: &[f32],
    y: &mut [f32],
) -> bool {
    #[cfg(any(all(feature = "std", target_arch = "x86_64"), all(target_arch = "aarch64", target_feature = "neon")))]
    if let Some(csr) = CsrBlock::new(pattern, weights, h).filter(|_| s == SAMPLE_BLOCK) {
        let block = LocalReparamBlock::new(csr, bias, noise);
        match isa.0 {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: an `Isa` names only an instruction set this CPU has.
            Level::Avx512 => unsafe { x86_64::avx512::local_reparam_csr(&block, y) },
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: as above.
            Level::Avx2Fma => unsafe { x86_64::avx2::local_reparam_csr(&block, y) },
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            // SAFETY: as above.
            Level::Neon => unsafe { aarch64::local_reparam_csr(&block, y) },
            #[allow(unreachable_patterns)]
            _ => return false,
        }
        return true;
    }
    // No such kernel for this block (and, in some builds, none at all: the arguments are used only above).
    let _ = (isa, pattern, weights, bias, h, s, noise, y);
    false
}

/// `y[j, t] += bias_mu[j] + sqrt(var[j, t] + bias_var[j]) * noise[j, t]` for a block of `s` samples: the end
/// of local reparameterization after its two block products (`y` holds the means).
#[inline(always)]
pub(crate) fn add_local_reparam_noise(
    y: &mut [f32],
    var: &[f32],
    noise: &[f32],
    (bias_mu, bias_var): (&[f32], &[f32]),
    s: usize,
) {
    let rows = y.chunks_exact_mut(s).zip(var.chunks_exact(s)).zip(noise.chunks_exact(s));
    for (((y_row, v_row), e_row), (b_mu, b_var)) in rows.zip(bias_mu.iter().zip(bias_var)) {
        for ((yv, vv), e) in y_row.iter_mut().zip(v_row).zip(e_row) {
            *yv += b_mu + crate::math::sqrtf(vv + b_var) * e;
        }
    }
}

/// [`conv2d_block_pooled`] on an image per sample (`x`: `[padded input × 32]`) for `isa`, where
/// [`Isa::pools_in_conv_tiles`]. Not inlined into the predictor's block (`Isa::run`): there it made the
/// regrouped kernel of a dense model's convolution slower (`benches/README.md`, session 43).
pub(crate) fn conv2d_block_pooled_per_sample(
    isa: Isa,
    plan: &ConvPlan,
    x: &[f32],
    kernels: (&[f32], &[f32]),
    out: &mut [f32],
) {
    match isa.0 {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        // SAFETY: an `Isa` names only an instruction set this CPU has.
        Level::Avx512 => unsafe { x86_64::avx512::conv2d_block_pooled_per_sample(plan, x, kernels, out) },
        _ if isa.fused() => portable::conv2d_block_pooled::<true>(plan, (x, true), kernels, out),
        _ => portable::conv2d_block_pooled::<false>(plan, (x, true), kernels, out),
    }
}

/// Fills `out` with independent N(0, 1) draws from sixteen generators seeded from `main` (see
/// `portable/gaussian.rs`), advancing `main` by 32 words. Fused where the instruction set has FMA.
pub(crate) fn fill_gaussian(isa: Isa, main: &mut Xoshiro256PlusPlus, out: &mut [f32]) {
    let mut lanes = portable::LaneGenerator::seeded(main);
    match isa.0 {
        #[cfg(any(test, not(all(target_arch = "aarch64", target_feature = "neon"))))]
        Level::Portable => portable::fill_gaussian::<16, false>(&mut lanes, out),
        #[cfg(test)]
        Level::PortableFused => portable::fill_gaussian::<16, true>(&mut lanes, out),
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        // SAFETY: an `Isa` names only an instruction set this CPU has.
        Level::Avx512 => unsafe { x86_64::avx512::fill_gaussian(&mut lanes, out) },
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        // SAFETY: as above.
        Level::Avx2Fma => unsafe { x86_64::avx2::fill_gaussian(&mut lanes, out) },
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Level::Neon => portable::fill_gaussian::<16, true>(&mut lanes, out),
    }
}

/// The softmax of each row of the row-major `[n × k]` `logits` into `probs`, then their Shannon entropies into
/// `out` (`terms` is scratch of `logits.len()`); never fused, so the same bits on every instruction set.
pub(crate) fn softmax_entropies(
    isa: Isa,
    logits: &[f32],
    k: usize,
    probs: &mut [f64],
    terms: &mut [f64],
    out: &mut [f64],
) {
    match isa.0 {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        // SAFETY: an `Isa` names only an instruction set this CPU has.
        Level::Avx512 => unsafe { x86_64::avx512::softmax_entropies(logits, k, probs, terms, out) },
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        // SAFETY: as above.
        Level::Avx2Fma => unsafe { x86_64::avx2::softmax_entropies(logits, k, probs, terms, out) },
        _ => portable::softmax_entropies(logits, k, probs, terms, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An odd number of rows; sparse rows of different lengths (row j keeps part of its first 6 (17j mod 7) + 3
    /// columns), so in some pairs of rows the first and in others the second has entries left over.
    fn ragged(rows: usize, cols: usize) -> CsrPattern {
        CsrPattern::from_mask(rows, cols, |k| !k.is_multiple_of(3) && k % cols < 6 * (k / cols * 17 % 7) + 3)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn every_instruction_set_gives_the_bits_of_its_portable_kind() {
        let (rows, cols) = (7, 45);
        let pattern = ragged(rows, cols);
        let dense: Vec<f32> = (0..rows * cols).map(|k| ((k as f32) * 0.37).sin()).collect();
        let values: Vec<f32> = (0..pattern.nnz()).map(|k| ((k as f32) * 0.53).cos()).collect();
        for s in [2, 3, 4, 8, 16, 32] {
            let h: Vec<f32> = (0..cols * s).map(|k| ((k as f32) * 0.11).cos().max(0.0)).collect();
            let mut live = vec![0; cols];
            let live = live_rows(&h, s, &mut live);
            let run = |isa: Isa| {
                let (mut d, mut c) = (vec![f32::NAN; rows * s], vec![f32::NAN; rows * s]);
                dense_block_product(isa, &dense, cols, &h, s, live, &mut d);
                csr_block_product(isa, &pattern, &values, &h, s, &mut c);
                (bits(&d), bits(&c), d)
            };
            let (unfused, fused) = (run(Isa::PORTABLE), run(Isa(Level::PortableFused)));
            for isa in Isa::available() {
                let want = if isa.fused() { &fused } else { &unfused };
                let got = run(isa);
                assert_eq!((&got.0, &got.1), (&want.0, &want.1), "{isa:?}, s = {s}");
            }
            for (p, f) in unfused.2.iter().zip(&fused.2) {
                assert!((p - f).abs() <= 1e-5 * (1.0 + p.abs()), "{p} vs {f}");
            }
        }
    }

    #[test]
    fn the_one_pass_sparse_kernels_give_the_bits_of_two_products_and_the_sum() {
        let (rows, cols, s) = (7, 45, SAMPLE_BLOCK);
        let pattern = ragged(rows, cols);
        let mu: Vec<f32> = (0..pattern.nnz()).map(|k| ((k as f32) * 0.37).sin()).collect();
        let var: Vec<f32> = (0..pattern.nnz()).map(|k| ((k as f32) * 0.23).sin().powi(2)).collect();
        let (b_mu, b_var): (Vec<f32>, Vec<f32>) = (0..rows).map(|j| (j as f32 * 0.3 - 1.0, 0.01 * j as f32)).unzip();
        let h: Vec<f32> = (0..cols * s).map(|k| ((k as f32) * 0.11).cos().max(0.0)).collect();
        let h_sq: Vec<f32> = h.iter().map(|v| v * v).collect();
        let noise: Vec<f32> = (0..rows * s).map(|k| ((k as f32) * 0.71).sin() * 2.0).collect();
        let mut ran = 0;
        for isa in Isa::available() {
            let mut one_pass = vec![f32::NAN; rows * s];
            if !csr_local_reparam_one_pass(isa, &pattern, (&mu, &var), (&b_mu, &b_var), (&h, s), &noise, &mut one_pass)
            {
                assert!(one_pass.iter().all(|v| v.is_nan()));
                continue;
            }
            ran += 1;
            let (mut y, mut v) = (vec![0.0; rows * s], vec![0.0; rows * s]);
            csr_block_product(isa, &pattern, &mu, &h, s, &mut y);
            csr_block_product(isa, &pattern, &var, &h_sq, s, &mut v);
            add_local_reparam_noise(&mut y, &v, &noise, (&b_mu, &b_var), s);
            assert_eq!(bits(&one_pass), bits(&y), "{isa:?}");
        }
        // x86-64 with AVX2 or AVX-512 and aarch64 have such a kernel: the test must have compared it there.
        let one_pass = |isa: &Isa| match isa.0 {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Level::Avx512 | Level::Avx2Fma => true,
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Level::Neon => true,
            _ => false,
        };
        assert_eq!(ran, Isa::available().iter().filter(|i| one_pass(i)).count());
    }

    #[test]
    fn every_build_of_the_gaussian_fill_gives_the_bits_of_its_kind() {
        use rand_xoshiro::rand_core::{Rng, SeedableRng};
        let lens: &[usize] = if cfg!(miri) { &[0, 1, 33, 100] } else { &[0, 1, 7, 31, 32, 33, 1000, 12_800] };
        for &len in lens {
            let draw = |isa: Isa| {
                let (mut main, mut out) = (Xoshiro256PlusPlus::seed_from_u64(9), vec![1.0f32; len]);
                fill_gaussian(isa, &mut main, &mut out);
                (bits(&out), main.next_u64(), out)
            };
            let (unfused, fused) = (draw(Isa::PORTABLE), draw(Isa(Level::PortableFused)));
            for isa in Isa::available() {
                let got = draw(isa);
                let want = if isa.fused() { &fused } else { &unfused };
                assert_eq!((&got.0, got.1), (&want.0, want.1), "{isa:?}, len {len}");
            }
            // Fusing changes the last bits only; the caller's stream advances alike.
            assert_eq!(fused.1, unfused.1);
            for (f, u) in fused.2.iter().zip(&unfused.2) {
                assert!((f - u).abs() <= 1e-6 * (1.0 + u.abs()), "{f} vs {u}");
            }
        }
    }

    #[test]
    fn every_build_of_softmax_and_entropies_gives_the_portable_bits() {
        let logits: Vec<f32> = (0..320).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let run = |isa: Isa| {
            let (mut p, mut t, mut h) = (vec![0.0; 320], vec![0.0; 320], vec![0.0; 32]);
            softmax_entropies(isa, &logits, 10, &mut p, &mut t, &mut h);
            p.iter().chain(&h).map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        let portable = run(Isa::PORTABLE);
        for isa in Isa::available() {
            assert_eq!(run(isa), portable, "{isa:?}");
        }
    }

    #[test]
    fn the_detected_instruction_set_is_available() {
        assert!(Isa::available().contains(&Isa::detected()));
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        assert_eq!(Isa::detected(), Isa(Level::Neon));
    }
}
