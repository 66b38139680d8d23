//! How a weight matrix is stored: densely, or as the CSR pattern of the weights that survived pruning.
//! Both layouts compute single-sample row dot products with the same lane structure, so a pruned matrix
//! gives bit-identical single-sample results in either layout; block (many-sample) products agree to float
//! rounding.

use crate::linalg::{block_product_csr, block_product_dense, dot, gemv, live_rows, sparse_dot};
#[cfg(all(feature = "std", target_arch = "x86_64"))]
use crate::linalg::{block_product_csr_32_avx512, block_product_dense_32_avx512, local_reparam_csr_32_avx512};
use crate::prelude::*;
use core::ops::Range;

/// Compressed sparse rows: row `j` holds the columns `col_idx[row_ptr[j]..row_ptr[j + 1]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrPattern {
    row_ptr: Vec<u32>,
    col_idx: Vec<u32>,
    /// One more than the largest column index (0 without entries): the kernels that read rows of a block
    /// without bounds checks need the block to have this many.
    columns_used: usize,
}

impl CsrPattern {
    /// Checks the pattern of a `rows x cols` matrix: `row_ptr` has `rows + 1` entries, starts at 0, never
    /// decreases and ends at `col_idx.len()`; each row's columns are strictly increasing and `< cols`.
    pub fn new(rows: usize, cols: usize, row_ptr: Vec<u32>, col_idx: Vec<u32>) -> Result<Self, String> {
        if row_ptr.len() != rows + 1 {
            return Err(format!("row_ptr has {} entries, expected {}", row_ptr.len(), rows + 1));
        }
        if row_ptr[0] != 0 {
            return Err(format!("row_ptr starts at {}, expected 0", row_ptr[0]));
        }
        if let Some(j) = row_ptr.windows(2).position(|w| w[1] < w[0]) {
            return Err(format!("row_ptr decreases at row {j}"));
        }
        if row_ptr[rows] as usize != col_idx.len() {
            return Err(format!("row_ptr ends at {}, but there are {} column indices", row_ptr[rows], col_idx.len()));
        }
        for (j, w) in row_ptr.windows(2).enumerate() {
            let cols_j = &col_idx[w[0] as usize..w[1] as usize];
            if let Some(c) = cols_j.iter().find(|c| **c as usize >= cols) {
                return Err(format!("row {j}: column index {c} out of range (the matrix has {cols} columns)"));
            }
            if cols_j.windows(2).any(|p| p[1] <= p[0]) {
                return Err(format!("row {j}: column indices are not strictly increasing"));
            }
        }
        Ok(Self::from_parts(row_ptr, col_idx))
    }

    /// The pattern of the entries of a row-major `rows x cols` matrix for which `keep(index)` holds.
    pub fn from_mask(rows: usize, cols: usize, keep: impl Fn(usize) -> bool) -> Self {
        let mut row_ptr = Vec::with_capacity(rows + 1);
        let mut col_idx = Vec::new();
        row_ptr.push(0);
        for j in 0..rows {
            col_idx.extend((0..cols).filter(|c| keep(j * cols + c)).map(|c| c as u32));
            row_ptr.push(col_idx.len() as u32);
        }
        Self::from_parts(row_ptr, col_idx)
    }

    fn from_parts(row_ptr: Vec<u32>, col_idx: Vec<u32>) -> Self {
        let columns_used = col_idx.iter().max().map_or(0, |c| *c as usize + 1);
        Self { row_ptr, col_idx, columns_used }
    }

    pub fn row_ptr(&self) -> &[u32] {
        &self.row_ptr
    }
    pub fn col_idx(&self) -> &[u32] {
        &self.col_idx
    }
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.col_idx.len()
    }
    /// One more than the largest column index; 0 when there are no entries.
    pub fn columns_used(&self) -> usize {
        self.columns_used
    }

    /// This pattern with a block `h` of 32 samples (`[_ × 32]`, row-major) for the AVX-512 kernels, which read
    /// rows of `h` without bounds checks: `None` unless the CPU has AVX-512F and `h` has a row for every column
    /// index (checked in O(1) from [`Self::columns_used`]).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[inline]
    pub(crate) fn avx512_block_32<'a>(&'a self, h: &'a [f32]) -> Option<Avx512CsrBlock<'a>> {
        (crate::cpu::avx512() && self.columns_used * 32 <= h.len()).then_some(Avx512CsrBlock { pattern: self, h })
    }
}

