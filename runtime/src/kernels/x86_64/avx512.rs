//! AVX-512 (AVX-512F) kernels: the 32-sample block products written with intrinsics, because the compiler keeps
//! the portable kernels at 256 bits even where 512-bit registers are enabled; and the portable kernels compiled
//! for AVX-512. All fused, with the fused portable bits: every sum adds its products in the same order.
//!
//! Every function here needs a CPU with AVX-512F; [`super::super::Isa`] calls them only on one.

use super::super::csr_walk::{CsrBlock, LocalReparamBlock};
use super::super::portable::{self, LaneGenerator, H_SLICE_BYTES};
use super::super::SAMPLE_BLOCK;

// A block row of the sample block is two 512-bit registers in every kernel below.
const _: () = assert!(SAMPLE_BLOCK == 32, "the AVX-512 kernels hold a row of a sample block in two registers");

portable_entry_points!("avx512f");

/// [`portable::conv2d_block_pooled`] on an image per sample, fused.
#[target_feature(enable = "avx512f")]
pub(in crate::kernels) fn conv2d_block_pooled_per_sample(
    plan: &portable::ConvPlan,
    x: &[f32],
    kernels: (&[f32], &[f32]),
    out: &mut [f32],
) {
    portable::conv2d_block_pooled::<true>(plan, (x, true), kernels, out)
}

/// [`portable::fill_gaussian`], fused, sixteen lanes (one 512-bit vector) at a time.
#[target_feature(enable = "avx512f")]
pub(in crate::kernels) fn fill_gaussian(lanes: &mut LaneGenerator, out: &mut [f32]) {
    portable::fill_gaussian::<16, true>(lanes, out)
}

/// [`portable::block_product_dense`] for blocks of 32 samples (fused): four rows of `W` at a time, each
/// row's 32 sums in two 512-bit registers, so one load of a row of `h` serves eight independent sums. The
/// bits of `block_product_dense::<true>`: every sum still adds its products in column order, fused. (The
/// compiler keeps the portable kernel at 256 bits even when AVX-512 is enabled, hence the intrinsics.)
#[target_feature(enable = "avx512f")]
pub(in crate::kernels) fn block_product_dense(w: &[f32], cols: usize, h: &[f32], live: &[u32], y: &mut [f32]) {
    use core::arch::x86_64::*;
    use row32::{load, madd, store};
    let h = h.as_chunks::<32>().0;
    let rows = w.len() / cols.max(1);
    let y = &mut y.as_chunks_mut::<32>().0[..rows];
    y.fill([0.0; 32]);
    for live in live.chunks(H_SLICE_BYTES / (4 * 32)) {
        let mut y_quads = y.chunks_exact_mut(4);
        let mut w_quads = w.chunks_exact(4 * cols);
        for (quad, y_quad) in (&mut w_quads).zip(&mut y_quads) {
            let (w0, rest) = quad.split_at(cols);
            let (w1, rest) = rest.split_at(cols);
            let (w2, w3) = rest.split_at(cols);
            let ([mut a0, mut a1], [mut b0, mut b1]) = (load(&y_quad[0]), load(&y_quad[1]));
            let ([mut c0, mut c1], [mut d0, mut d1]) = (load(&y_quad[2]), load(&y_quad[3]));
            for c in live.iter().map(|c| *c as usize) {
                let [h0, h1] = load(&h[c]);
                let (u, v) = (_mm512_set1_ps(w0[c]), _mm512_set1_ps(w1[c]));
                a0 = _mm512_fmadd_ps(u, h0, a0);
                a1 = _mm512_fmadd_ps(u, h1, a1);
                b0 = _mm512_fmadd_ps(v, h0, b0);
                b1 = _mm512_fmadd_ps(v, h1, b1);
                let (u, v) = (_mm512_set1_ps(w2[c]), _mm512_set1_ps(w3[c]));
                c0 = _mm512_fmadd_ps(u, h0, c0);
                c1 = _mm512_fmadd_ps(u, h1, c1);
                d0 = _mm512_fmadd_ps(v, h0, d0);
                d1 = _mm512_fmadd_ps(v, h1, d1);
            }
            store(&mut y_quad[0], [a0, a1]);
            store(&mut y_quad[1], [b0, b1]);
            store(&mut y_quad[2], [c0, c1]);
            store(&mut y_quad[3], [d0, d1]);
        }
        for (row, y_row) in w_quads.remainder().chunks_exact(cols).zip(y_quads.into_remainder()) {
            let sums = live.iter().fold(load(y_row), |a, c| madd(a, row[*c as usize], &h[*c as usize]));
            store(y_row, sums);
        }
    }
}

