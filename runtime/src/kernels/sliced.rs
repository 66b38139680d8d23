//! A sparse Bayesian layer's weights re-laid for eight rows at a time ([`SlicedWeights`]), so that its
//! single-input products — the `Mean` pass and the first layer's pre-activation moments — run on 8-lane
//! vectors with the bits of the row-by-row sparse dot products.
//!
//! [`sparse_dot`](crate::kernels::sparse_dot) adds the product of the entry in column `c` to partial sum
//! `c % 8`, in column order, then folds the eight sums in a fixed order. Here rows go in groups of eight; in
//! a group, the entries of each row are split by `c % 8`, and step `t` of residue `l` holds the `t`-th entry
//! of residue `l` of each of the eight rows (a row with fewer such entries gets value 0 at column 0, which
//! adds an exact zero). One vector then carries partial sum `l` of eight rows through the same additions in
//! the same order. The rows are grouped in the order of their longest residue (a group's residue takes as many
//! steps as its longest row there, so rows of like lengths pad each other least); `rows` maps a group's lanes
//! back to the layer's rows.

use super::portable::{add_product, fold_lanes, Lanes, INPUT_LANES};
use super::Isa;
use crate::layers::CsrPattern;
use crate::prelude::*;
use wide::f32x8;

/// Rows per group, and partial sums per row.
pub(super) const LANES: usize = 8;
/// Rows of a group whose sums the eight-input products keep in registers together.
const QUAD: usize = 4;

/// The steps of one residue of one group: per step, the column, mean and variance of each of the eight rows.
#[derive(Clone, Copy)]
pub(super) struct Residue<'a> {
    pub columns: &'a [[u32; LANES]],
    pub mu: &'a [[f32; LANES]],
    pub var: &'a [[f32; LANES]],
}

/// The mean and variance of a CSR layer's weights in groups of eight rows (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlicedWeights {
    /// The layer's row of each lane of each group: lane `r` of group `g` is row `rows[8 g + r]`.
    rows: Vec<u32>,
    /// Steps of group `g`, residue `l`: `step_ptr[8 g + l]..step_ptr[8 g + l + 1]`.
    step_ptr: Vec<u32>,
    /// Columns of the matrix: every column index is below this.
    width: usize,
    /// Per step, the column of each of the eight rows.
    columns: Vec<[u32; LANES]>,
    mu: Vec<[f32; LANES]>,
    var: Vec<[f32; LANES]>,
}

impl SlicedWeights {
    /// The layout of a CSR pattern with one mean and one variance per entry. `None` if the numbers of
    /// values disagree with the pattern (the model's validation reports that).
    pub(crate) fn new(pattern: &CsrPattern, mu: &[f32], var: &[f32]) -> Option<Self> {
        let (row_ptr, col_idx) = (pattern.row_ptr(), pattern.col_idx());
        let (rows, nnz) = (row_ptr.len() - 1, pattern.nnz());
        if mu.len() != nnz || var.len() != nnz {
            return None;
        }
        let entries = |j: usize| row_ptr[j] as usize..row_ptr[j + 1] as usize;
        let longest_residue = |j: usize| {
            let mut counts = [0usize; LANES];
            entries(j).for_each(|k| counts[col_idx[k] as usize % LANES] += 1);
            counts.into_iter().max().unwrap_or(0)
        };
        let mut order: Vec<u32> = (0..rows as u32).collect();
        order.sort_by_key(|j| core::cmp::Reverse(longest_residue(*j as usize)));
        let mut step_ptr = vec![0u32];
        let (mut columns, mut mu_s, mut var_s) = (Vec::new(), Vec::new(), Vec::new());
        for group in order.chunks(LANES) {
            for residue in 0..LANES as u32 {
                // The entries of residue `residue` of each row of the group, in column order.
                let mut entries: Vec<_> =
                    group.iter().map(|j| entries(*j as usize).filter(move |k| col_idx[*k] % 8 == residue)).collect();
                loop {
                    let step: [Option<usize>; LANES] =
                        core::array::from_fn(|r| entries.get_mut(r).and_then(Iterator::next));
                    if step.iter().all(Option::is_none) {
                        break;
                    }
                    columns.push(step.map(|k| k.map_or(0, |k| col_idx[k])));
                    mu_s.push(step.map(|k| k.map_or(0.0, |k| mu[k])));
                    var_s.push(step.map(|k| k.map_or(0.0, |k| var[k])));
                }
                step_ptr.push(columns.len() as u32);
            }
        }
        Some(Self { rows: order, step_ptr, width: pattern.columns_used(), columns, mu: mu_s, var: var_s })
    }