/// A CSR pattern and a block of 32 samples that meet the AVX-512 kernels' precondition; made only by
/// [`CsrPattern::avx512_block_32`], so its methods are safe.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub(crate) struct Avx512CsrBlock<'a> {
    pattern: &'a CsrPattern,
    h: &'a [f32],
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
impl Avx512CsrBlock<'_> {
    /// `y = W · h` for the matrix of this pattern with `values` ([`block_product_csr_32_avx512`]).
    #[inline]
    pub(crate) fn product(&self, values: &[f32], y: &mut [f32]) {
        let p = self.pattern;
        // SAFETY: the CPU supports AVX-512F and every column index is below `h.len() / 32`: both checked when
        // `self` was made.
        unsafe { block_product_csr_32_avx512(&p.row_ptr, &p.col_idx, values, self.h, y) }
    }

    /// One pass of local reparameterization ([`local_reparam_csr_32_avx512`]) with the weights' means and
    /// variances, the bias's, and the block's standard-normal `noise`.
    #[inline]
    pub(crate) fn local_reparam(
        &self,
        weights: (&[f32], &[f32]),
        bias: (&[f32], &[f32]),
        noise: &[f32],
        y: &mut [f32],
    ) {
        let p = self.pattern;
        // SAFETY: as in `product`.
        unsafe { local_reparam_csr_32_avx512((&p.row_ptr, &p.col_idx), weights, bias, self.h, noise, y) }
    }
}

/// The storage of a `rows x cols` weight matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightLayout {
    /// Every entry, row-major.
    Dense { rows: usize, cols: usize },
    /// Only the entries of the pattern, row by row.
    Csr { cols: usize, pattern: CsrPattern },
}

impl WeightLayout {
    /// Number of stored values.
    pub fn stored(&self) -> usize {
        match self {
            WeightLayout::Dense { rows, cols } => rows * cols,
            WeightLayout::Csr { pattern, .. } => pattern.nnz(),
        }
    }

    /// Number of rows (outputs).
    #[inline]
    pub(crate) fn rows(&self) -> usize {
        match self {
            WeightLayout::Dense { rows, .. } => *rows,
            WeightLayout::Csr { pattern, .. } => pattern.row_ptr.len() - 1,
        }
    }

    /// The stored values of row `j`.
    #[inline]
    pub(crate) fn row(&self, j: usize) -> Range<usize> {
        match self {
            WeightLayout::Dense { cols, .. } => j * cols..(j + 1) * cols,
            WeightLayout::Csr { pattern, .. } => pattern.row_ptr[j] as usize..pattern.row_ptr[j + 1] as usize,
        }
    }

    /// `sum_c W[j, c] x[c]` given the stored values of row `j`.
    #[inline]
    pub(crate) fn dot_row(&self, j: usize, row_values: &[f32], x: &[f32]) -> f32 {
        match self {
            WeightLayout::Dense { .. } => dot(row_values, x),
            WeightLayout::Csr { pattern, .. } => sparse_dot(row_values, &pattern.col_idx[self.row(j)], x),
        }
    }

    /// `y[j] = dot_row(j, values, x)` for every row (`y` holds at least `rows` values): [`gemv`] when dense.
    #[inline]
    fn matvec(&self, values: &[f32], x: &[f32], y: &mut [f32]) {
        let y = &mut y[..self.rows()];
        match self {
            WeightLayout::Dense { cols, .. } => gemv(values, *cols, x, y),
            WeightLayout::Csr { .. } => {
                for (j, yj) in y.iter_mut().enumerate() {
                    *yj = self.dot_row(j, &values[self.row(j)], x);
                }
            }
        }
    }

