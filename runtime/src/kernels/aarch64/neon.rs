//! NEON kernels (fused multiply-adds, `vfmaq_f32`) with the bits of the fused portable ones: every sum adds its
//! products in the same order, each with one rounding. Built only for aarch64 with NEON (`super`'s `cfg`); each
//! function needs NEON, which [`super::super::Isa`] guarantees.

use super::super::csr_walk::{CsrBlock, LocalReparamBlock};
use super::super::portable::H_SLICE_BYTES;
use super::super::sliced::{Residue, LANES};
use super::super::SAMPLE_BLOCK;
use core::arch::aarch64::*;

// A row of the sample block is eight 128-bit registers in the block kernels below.
const _: () = assert!(SAMPLE_BLOCK == 32, "the NEON kernels hold a row of a sample block in eight registers");

/// A row of 32 floats in eight 128-bit registers.
type Row = [float32x4_t; 8];

#[target_feature(enable = "neon")]
#[inline]
fn load(r: &[f32; 32]) -> Row {
    // SAFETY: each load reads four of the 32 floats of `r`.
    core::array::from_fn(|k| unsafe { vld1q_f32(r.as_ptr().add(4 * k)) })
}

#[target_feature(enable = "neon")]
#[inline]
fn store(r: &mut [f32; 32], a: Row) {
    for (k, v) in a.into_iter().enumerate() {
        // SAFETY: each store writes four of the 32 floats of `r`.
        unsafe { vst1q_f32(r.as_mut_ptr().add(4 * k), v) };
    }
}

/// `a + u · r`, each lane one fused multiply-add.
#[target_feature(enable = "neon")]
#[inline]
fn madd(a: Row, u: f32, r: &[f32; 32]) -> Row {
    let (r, u) = (load(r), vdupq_n_f32(u));
    core::array::from_fn(|k| vfmaq_f32(a[k], u, r[k]))
}

/// `(m + u · r, v + w · r²)`, each lane one rounded square and two fused multiply-adds.
#[target_feature(enable = "neon")]
#[inline]
fn madd_pair((m, v): (Row, Row), u: f32, w: f32, r: &[f32; 32]) -> (Row, Row) {
    let (r, u, w) = (load(r), vdupq_n_f32(u), vdupq_n_f32(w));
    (
        core::array::from_fn(|k| vfmaq_f32(m[k], u, r[k])),
        core::array::from_fn(|k| vfmaq_f32(v[k], w, vmulq_f32(r[k], r[k]))),
    )
}

/// The fused portable dense block product for blocks of 32 samples: two rows of `W` at a time, each row's 32
/// sums in eight registers, so one load of a row of `h` serves sixteen independent sums.
#[target_feature(enable = "neon")]
pub(in crate::kernels) fn block_product_dense(w: &[f32], cols: usize, h: &[f32], live: &[u32], y: &mut [f32]) {
    let h = h.as_chunks::<32>().0;
    let rows = w.len() / cols.max(1);
    let y = &mut y.as_chunks_mut::<32>().0[..rows];
    y.fill([0.0; 32]);
    for live in live.chunks(H_SLICE_BYTES / (4 * 32)) {
        let mut y_pairs = y.chunks_exact_mut(2);
        let mut w_pairs = w.chunks_exact(2 * cols);
        for (pair, y_pair) in (&mut w_pairs).zip(&mut y_pairs) {
            let (w0, w1) = pair.split_at(cols);
            let (mut a, mut b) = (load(&y_pair[0]), load(&y_pair[1]));
            for c in live.iter().map(|c| *c as usize) {
                let (r, u, v) = (load(&h[c]), vdupq_n_f32(w0[c]), vdupq_n_f32(w1[c]));
                for k in 0..8 {
                    a[k] = vfmaq_f32(a[k], u, r[k]);
                    b[k] = vfmaq_f32(b[k], v, r[k]);
                }
            }
            store(&mut y_pair[0], a);
            store(&mut y_pair[1], b);
        }
        for (row, y_row) in w_pairs.remainder().chunks_exact(cols).zip(y_pairs.into_remainder()) {
            let sums = live.iter().fold(load(y_row), |a, c| madd(a, row[*c as usize], &h[*c as usize]));
            store(y_row, sums);
        }
    }
}

