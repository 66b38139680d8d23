//! The portable kernels compiled for AVX2 + FMA: 256-bit vectors and fused multiply-adds (the fused portable
//! bits), and the sliced sparse products with one gather per step (unfused, the portable bits).
//!
//! Every function here needs a CPU with AVX2 and FMA; [`super::super::Isa`] calls them only on one.

use super::super::portable::{self, LaneGenerator};
use super::super::sliced::{Residue, LANES};
use core::arch::x86_64::*;

portable_entry_points!("avx2,fma");

/// [`portable::block_product_dense`], fused.
#[target_feature(enable = "avx2,fma")]
pub(in crate::kernels) fn block_product_dense(
    w: &[f32],
    cols: usize,
    h: &[f32],
    s: usize,
    live: &[u32],
    y: &mut [f32],
) {
    portable::block_product_dense::<true>(w, cols, h, s, live, y)
}

/// [`portable::block_product_csr`], fused.
#[target_feature(enable = "avx2,fma")]
pub(in crate::kernels) fn block_product_csr(
    row_ptr: &[u32],
    col_idx: &[u32],
    values: &[f32],
    h: &[f32],
    s: usize,
    y: &mut [f32],
) {
    portable::block_product_csr::<true>(row_ptr, col_idx, values, h, s, y)
}

/// [`portable::fill_gaussian`], fused, eight lanes at a time (sixteen spill registers at 256 bits).
#[target_feature(enable = "avx2,fma")]
pub(in crate::kernels) fn fill_gaussian(lanes: &mut LaneGenerator, out: &mut [f32]) {
    portable::fill_gaussian::<8, true>(lanes, out)
}

/// The sliced products of one group ([`super::super::sliced`]) with each step's eight entries of `x` in one
/// gather. Multiply and add stay separate (no FMA), as in [`portable::dot`].
///
/// # Safety
/// The CPU has AVX2, and every column index of `residues` is below `x.len()`.
#[target_feature(enable = "avx2")]
pub(in crate::kernels) unsafe fn sliced_group<const PAIR: bool>(
    residues: &[Residue<'_>; LANES],
    x: &[f32],
) -> ([f32; LANES], [f32; LANES]) {
    let (mut acc_m, mut acc_v) = ([_mm256_setzero_ps(); LANES], [_mm256_setzero_ps(); LANES]);
    for (l, r) in residues.iter().enumerate() {
        // Local sums, kept in registers across the steps.
        let (mut am, mut av) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for ((cols, mu), var) in r.columns.iter().zip(r.mu).zip(r.var) {
            // SAFETY: the loads read exactly the eight values of `cols`, `mu` and `var`; every column index is
            // below `x.len()` (the caller's promise), so the gather stays inside `x`.
            let (xs, mu, var) = unsafe {
                let idx = _mm256_loadu_si256(cols.as_ptr().cast());
                (_mm256_i32gather_ps::<4>(x.as_ptr(), idx), _mm256_loadu_ps(mu.as_ptr()), _mm256_loadu_ps(var.as_ptr()))
            };
            am = _mm256_add_ps(am, _mm256_mul_ps(mu, xs));
            if PAIR {
                av = _mm256_add_ps(av, _mm256_mul_ps(var, _mm256_mul_ps(xs, xs)));
            }
        }
        (acc_m[l], acc_v[l]) = (am, av);
    }
    (fold(acc_m), fold(acc_v))
}

/// Folds the eight partial-sum vectors in [`portable::dot`]'s order.
#[target_feature(enable = "avx2")]
fn fold(acc: [__m256; LANES]) -> [f32; LANES] {
    let pairs = [0, 1, 2, 3].map(|l| _mm256_add_ps(acc[l], acc[l + 4]));
    let sum = _mm256_add_ps(_mm256_add_ps(pairs[0], pairs[2]), _mm256_add_ps(pairs[1], pairs[3]));
    let mut out = [0.0f32; LANES];
    // SAFETY: the store writes exactly the eight values of `out`.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out
}