    /// `y[j] = bias[j] + dot_row(j, values, x)` for every row.
    #[inline]
    pub(crate) fn affine(&self, values: &[f32], bias: &[f32], x: &[f32], y: &mut [f32]) {
        self.matvec(values, x, y);
        y[..bias.len()].iter_mut().zip(bias).for_each(|(yj, b)| *yj += b);
    }

    /// The rows of the block `h` (`[cols × s]`) that [`Self::matmul_block`] must read, written to the front
    /// of `out`: for the dense layout those not all zero (ReLU leaves many hidden units at exactly zero for
    /// every sample of a block); none for CSR, which follows its own pattern.
    pub(crate) fn live_inputs<'o>(&self, h: &[f32], s: usize, out: &'o mut [u32]) -> &'o [u32] {
        match self {
            WeightLayout::Dense { .. } => live_rows(h, s, out),
            WeightLayout::Csr { .. } => &[],
        }
    }

    /// `y = W · h` for a block of samples: `h` is `[cols × s]` and `y` is `[rows × s]`, both row-major
    /// (one row per feature, one column per sample). Each stored weight is read once and multiplies a whole
    /// row of `h`, so the weights stream through the cache once per block whatever the number of samples.
    ///
    /// `live` lists, increasing, the rows of `h` that are not all zero ([`Self::live_inputs`]); the dense
    /// layout skips the others. That leaves every sum bit-identical: a partial sum starts at +0 and never becomes
    /// -0, so adding the exact zero `w * 0` cannot change it.
    ///
    /// Kernels, by CPU: AVX-512 for blocks of 32 (17% off a dense S = 32 prediction, 7% off a 95%-pruned one,
    /// against AVX2), else AVX2 + FMA, else portable (unfused); the first two give the same bits.
    pub(crate) fn matmul_block(&self, values: &[f32], h: &[f32], s: usize, live: &[u32], y: &mut [f32]) {
        if s == 1 {
            // One sample: the single-vector kernel, the same as `Mean`'s.
            return self.matvec(values, h, y);
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if let (WeightLayout::Dense { rows, cols }, 32, true) = (self, s, crate::cpu::avx512()) {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { block_product_dense_32_avx512(values, *cols, h, live, &mut y[..rows * s]) };
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if let (WeightLayout::Csr { pattern, .. }, 32) = (self, s) {
            if let Some(block) = pattern.avx512_block_32(h) {
                return block.product(values, &mut y[..self.rows() * s]);
            }
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if crate::cpu::avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above; `matmul_block_fma` needs nothing else.
            return unsafe { self.matmul_block_fma(values, h, s, live, y) };
        }
        self.matmul_block_portable::<false>(values, h, s, live, y)
    }

    /// [`Self::matmul_block`] compiled for x86-64 with AVX2 and FMA: 8-wide vectors and fused multiply-adds.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,fma")]
    fn matmul_block_fma(&self, values: &[f32], h: &[f32], s: usize, live: &[u32], y: &mut [f32]) {
        self.matmul_block_portable::<true>(values, h, s, live, y)
    }

    /// The block product for `s > 1` samples, each multiply-add fused when `FUSED`.
    #[inline(always)]
    fn matmul_block_portable<const FUSED: bool>(
        &self,
        values: &[f32],
        h: &[f32],
        s: usize,
        live: &[u32],
        y: &mut [f32],
    ) {
        let rows = self.rows();
        match self {
            WeightLayout::Dense { cols, .. } => {
                block_product_dense::<FUSED>(values, *cols, h, s, live, &mut y[..rows * s])
            }
            WeightLayout::Csr { pattern, .. } => {
                block_product_csr::<FUSED>(&pattern.row_ptr, &pattern.col_idx, values, h, s, &mut y[..rows * s])
            }
        }
    }

    /// Expands stored values to a dense row-major matrix (absent entries are 0).
    pub fn to_dense(&self, values: &[f32]) -> Vec<f32> {
        match self {
            WeightLayout::Dense { .. } => values.to_vec(),
            WeightLayout::Csr { cols, pattern } => {
                let rows = self.rows();
                let mut out = vec![0.0; rows * cols];
                for j in 0..rows {
                    for k in self.row(j) {
                        out[j * cols + pattern.col_idx[k] as usize] = values[k];
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_patterns_are_rejected_with_the_reason() {
        assert!(CsrPattern::new(2, 3, vec![0, 1, 2], vec![0, 2]).is_ok());
        for (ptr, idx, why) in [
            (vec![0, 1], vec![0], "entries"),
            (vec![1, 1, 2], vec![0, 1], "starts"),
            (vec![0, 2, 1], vec![0, 1], "decreases"),
            (vec![0, 1, 3], vec![0, 1], "ends"),
            (vec![0, 1, 2], vec![0, 3], "out of range"),
            (vec![0, 2, 2], vec![1, 1], "strictly"),
        ] {
            let e = CsrPattern::new(2, 3, ptr, idx).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn the_dispatched_block_product_is_the_fused_or_unfused_kernel_and_they_agree() {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        let fused = crate::cpu::avx2_fma();
        #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
        let fused = false;
        // An odd number of rows; the sparse rows of different lengths (row j keeps part of its first
        // 6 (17j mod 7) + 3 columns), so in some pairs of rows the first and in others the second has entries
        // left over.
        let (rows, cols) = (7, 45);
        let kept = |k: usize| !k.is_multiple_of(3) && k % cols < 6 * (k / cols * 17 % 7) + 3;
        let w: Vec<f32> = (0..rows * cols).map(|k| ((k as f32) * 0.37).sin()).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for layout in [
            WeightLayout::Dense { rows, cols },
            WeightLayout::Csr { cols, pattern: CsrPattern::from_mask(rows, cols, kept) },
        ] {
            let values: Vec<f32> = (0..rows * cols)
                .filter(|k| layout == WeightLayout::Dense { rows, cols } || kept(*k))
                .map(|k| w[k])
                .collect();
            for s in [2, 3, 4, 8, 16, 32] {
                let h: Vec<f32> = (0..cols * s).map(|k| ((k as f32) * 0.11).cos().max(0.0)).collect();
                let mut live = vec![0; cols];
                let live = layout.live_inputs(&h, s, &mut live);
                let (mut got, mut plain, mut fma) = (vec![0.0; rows * s], vec![0.0; rows * s], vec![0.0; rows * s]);
                layout.matmul_block(&values, &h, s, live, &mut got);
                layout.matmul_block_portable::<false>(&values, &h, s, live, &mut plain);
                layout.matmul_block_portable::<true>(&values, &h, s, live, &mut fma);
                assert_eq!(bits(&got), bits(if fused { &fma } else { &plain }), "s = {s}");
                for (p, f) in plain.iter().zip(&fma) {
                    assert!((p - f).abs() <= 1e-5 * (1.0 + p.abs()), "{p} vs {f}");
                }
            }
        }
    }

    #[test]
    fn csr_and_dense_give_bit_identical_row_products() {
        let (rows, cols) = (5, 37);
        let dense: Vec<f32> =
            (0..rows * cols).map(|k| if k % 3 == 0 || k % 7 == 0 { ((k as f32) * 0.37).sin() } else { 0.0 }).collect();
        let pattern = CsrPattern::from_mask(rows, cols, |k| dense[k] != 0.0);
        let values: Vec<f32> = dense.iter().copied().filter(|v| *v != 0.0).collect();
        let x: Vec<f32> = (0..cols).map(|c| (c as f32 * 0.11).cos()).collect();
        let (d, s) = (WeightLayout::Dense { rows, cols }, WeightLayout::Csr { cols, pattern });
        let (mut yd, mut ys) = (vec![0.0; rows], vec![0.0; rows]);
        d.affine(&dense, &[0.5; 5], &x, &mut yd);
        s.affine(&values, &[0.5; 5], &x, &mut ys);
        assert_eq!(yd, ys);
        assert_eq!(s.to_dense(&values), dense);
    }
}