/// [`portable::block_product_csr`] for blocks of 32 samples (fused): rows in pairs with their entries
/// interleaved, as in the portable kernel ([`CsrBlock::row_pairs`]), each row's 32 sums in two 512-bit registers.
/// The bits of `block_product_csr::<true>`.
#[target_feature(enable = "avx512f")]
pub(in crate::kernels) fn block_product_csr(block: &CsrBlock<'_, &[f32]>, y: &mut [f32]) {
    use core::arch::x86_64::*;
    use row32::{madd, store};
    let y = &mut y.as_chunks_mut::<32>().0[..block.rows()];
    block.row_pairs([_mm512_setzero_ps(); 2], |a, u, r| madd(a, u, r), |j, sums| store(&mut y[j], sums));
}

/// Local reparameterization of a CSR Bayesian layer for a block of 32 samples, in one pass
/// over the pattern: `y[j, t] = m + (bias_mu[j] + sqrt(v + bias_var[j]) * noise[j, t])` with `m` the sum of
/// `mu[j, c] * h[c, t]` and `v` that of `var[j, c] * h[c, t]^2` over row `j`'s entries in order, each
/// product added with a fused multiply-add. Every operation and its order is that of two
/// [`portable::block_product_csr`]`::<true>` calls (on `h` and its squares) followed by the element-wise sum, so the
/// bits are theirs; but each column index and row of `h` is read once for both sums and the squares and
/// variances never go through memory. `y` is `[_ × 32]`, row-major.
#[target_feature(enable = "avx512f")]
pub(in crate::kernels) fn local_reparam_csr(block: &LocalReparamBlock<'_>, y: &mut [f32]) {
    use core::arch::x86_64::*;
    use row32::{load, madd_pair, store};
    let y = &mut y.as_chunks_mut::<32>().0[..block.csr.rows()];
    // `m + (b_mu + sqrt(v + b_var) * e)`, lane by lane, written to row `j` of `y`.
    let finish = |j: usize, (m, v): ([__m512; 2], [__m512; 2])| {
        let (b_mu, b_var, e) = block.row_end(j);
        let (b_mu, b_var, e) = (_mm512_set1_ps(b_mu), _mm512_set1_ps(b_var), load(e));
        let lane = |k: usize| {
            let sd = _mm512_sqrt_ps(_mm512_add_ps(v[k], b_var));
            _mm512_add_ps(m[k], _mm512_add_ps(b_mu, _mm512_mul_ps(sd, e[k])))
        };
        store(&mut y[j], [lane(0), lane(1)]);
    };
    let zero = [_mm512_setzero_ps(); 2];
    block.csr.row_pairs((zero, zero), |a, (u, w), r| madd_pair(a, u, w, r), finish);
}

/// Rows of 32 floats as two 512-bit halves, for the AVX-512 block products.
mod row32 {
    use core::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn load(r: &[f32; 32]) -> [__m512; 2] {
        // SAFETY: reads exactly the 32 floats of `r`.
        unsafe { [_mm512_loadu_ps(r.as_ptr()), _mm512_loadu_ps(r.as_ptr().add(16))] }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn store(r: &mut [f32; 32], a: [__m512; 2]) {
        // SAFETY: writes exactly the 32 floats of `r`.
        unsafe {
            _mm512_storeu_ps(r.as_mut_ptr(), a[0]);
            _mm512_storeu_ps(r.as_mut_ptr().add(16), a[1]);
        }
    }

    /// `(m + u · r, v + w · r²)`, each lane one rounded square and two fused multiply-adds.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn madd_pair(
        (m, v): ([__m512; 2], [__m512; 2]),
        u: f32,
        w: f32,
        r: &[f32; 32],
    ) -> ([__m512; 2], [__m512; 2]) {
        let ([r0, r1], u, w) = (load(r), _mm512_set1_ps(u), _mm512_set1_ps(w));
        let (q0, q1) = (_mm512_mul_ps(r0, r0), _mm512_mul_ps(r1, r1));
        (
            [_mm512_fmadd_ps(u, r0, m[0]), _mm512_fmadd_ps(u, r1, m[1])],
            [_mm512_fmadd_ps(w, q0, v[0]), _mm512_fmadd_ps(w, q1, v[1])],
        )
    }

    /// `a + u · r`, each lane one fused multiply-add.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn madd(a: [__m512; 2], u: f32, r: &[f32; 32]) -> [__m512; 2] {
        let ([r0, r1], u) = (load(r), _mm512_set1_ps(u));
        [_mm512_fmadd_ps(u, r0, a[0]), _mm512_fmadd_ps(u, r1, a[1])]
    }
}