/// The fused portable CSR block product for blocks of 32 samples: rows in pairs with their entries interleaved
/// ([`CsrBlock::row_pairs`]), each row's 32 sums in eight registers.
#[target_feature(enable = "neon")]
pub(in crate::kernels) fn block_product_csr(block: &CsrBlock<'_, &[f32]>, y: &mut [f32]) {
    let y = &mut y.as_chunks_mut::<32>().0[..block.rows()];
    block.row_pairs([vdupq_n_f32(0.0); 8], |a, u, r| madd(a, u, r), |j, sums| store(&mut y[j], sums));
}

/// Local reparameterization of a CSR Bayesian layer for a block of 32 samples in one pass over the pattern (see
/// [`super::super::csr_local_reparam_one_pass`]): the bits of two fused CSR block products and the element-wise
/// sum, with each column index and row of `h` read once for both sums.
#[target_feature(enable = "neon")]
pub(in crate::kernels) fn local_reparam_csr(block: &LocalReparamBlock<'_>, y: &mut [f32]) {
    let y = &mut y.as_chunks_mut::<32>().0[..block.csr.rows()];
    // `m + (b_mu + sqrt(v + b_var) * e)`, lane by lane, written to row `j` of `y`.
    let finish = |j: usize, (m, v): (Row, Row)| {
        let (b_mu, b_var, e) = block.row_end(j);
        let (b_mu, b_var, e) = (vdupq_n_f32(b_mu), vdupq_n_f32(b_var), load(e));
        let sums: Row = core::array::from_fn(|k| {
            vaddq_f32(m[k], vaddq_f32(b_mu, vmulq_f32(vsqrtq_f32(vaddq_f32(v[k], b_var)), e[k])))
        });
        store(&mut y[j], sums);
    };
    let zero = [vdupq_n_f32(0.0); 8];
    block.csr.row_pairs((zero, zero), |a, (u, w), r| madd_pair(a, u, w, r), finish);
}

/// The sliced products of one group ([`super::super::sliced`]): per step, the eight entries of `x` (and of `x2`)
/// gathered into two registers, then multiply and add unfused, as in [`super::super::dot`].
#[target_feature(enable = "neon")]
pub(in crate::kernels) fn sliced_group<const PAIR: bool>(
    residues: &[Residue<'_>; LANES],
    (x, x2): (&[f32], &[f32]),
) -> ([f32; LANES], [f32; LANES]) {
    let zero = [vdupq_n_f32(0.0); 2];
    let (mut acc_m, mut acc_v) = ([zero; LANES], [zero; LANES]);
    for (l, r) in residues.iter().enumerate() {
        let (mut am, mut av) = (zero, zero);
        for ((cols, mu), var) in r.columns.iter().zip(r.mu).zip(r.var) {
            let (xs, mu) = (halves(&cols.map(|c| x[c as usize])), halves(mu));
            for k in 0..2 {
                am[k] = vaddq_f32(am[k], vmulq_f32(mu[k], xs[k]));
            }
            if PAIR {
                let (x2s, var) = (halves(&cols.map(|c| x2[c as usize])), halves(var));
                for k in 0..2 {
                    av[k] = vaddq_f32(av[k], vmulq_f32(var[k], x2s[k]));
                }
            }
        }
        (acc_m[l], acc_v[l]) = (am, av);
    }
    (fold(acc_m), fold(acc_v))
}

/// Eight floats as two 128-bit registers.
#[target_feature(enable = "neon")]
#[inline]
fn halves(v: &[f32; LANES]) -> [float32x4_t; 2] {
    // SAFETY: the two loads read the eight floats of `v`.
    unsafe { [vld1q_f32(v.as_ptr()), vld1q_f32(v.as_ptr().add(4))] }
}

/// Folds the eight partial-sum vectors in [`super::super::dot`]'s order.
#[target_feature(enable = "neon")]
#[inline]
fn fold(acc: [[float32x4_t; 2]; LANES]) -> [f32; LANES] {
    let add = |a: [float32x4_t; 2], b: [float32x4_t; 2]| [vaddq_f32(a[0], b[0]), vaddq_f32(a[1], b[1])];
    let pairs = [0, 1, 2, 3].map(|l| add(acc[l], acc[l + 4]));
    let sum = add(add(pairs[0], pairs[2]), add(pairs[1], pairs[3]));
    let mut out = [0.0f32; LANES];
    // SAFETY: the two stores write the eight floats of `out`.
    unsafe {
        vst1q_f32(out.as_mut_ptr(), sum[0]);
        vst1q_f32(out.as_mut_ptr().add(4), sum[1]);
    }
    out
}