    /// `y[j] = bias[j] + sum_c mu[j, c] x[c]`: the bits of
    /// [`WeightLayout::affine`](crate::layers::WeightLayout::affine)
    /// on the CSR layout.
    pub(crate) fn mean(&self, isa: Isa, x: &[f32], bias: &[f32], y: &mut [f32]) {
        self.products::<false>(isa, (x, x), |rows, sums, _| {
            for (j, s) in rows.iter().map(|j| *j as usize).zip(sums) {
                y[j] = s + bias[j];
            }
        });
    }

    /// The pre-activation moments for one input: `mean[j] = bias_mu[j] + mu_j . x` and `var[j] =
    /// bias_var[j] + var_j . x2` (`x2` is `x`'s squares, or what stands for them: `layers/raw_zero.rs`), with the
    /// bits of two [`WeightLayout::affine`](crate::layers::WeightLayout::affine) calls on the CSR layout.
    pub(crate) fn moments(
        &self,
        isa: Isa,
        (x, x2): (&[f32], &[f32]),
        (bias_mu, bias_var): (&[f32], &[f32]),
        (mean, var): (&mut [f32], &mut [f32]),
    ) {
        self.products::<true>(isa, (x, x2), |rows, m_sums, v_sums| {
            for (j, (sm, sv)) in rows.iter().map(|j| *j as usize).zip(m_sums.into_iter().zip(v_sums)) {
                (mean[j], var[j]) = (bias_mu[j] + sm, bias_var[j] + sv);
            }
        });
    }

    /// [`Self::moments`] for [`INPUT_LANES`] inputs side by side (`xt[c][i]` is value `c` of input `i`, `xt_sq`
    /// its squares): `mean[j][i]` and `var[j][i]` get the bits `moments` gives input `i`.
    #[inline(always)]
    pub(crate) fn moments_lanes(
        &self,
        (xt, xt_sq): (&[Lanes], &[Lanes]),
        (bias_mu, bias_var): (&[f32], &[f32]),
        (mean, var): (&mut [Lanes], &mut [Lanes]),
    ) {
        self.products_lanes::<true>(xt, xt_sq, |j, m, v| {
            mean[j] = m.map(|s| bias_mu[j] + s);
            var[j] = v.map(|s| bias_var[j] + s);
        });
    }

    /// [`Self::mean`] for [`INPUT_LANES`] inputs side by side: `y[j][i]` gets the bits `mean` gives input `i`.
    #[inline(always)]
    pub(crate) fn mean_lanes(&self, xt: &[Lanes], bias: &[f32], y: &mut [Lanes]) {
        self.products_lanes::<false>(xt, xt, |j, m, _| y[j] = m.map(|s| bias[j] + s));
    }

