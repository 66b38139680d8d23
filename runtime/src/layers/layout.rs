//! How a weight matrix is stored: densely, or as the CSR pattern of the weights that survived pruning.
//! Both layouts compute single-sample row dot products with the same lane structure, so a pruned matrix
//! gives bit-identical single-sample results in either layout; block (many-sample) products agree to float
//! rounding. The products themselves are in [`crate::kernels`].

use crate::kernels::{self, dot, gemv, live_rows, sparse_dot, Isa, Lanes};
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

    /// [`Self::affine`] of [`INPUT_LANES`](kernels::INPUT_LANES) inputs side by side (`xt[c][i]` is value `c` of
    /// input `i`), with its bits in every lane, for the dense layout; `false`, leaving `y` alone, for CSR (its
    /// sparse rows have their kernel in [`kernels::SlicedWeights`]).
    #[inline(always)]
    pub(crate) fn affine_lanes(&self, values: &[f32], bias: &[f32], xt: &[Lanes], y: &mut [Lanes]) -> bool {
        let WeightLayout::Dense { rows, cols } = self else { return false };
        let y = &mut y[..*rows];
        kernels::gemv_lanes(values, *cols, xt, y);
        y.iter_mut().zip(bias).for_each(|(y, b)| y.iter_mut().for_each(|v| *v += b));
        true
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
    /// The kernels are `isa`'s ([`kernels::dense_block_product`], [`kernels::csr_block_product`]).
    pub(crate) fn matmul_block(&self, isa: Isa, values: &[f32], h: &[f32], s: usize, live: &[u32], y: &mut [f32]) {
        if s == 1 {
            // One sample: the single-vector kernel, the same as `Mean`'s.
            return self.matvec(values, h, y);
        }
        let y = &mut y[..self.rows() * s];
        match self {
            WeightLayout::Dense { cols, .. } => kernels::dense_block_product(isa, values, *cols, h, s, live, y),
            WeightLayout::Csr { pattern, .. } => kernels::csr_block_product(isa, pattern, values, h, s, y),
        }
    }

    /// `y = W h + b` for a block of `s` columns (`h` is `[cols × s]`, `y` is `[rows × s]`) with the stored
    /// `values` on `isa`: [`Self::matmul_block`] over the live rows of `h`, then the bias. `live` (`cols`) is scratch.
    #[inline(always)]
    pub(crate) fn affine_block(
        &self,
        isa: Isa,
        (values, bias): (&[f32], &[f32]),
        (h, s): (&[f32], usize),
        live: &mut [u32],
        y: &mut [f32],
    ) {
        let y = &mut y[..self.rows() * s];
        let live = self.live_inputs(h, s, live);
        self.matmul_block(isa, values, h, s, live, y);
        for (y_row, b) in y.chunks_exact_mut(s).zip(bias) {
            y_row.iter_mut().for_each(|v| *v += b);
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
