//! A sparse layer's weights column by column ([`ColumnWeights`]), for the single-input products of a first layer
//! whose input is mostly zeros (blank pixels): only the columns of the non-zero inputs are read.
//!
//! [`sparse_dot`](super::sparse_dot) adds the product of row `j`'s entry in column `c` to its partial sum
//! `c % 8`, in column order. Walking the columns in order and adding each entry's product to partial sum `c % 8`
//! of its row makes the same additions in the same order; a zero input's column adds exact zeros to sums that are
//! never −0, so leaving it out changes no bit. The eight sums of a row are then folded as `sparse_dot` folds them.

use super::dot::{combine, LANES};
use crate::layers::CsrPattern;
use crate::prelude::*;

/// The entries of a CSR matrix in column order, each with the partial sum it feeds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnWeights {
    /// Entries of column `c`: `col_ptr[c]..col_ptr[c + 1]`.
    col_ptr: Vec<u32>,
    /// Per entry, its partial sum: `8 * row + column % 8`.
    slots: Vec<u32>,
    /// Per entry, its mean and variance.
    values: Vec<[f32; 2]>,
    rows: usize,
}

impl ColumnWeights {
    /// The column-major copy of a CSR pattern of `cols` columns with one mean and one variance per entry; `None`
    /// if the numbers of values disagree with the pattern or a column is out of range (a valid model has
    /// neither).
    pub(crate) fn new(pattern: &CsrPattern, cols: usize, mu: &[f32], var: &[f32]) -> Option<Self> {
        let (row_ptr, col_idx) = (pattern.row_ptr(), pattern.col_idx());
        let nnz = pattern.nnz();
        if mu.len() != nnz || var.len() != nnz || pattern.columns_used() > cols {
            return None;
        }
        let mut col_ptr = vec![0u32; cols + 1];
        col_idx.iter().for_each(|c| col_ptr[*c as usize + 1] += 1);
        for c in 0..cols {
            col_ptr[c + 1] += col_ptr[c];
        }
        let mut next: Vec<u32> = col_ptr[..cols].to_vec();
        let (mut slots, mut values) = (vec![0u32; nnz], vec![[0.0; 2]; nnz]);
        for j in 0..row_ptr.len() - 1 {
            for k in row_ptr[j] as usize..row_ptr[j + 1] as usize {
                let c = col_idx[k] as usize;
                let at = next[c] as usize;
                next[c] += 1;
                slots[at] = (j * LANES + c % LANES) as u32;
                values[at] = [mu[k], var[k]];
            }
        }
        Some(Self { col_ptr, slots, values, rows: row_ptr.len() - 1 })
    }

    /// Number of stored entries.
    pub(crate) fn nnz(&self) -> usize {
        self.slots.len()
    }