    /// Calls `out(j, mean sums, variance sums)` for every row `j`, each lane folded like
    /// [`crate::kernels::dot`]'s partial sums: `mu . x` and, when `PAIR`, `var . x^2` (else zeros).
    // Inlined where `Isa::run` compiles it for an instruction set (x86-64); one copy elsewhere (smaller
    // phone libraries: android/README.md, "Size").
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    fn products_lanes<const PAIR: bool>(
        &self,
        xt: &[Lanes],
        xt_sq: &[Lanes],
        mut out: impl FnMut(usize, Lanes, Lanes),
    ) {
        let (xt, xt_sq) = (&xt[..self.width], &xt_sq[..self.width]);
        for (g, rows) in self.rows.chunks(LANES).enumerate() {
            let residues = self.residues(g);
            // Four rows at a time: eight independent chains of sums (a mean and a variance per row).
            for quad in 0..rows.len().div_ceil(QUAD) {
                let mut acc = [[[[0.0; INPUT_LANES]; LANES]; 2]; QUAD];
                let b = QUAD * quad;
                for (l, res) in residues.iter().enumerate() {
                    // Named sums: the compiler keeps them in registers (an array of them indexed in a loop
                    // stays on the stack).
                    let [mut m0, mut m1, mut m2, mut m3, mut v0, mut v1, mut v2, mut v3] = [[0.0; INPUT_LANES]; 8];
                    for ((cols, mu), w) in res.columns.iter().zip(res.mu).zip(res.var) {
                        let [k0, k1, k2, k3] = [0, 1, 2, 3].map(|q| cols[b + q] as usize);
                        add_product(&mut m0, mu[b], &xt[k0]);
                        add_product(&mut m1, mu[b + 1], &xt[k1]);
                        add_product(&mut m2, mu[b + 2], &xt[k2]);
                        add_product(&mut m3, mu[b + 3], &xt[k3]);
                        if PAIR {
                            add_product(&mut v0, w[b], &xt_sq[k0]);
                            add_product(&mut v1, w[b + 1], &xt_sq[k1]);
                            add_product(&mut v2, w[b + 2], &xt_sq[k2]);
                            add_product(&mut v3, w[b + 3], &xt_sq[k3]);
                        }
                    }
                    for (a, (m, v)) in acc.iter_mut().zip([(m0, v0), (m1, v1), (m2, v2), (m3, v3)]) {
                        (a[0][l], a[1][l]) = (m, v);
                    }
                }
                for (j, [am, av]) in rows[b..].iter().zip(&acc) {
                    out(*j as usize, fold_lanes(am), fold_lanes(av));
                }
            }
        }
    }

    /// Calls `out(rows, mean sums, variance sums)` for every group of (up to) eight rows, `rows` the layer's row
    /// of each lane: `mu . x` and, when `PAIR`, `var . x2` (else zeros), each folded like
    /// [`crate::kernels::dot`]'s partial sums.
    // On aarch64 outside tests NEON is the only level, and the portable arm is unreachable.
    #[allow(unreachable_patterns)]
    fn products<const PAIR: bool>(
        &self,
        isa: Isa,
        (x, x2): (&[f32], &[f32]),
        mut out: impl FnMut(&[u32], [f32; LANES], [f32; LANES]),
    ) {
        let (x, x2) = (&x[..self.width], &x2[..self.width]);
        for (g, rows) in self.rows.chunks(LANES).enumerate() {
            let residues = self.residues(g);
            let (a, b) = match isa.0 {
                #[cfg(all(feature = "std", target_arch = "x86_64"))]
                // SAFETY: the CPU has AVX2 (an `Isa` names only an instruction set it has; AVX-512F implies AVX2),
                // and every column index is below `self.width`, the length of `x` and `x2`.
                super::Level::Avx2Fma | super::Level::Avx512 => unsafe {
                    super::x86_64::avx2::sliced_group::<PAIR>(&residues, (x, x2))
                },
                #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
                // SAFETY: an `Isa` names only an instruction set this CPU has.
                super::Level::Neon => unsafe { super::aarch64::sliced_group::<PAIR>(&residues, (x, x2)) },
                _ => group::<PAIR>(&residues, (x, x2)),
            };
            out(rows, a, b);
        }
    }

    /// The steps of group `g`, residue by residue.
    fn residues(&self, g: usize) -> [Residue<'_>; LANES] {
        core::array::from_fn(|l| {
            let steps = self.step_ptr[g * LANES + l] as usize..self.step_ptr[g * LANES + l + 1] as usize;
            Residue { columns: &self.columns[steps.clone()], mu: &self.mu[steps.clone()], var: &self.var[steps] }
        })
    }
}

