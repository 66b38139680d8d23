//! The portable kernels compiled for AVX2 + FMA: 256-bit vectors and fused multiply-adds (the fused portable
//! bits); the sliced sparse products, eight loads of `x` (and of `x2`) per step (unfused, the portable bits); and
//! the one-pass local reparameterization of a CSR layer for 32 samples, written with intrinsics (the fused portable
//! bits).
//!
//! Every function here needs a CPU with AVX2 and FMA; [`super::super::Isa`] calls them only on one.

use super::super::csr_walk::LocalReparamBlock;
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

/// The sliced products of one group ([`super::super::sliced`]), each step's eight entries of `x` loaded one by
/// one into a vector (faster than one gather instruction: benches/README.md, session 25). Multiply and add stay
/// separate (no FMA), as in [`portable::dot`].
///
/// # Safety
/// The CPU has AVX2, and every column index of `residues` is below `x.len()` and `x2.len()`.
#[target_feature(enable = "avx2")]
pub(in crate::kernels) unsafe fn sliced_group<const PAIR: bool>(
    residues: &[Residue<'_>; LANES],
    (x, x2): (&[f32], &[f32]),
) -> ([f32; LANES], [f32; LANES]) {
    let (mut acc_m, mut acc_v) = ([_mm256_setzero_ps(); LANES], [_mm256_setzero_ps(); LANES]);
    for (l, r) in residues.iter().enumerate() {
        // Local sums, kept in registers across the steps.
        let (mut am, mut av) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for ((cols, mu), var) in r.columns.iter().zip(r.mu).zip(r.var) {
            // SAFETY: every column index is below `x.len()` and `x2.len()` (the caller's promise), so each load
            // of `x` and `x2` stays inside them; the vector loads read exactly the eight values of `mu`.
            let (xs, mu) = unsafe {
                let g = |l: usize| *x.get_unchecked(cols[l] as usize);
                let xs = _mm256_setr_ps(g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7));
                (xs, _mm256_loadu_ps(mu.as_ptr()))
            };
            am = _mm256_add_ps(am, _mm256_mul_ps(mu, xs));
            if PAIR {
                // SAFETY: as above, for `x2` and the eight values of `var`.
                let (x2s, var) = unsafe {
                    let g = |l: usize| *x2.get_unchecked(cols[l] as usize);
                    let x2s = _mm256_setr_ps(g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7));
                    (x2s, _mm256_loadu_ps(var.as_ptr()))
                };
                av = _mm256_add_ps(av, _mm256_mul_ps(var, x2s));
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

/// Local reparameterization of a CSR Bayesian layer for a block of 32 samples in one pass over the pattern (see
/// [`super::super::csr_local_reparam_one_pass`]): the bits of two fused CSR block products (on `h` and its
/// squares) and the element-wise sum, with each column index and row of `h` read once for both sums. A row's 32
/// sums of each kind are four 256-bit registers, so the rows go one by one (two rows' sixteen sums would spill).
#[target_feature(enable = "avx2,fma")]
pub(in crate::kernels) fn local_reparam_csr(block: &LocalReparamBlock<'_>, y: &mut [f32]) {
    let y = &mut y.as_chunks_mut::<32>().0[..block.csr.rows()];
    // `m + (b_mu + sqrt(v + b_var) * e)`, lane by lane, written to row `j` of `y`.
    let finish = |j: usize, (m, v): ([__m256; 4], [__m256; 4])| {
        let (b_mu, b_var, e) = block.row_end(j);
        let (b_mu, b_var, e) = (_mm256_set1_ps(b_mu), _mm256_set1_ps(b_var), row32::load(e));
        let sums = core::array::from_fn(|k| {
            let sd = _mm256_sqrt_ps(_mm256_add_ps(v[k], b_var));
            _mm256_add_ps(m[k], _mm256_add_ps(b_mu, _mm256_mul_ps(sd, e[k])))
        });
        row32::store(&mut y[j], sums);
    };
    let zero = [_mm256_setzero_ps(); 4];
    block.csr.rows_in_order((zero, zero), |a, (u, w), r| row32::madd_pair(a, u, w, r), finish);
}

/// Rows of 32 floats as four 256-bit registers.
mod row32 {
    use core::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn load(r: &[f32; 32]) -> [__m256; 4] {
        // SAFETY: each load reads eight of the 32 floats of `r`.
        core::array::from_fn(|k| unsafe { _mm256_loadu_ps(r.as_ptr().add(8 * k)) })
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn store(r: &mut [f32; 32], a: [__m256; 4]) {
        for (k, v) in a.into_iter().enumerate() {
            // SAFETY: each store writes eight of the 32 floats of `r`.
            unsafe { _mm256_storeu_ps(r.as_mut_ptr().add(8 * k), v) };
        }
    }

    /// `(m + u · r, v + w · r²)`, each lane one rounded square and two fused multiply-adds.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn madd_pair(
        (m, v): ([__m256; 4], [__m256; 4]),
        u: f32,
        w: f32,
        r: &[f32; 32],
    ) -> ([__m256; 4], [__m256; 4]) {
        let (r, u, w) = (load(r), _mm256_set1_ps(u), _mm256_set1_ps(w));
        (
            core::array::from_fn(|k| _mm256_fmadd_ps(u, r[k], m[k])),
            core::array::from_fn(|k| _mm256_fmadd_ps(w, _mm256_mul_ps(r[k], r[k]), v[k])),
        )
    }
}