    /// Number of rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Lists the columns where `x` is not zero into `lit` (scratch of at least `x.len()`, filled without a branch
    /// on the data); returns them and how many stored entries they hold: the entries [`Self::moments`] reads.
    pub(crate) fn lit_columns<'l>(&self, x: &[f32], lit: &'l mut [u32]) -> (&'l [u32], usize) {
        let (mut n, mut entries) = (0, 0);
        for (c, (w, v)) in self.col_ptr.windows(2).zip(x).enumerate() {
            let is_lit = usize::from(*v != 0.0);
            lit[n] = c as u32;
            n += is_lit;
            entries += is_lit * (w[1] - w[0]) as usize;
        }
        (&lit[..n], entries)
    }

    /// `mean[j] = bias_mu[j] + mu_j . x` and `var[j] = bias_var[j] + var_j . x2` given the columns where `x` is not
    /// zero (`lit`, from [`Self::lit_columns`]; `x2` must be zero wherever `x` is): the bits of two
    /// [`WeightLayout::affine`](crate::layers::WeightLayout::affine) calls on the CSR layout. `sums` is scratch
    /// of two partial sums per row and lane.
    pub(crate) fn moments(
        &self,
        lit: &[u32],
        (x, x2): (&[f32], &[f32]),
        (bias_mu, bias_var): (&[f32], &[f32]),
        sums: &mut [[f32; 2]],
        (mean, var): (&mut [f32], &mut [f32]),
    ) {
        let sums = &mut sums[..self.rows * LANES];
        sums.fill([0.0; 2]);
        for c in lit.iter().map(|c| *c as usize) {
            let (xc, x2c) = (x[c], x2[c]);
            let entries = self.col_ptr[c] as usize..self.col_ptr[c + 1] as usize;
            for (slot, [m, v]) in self.slots[entries.clone()].iter().zip(&self.values[entries]) {
                let s = &mut sums[*slot as usize];
                *s = [s[0] + m * xc, s[1] + v * x2c];
            }
        }
        let rows = sums.chunks_exact(LANES).zip(bias_mu.iter().zip(bias_var));
        for ((row, (b_mu, b_var)), (m, v)) in rows.zip(mean.iter_mut().zip(var.iter_mut())) {
            *m = b_mu + combine(core::array::from_fn(|l| row[l][0]));
            *v = b_var + combine(core::array::from_fn(|l| row[l][1]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::WeightLayout;

    #[test]
    fn the_column_walk_has_the_bits_of_the_csr_products() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        // Rows not a multiple of 8, empty rows and columns, fewer than 8 columns, inputs mostly zero and none.
        for (rows, cols, keep, blank) in [(13, 37, 3, 2), (8, 5, 2, 3), (1, 1, 1, 2), (20, 100, 7, 5), (9, 16, 1, 1)] {
            let pattern = CsrPattern::from_mask(rows, cols, |k| (k * 7 + k / cols) % keep == 0 && k % 11 != 4);
            let nnz = pattern.nnz();
            let mu: Vec<f32> = (0..nnz).map(|k| (k as f32 * 0.37).sin() * 1e3f32.powf((k % 5) as f32 - 2.0)).collect();
            let var: Vec<f32> = (0..nnz).map(|k| 0.01 + (k as f32 * 0.11).cos().abs()).collect();
            // Every `blank`-th input is zero (+0 or −0); `x2` is zero there and not `x`'s square elsewhere.
            let x: Vec<f32> = (0..cols)
                .map(|c| match c % blank {
                    0 if blank > 1 => [0.0, -0.0][c % 2],
                    _ => (c as f32 * 0.29).cos() - 0.2,
                })
                .collect();
            let x2: Vec<f32> = x.iter().map(|v| v * (v - 0.3)).collect();
            let (b_mu, b_var): (Vec<f32>, Vec<f32>) = (0..rows).map(|j| (j as f32 * 0.5, 0.1 * j as f32)).unzip();
            let columns = ColumnWeights::new(&pattern, cols, &mu, &var).unwrap();
            let layout = WeightLayout::Csr { cols, pattern };
            let (mut want_m, mut want_v) = (vec![0.0; rows], vec![0.0; rows]);
            layout.affine(&mu, &b_mu, &x, &mut want_m);
            layout.affine(&var, &b_var, &x2, &mut want_v);
            let (mut got_m, mut got_v, mut sums) =
                (vec![f32::NAN; rows], vec![f32::NAN; rows], vec![[1.0; 2]; rows * 8]);
            let mut lit = vec![u32::MAX; cols];
            let (lit, entries) = columns.lit_columns(&x, &mut lit);
            assert_eq!(lit, (0..cols as u32).filter(|c| x[*c as usize] != 0.0).collect::<Vec<_>>());
            assert_eq!(entries, (0..nnz).filter(|k| x[layout_column(&layout, *k)] != 0.0).count());
            columns.moments(lit, (&x, &x2), (&b_mu, &b_var), &mut sums, (&mut got_m, &mut got_v));
            assert_eq!((bits(&got_m), bits(&got_v)), (bits(&want_m), bits(&want_v)), "{rows}x{cols}");
        }
    }

    /// The column of stored entry `k` of a CSR layout.
    fn layout_column(layout: &WeightLayout, k: usize) -> usize {
        match layout {
            WeightLayout::Csr { pattern, .. } => pattern.col_idx()[k] as usize,
            WeightLayout::Dense { cols, .. } => k % cols,
        }
    }

    #[test]
    fn inconsistent_lengths_give_no_layout() {
        let pattern = CsrPattern::new(2, 3, vec![0, 1, 2], vec![0, 2]).unwrap();
        assert!(ColumnWeights::new(&pattern, 3, &[1.0; 2], &[1.0; 2]).is_some());
        assert!(ColumnWeights::new(&pattern, 2, &[1.0; 2], &[1.0; 2]).is_none());
        assert!(ColumnWeights::new(&pattern, 3, &[1.0], &[1.0; 2]).is_none());
    }
}