/// [`SlicedWeights::products`] for one group, on portable vectors (the loads of `x` one by one).
fn group<const PAIR: bool>(residues: &[Residue<'_>; LANES], (x, x2): (&[f32], &[f32])) -> ([f32; LANES], [f32; LANES]) {
    let (mut acc_m, mut acc_v) = ([f32x8::ZERO; LANES], [f32x8::ZERO; LANES]);
    for (l, r) in residues.iter().enumerate() {
        let (mut am, mut av) = (f32x8::ZERO, f32x8::ZERO);
        for ((cols, mu), var) in r.columns.iter().zip(r.mu).zip(r.var) {
            am += f32x8::new(*mu) * f32x8::new(cols.map(|c| x[c as usize]));
            if PAIR {
                av += f32x8::new(*var) * f32x8::new(cols.map(|c| x2[c as usize]));
            }
        }
        (acc_m[l], acc_v[l]) = (am, av);
    }
    (fold(acc_m).to_array(), fold(acc_v).to_array())
}

/// Folds the eight partial-sum vectors in [`crate::kernels::dot`]'s order.
#[inline(always)]
fn fold(acc: [f32x8; LANES]) -> f32x8 {
    let pairs = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (pairs[0] + pairs[2]) + (pairs[1] + pairs[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{CsrPattern, WeightLayout};

    #[test]
    fn sliced_products_have_the_bits_of_the_csr_ones() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        // Rows not a multiple of 8, empty rows, fewer than 8 columns, dense and sparse rows.
        for (rows, cols, keep) in [(13, 37, 3), (8, 5, 2), (1, 1, 1), (20, 100, 7), (9, 16, 1)] {
            let pattern = CsrPattern::from_mask(rows, cols, |k| (k * 7 + k / cols) % keep == 0 && k % 11 != 4);
            let nnz = pattern.nnz();
            let mu: Vec<f32> = (0..nnz).map(|k| (k as f32 * 0.37).sin() * 1e3f32.powf((k % 5) as f32 - 2.0)).collect();
            let var: Vec<f32> = (0..nnz).map(|k| 0.01 + (k as f32 * 0.11).cos().abs()).collect();
            let x: Vec<f32> = (0..cols).map(|c| (c as f32 * 0.29).cos() - 0.2).collect();
            // The variances' input is not `x`'s squares: the kernels read it, not square `x`.
            let x2: Vec<f32> = x.iter().map(|v| v * (v - 0.3)).collect();
            let (b_mu, b_var): (Vec<f32>, Vec<f32>) = (0..rows).map(|j| (j as f32 * 0.5, 0.1 * j as f32)).unzip();
            let sliced = SlicedWeights::new(&pattern, &mu, &var).unwrap();
            let layout = WeightLayout::Csr { cols, pattern };
            let (mut want_m, mut want_v, mut got_m, mut got_v) =
                (vec![0.0; rows], vec![0.0; rows], vec![f32::NAN; rows], vec![f32::NAN; rows]);
            layout.affine(&mu, &b_mu, &x, &mut want_m);
            layout.affine(&var, &b_var, &x2, &mut want_v);
            // Every instruction set's build (none fuses).
            for isa in Isa::available() {
                sliced.moments(isa, (&x, &x2), (&b_mu, &b_var), (&mut got_m, &mut got_v));
                assert_eq!((bits(&got_m), bits(&got_v)), (bits(&want_m), bits(&want_v)), "{isa:?}, {rows}x{cols}");
                let mut got = vec![f32::NAN; rows];
                sliced.mean(isa, &x, &b_mu, &mut got);
                assert_eq!(bits(&got), bits(&want_m), "{isa:?}, {rows}x{cols}");
            }
        }
    }

    #[test]
    fn inconsistent_lengths_give_no_layout() {
        let pattern = CsrPattern::new(2, 3, vec![0, 1, 2], vec![0, 2]).unwrap();
        assert!(SlicedWeights::new(&pattern, &[1.0; 2], &[1.0; 2]).is_some());
        assert!(SlicedWeights::new(&pattern, &[1.0], &[1.0; 2]).is_none());
        assert!(SlicedWeights::new(&pattern, &[1.0; 2], &[1.0; 3]).is_none());
    }
}
