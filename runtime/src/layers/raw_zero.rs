//! The pre-activation moments of a model's first stochastic layer (Bayesian dense), and its `Mean` pass, taken
//! about the normalised value of a raw zero ([`RawZeroExpansion`]), so that blank inputs — a raw 0, such as a
//! blank pixel — drop out of its products.
//!
//! With `x` the normalised input and `r` what a raw 0 normalises to, `u = x - r` is exactly 0 wherever the raw
//! input was 0 (`r` is computed as the normalisation computes it), and in real arithmetic
//! `mean = (b_mu + mu . r) + mu . u` and `var = (b_var + var . r^2) + var . z` with `z = u (u + 2r) = x^2 - r^2`.
//! The bracketed terms are computed once per model; the products read `u` and `z`, which are 0 for every blank
//! input: dense products skip chunks of eight of them ([`gemv`](crate::kernels::gemv)), and a sparse layer reads
//! only the lit inputs' columns when they hold few of its weights ([`ColumnWeights`]). Without a normalisation
//! (or after a deterministic layer) `r` is 0, `u = x` and `z = x^2`: the plain products.
//!
//! The rounding is not that of the products about 0, and the variance's sum can cancel: its error is about
//! `2 eps sum var r^2` (`eps` = 2^-24) instead of `eps sum var x^2`. A feature is expanded only where its raw 0
//! normalises into `[-1, 1]` ([`MAX_REFERENCE`]), which bounds that, and a variance that rounds below 0 is
//! taken as 0.

use super::{bayesian_dense, BayesianDense};
use crate::kernels::{ColumnWeights, Isa};
use crate::normalization::Normalization;
use crate::prelude::*;

/// The largest `|r|` a feature is expanded about.
const MAX_REFERENCE: f32 = 1.0;

/// The column walk runs when it reads fewer than this fraction of a sparse layer's weights, else the sliced
/// products (which read them all at a lower cost per weight: `benches/README.md`, session 33).
const WALK_SHARE: (usize, usize) = (3, 4);

/// A first Bayesian dense layer's moments about the normalised raw zero (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawZeroExpansion {
    /// `r` per input feature (0 where a feature is not expanded).
    reference: Vec<f32>,
    /// `b_mu + mu . r` and `b_var + var . r^2`.
    bias_mu: Vec<f32>,
    bias_var: Vec<f32>,
    /// A sparse layer's weights column by column.
    columns: Option<Box<ColumnWeights>>,
}

/// One input's `u`, `z` and the column walk's partial sums.
#[derive(Debug, Clone)]
pub(crate) struct ExpansionScratch {
    u: Vec<f32>,
    z: Vec<f32>,
    lit: Vec<u32>,
    sums: Vec<[f32; 2]>,
    /// The variances a `Mean` pass's column walk leaves unused.
    spare: Vec<f32>,
}

impl ExpansionScratch {
    /// Scratch for `expansion`'s layer (none without one).
    pub(crate) fn new(expansion: Option<&RawZeroExpansion>) -> Self {
        let (inputs, outputs) = expansion.map_or((0, 0), |e| (e.reference.len(), e.bias_mu.len()));
        let (u, z, lit) = (vec![0.0; inputs], vec![0.0; inputs], vec![0; inputs]);
        Self { u, z, lit, sums: vec![[0.0; 2]; outputs * 8], spare: vec![0.0; outputs] }
    }
}

impl RawZeroExpansion {
    /// The expansion of `layer` about what `normalization` makes of a raw 0 (`None`: about 0, the plain moments).
    pub(crate) fn new(layer: &BayesianDense, normalization: Option<&Normalization>) -> Self {
        let n = layer.in_features();
        let reference: Vec<f32> = match normalization {
            Some(norm) => {
                let mut r = vec![0.0; n];
                norm.apply_in_place(&mut r);
                r.iter().map(|v| if v.abs() <= MAX_REFERENCE { *v } else { 0.0 }).collect()
            }
            None => vec![0.0; n],
        };
        let (mut bias_mu, mut bias_var) = (vec![0.0; layer.out_features()], vec![0.0; layer.out_features()]);
        let r_sq: Vec<f32> = reference.iter().map(|r| r * r).collect();
        layer.layout().affine(layer.weight_mu(), layer.bias_mu(), &reference, &mut bias_mu);
        layer.layout().affine(layer.weight_var(), layer.bias_var(), &r_sq, &mut bias_var);
        let columns = match layer.layout() {
            crate::layers::WeightLayout::Csr { cols, pattern } => {
                ColumnWeights::new(pattern, *cols, layer.weight_mu(), layer.weight_var()).map(Box::new)
            }
            crate::layers::WeightLayout::Dense { .. } => None,
        };
        let expansion = Self { reference, bias_mu, bias_var, columns };
        if expansion.bias_mu.iter().chain(&expansion.bias_var).all(|v| v.is_finite()) {
            expansion
        } else {
            // Sums that overflow: take the moments about 0, as the layer's own biases are (finite, validated).
            Self::new(layer, None)
        }
    }

    /// The moments of one normalised input `x` of `layer` (the layer this expansion was made of): `mean` and
    /// `sd` get one value per output.
    pub(crate) fn moments(
        &self,
        layer: &BayesianDense,
        isa: Isa,
        x: &[f32],
        scratch: &mut ExpansionScratch,
        (mean, sd): (&mut [f32], &mut [f32]),
    ) {
        let ExpansionScratch { u, z, lit, sums, .. } = scratch;
        let (u, z) = self.shift(x, u, z);
        match self.walk(u, lit) {
            Some((columns, lit)) => {
                columns.moments(lit, (u, z), self.biases(), sums, (&mut *mean, &mut *sd));
                bayesian_dense::standard_deviations(&mut sd[..columns.rows()]);
            }
            None => layer.moments(isa, (u, z), self.biases(), (mean, sd)),
        }
    }

    /// The `Mean` pass of `layer` (the layer this expansion was made of) on one normalised input `x`: `y = (b_mu +
    /// mu . r) + mu . u`, with the bits the eight-input products give `u` ([`Self::shift_rows`]).
    pub(crate) fn mean(
        &self,
        layer: &BayesianDense,
        isa: Isa,
        x: &[f32],
        scratch: &mut ExpansionScratch,
        y: &mut [f32],
    ) {
        let ExpansionScratch { u, z, lit, sums, spare } = scratch;
        let (u, z) = self.shift(x, u, z);
        match self.walk(u, lit) {
            // The walk takes both sums in one pass (each entry's mean and variance side by side); the variances
            // are left unused.
            Some((columns, lit)) => columns.moments(lit, (u, z), self.biases(), sums, (y, spare)),
            None => layer.forward_mean(isa, u, &self.bias_mu, y),
        }
    }

    /// `u` and `z` of `x`, written into the scratch `u` and `z`.
    fn shift<'s>(&self, x: &[f32], u: &'s mut [f32], z: &'s mut [f32]) -> (&'s [f32], &'s [f32]) {
        let (u, z) = (&mut u[..x.len()], &mut z[..x.len()]);
        for (((u, z), x), r) in u.iter_mut().zip(z.iter_mut()).zip(x).zip(&self.reference) {
            (*u, *z) = shifted(*x, *r);
        }
        (u, z)
    }

    /// A sparse layer's column walk and the lit columns of `u`, where the walk reads few enough of its weights.
    fn walk<'l>(&self, u: &[f32], lit: &'l mut [u32]) -> Option<(&ColumnWeights, &'l [u32])> {
        let columns = self.columns.as_deref()?;
        let (lit, entries) = columns.lit_columns(u, lit);
        (entries * WALK_SHARE.1 < columns.nnz() * WALK_SHARE.0).then_some((columns, lit))
    }

    /// [`Self::moments`]' and [`Self::mean`]'s inputs for inputs side by side, `width` of them: row `c` of `x`
    /// (`[rows × width]`, row-major) holds value `first + c` of each input and becomes `u`; `z` gets `z`.
    // Inlined where `Isa::run` compiles a batch's first layer (x86-64); one copy elsewhere (android/README.md,
    // "Size").
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub(crate) fn shift_rows(&self, first: usize, x: &mut [f32], z: &mut [f32], width: usize) {
        let rows = x.chunks_exact_mut(width).zip(z.chunks_exact_mut(width));
        for ((x, z), r) in rows.zip(&self.reference[first..]) {
            for (x, z) in x.iter_mut().zip(z.iter_mut()) {
                (*x, *z) = shifted(*x, *r);
            }
        }
    }

    /// `b_mu + mu . r` and `b_var + var . r^2`: the biases [`Self::shift_rows`]' outputs take.
    pub(crate) fn biases(&self) -> (&[f32], &[f32]) {
        (&self.bias_mu, &self.bias_var)
    }
}

/// `(u, z) = (x - r, u (u + 2r))`.
#[inline(always)]
fn shifted(x: f32, r: f32) -> (f32, f32) {
    let u = x - r;
    (u, u * (u + (r + r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12 -> 20 layer with about a third of its weights pruned (mean and sd 0), and its sparse twin.
    fn layers() -> [BayesianDense; 2] {
        let (i, o) = (12, 20);
        let wave = |k: usize, f: f32| (k as f32 * f).sin();
        let kept = |k: usize| k % 3 != 1;
        let mu: Vec<f32> = (0..i * o).map(|k| if kept(k) { wave(k, 0.37) } else { 0.0 }).collect();
        let sigma: Vec<f32> =
            (0..i * o).map(|k| if kept(k) { 0.05 + 0.3 * wave(k, 0.11).abs() } else { 0.0 }).collect();
        let bias_mu = (0..o).map(|j| wave(j, 0.7) * 0.2).collect();
        let bias_sigma = (0..o).map(|j| 0.01 + 0.02 * wave(j, 0.3).abs()).collect();
        let dense = BayesianDense::new(i, o, mu, sigma, bias_mu, bias_sigma);
        let sparse = dense.sparsified();
        [dense, sparse]
    }

    /// Per-feature standardisation: features 0..8 have their raw 0 within [-1, 1] (expanded), the rest beyond.
    fn normalization() -> Normalization {
        let mean = (0..12).map(|c| if c < 8 { 0.1 * c as f32 } else { 3.0 + c as f32 }).collect();
        let std = (0..12).map(|c| 0.8 + 0.05 * c as f32).collect();
        Normalization { mean, std }
    }

    /// Raw inputs: all lit, mostly blank (raw 0), all blank.
    fn raw_inputs() -> [Vec<f32>; 3] {
        let lit: Vec<f32> = (0..12).map(|c| 0.3 + (c as f32 * 0.9).cos().abs()).collect();
        let sparse = lit.iter().enumerate().map(|(c, v)| if c % 4 == 1 { *v } else { 0.0 }).collect();
        [lit, sparse, vec![0.0; 12]]
    }

    #[test]
    fn the_expanded_moments_are_the_exact_moments() {
        let norm = normalization();
        for layer in layers() {
            let expansion = RawZeroExpansion::new(&layer, Some(&norm));
            // Features 8..12 normalise their raw 0 beyond 1: not expanded.
            assert!(expansion.reference[1..8].iter().all(|r| *r != 0.0), "feature 0 normalises its raw 0 to 0");
            assert!(expansion.reference[8..].iter().all(|r| *r == 0.0));
            let mut scratch = ExpansionScratch::new(Some(&expansion));
            for raw in raw_inputs() {
                let mut x = raw.clone();
                norm.apply_in_place(&mut x);
                let (mut mean, mut sd) = (vec![f32::NAN; 20], vec![f32::NAN; 20]);
                for isa in Isa::available() {
                    expansion.moments(&layer, isa, &x, &mut scratch, (&mut mean, &mut sd));
                    // The `Mean` pass gives the moments' means, bit for bit.
                    let mut y = vec![f32::NAN; 20];
                    expansion.mean(&layer, isa, &x, &mut scratch, &mut y);
                    assert_eq!(
                        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        mean.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    );
                    let (mu, sigma) = (layer.dense_weight_mu(), layer.dense_weight_sigma());
                    for j in 0..20 {
                        let row = j * 12..(j + 1) * 12;
                        let dot = |w: &[f32], f: &dyn Fn(f64) -> f64| {
                            w[row.clone()].iter().zip(&x).map(|(w, x)| *w as f64 * f(*x as f64)).sum::<f64>()
                        };
                        let want_mean = layer.bias_mu()[j] as f64 + dot(&mu, &|x| x);
                        let var_w: Vec<f32> = sigma.iter().map(|s| s * s).collect();
                        let want_var = (layer.bias_sigma()[j] as f64).powi(2) + dot(&var_w, &|x| x * x);
                        assert!((mean[j] as f64 - want_mean).abs() < 1e-5, "{isa:?} mean {j}");
                        assert!((sd[j] as f64 - want_var.sqrt()).abs() < 1e-5, "{isa:?} sd {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_column_walk_and_the_sliced_products_give_the_same_bits() {
        // The sparse layer's mostly blank input takes the column walk, its lit one the sliced products: each must
        // give what the other would.
        let [_, sparse] = layers();
        let norm = normalization();
        let expansion = RawZeroExpansion::new(&sparse, Some(&norm));
        let columns = expansion.columns.as_deref().unwrap();
        let mut scratch = ExpansionScratch::new(Some(&expansion));
        let mut walked = 0;
        for raw in raw_inputs() {
            let mut x = raw.clone();
            norm.apply_in_place(&mut x);
            let (u, z): (Vec<f32>, Vec<f32>) = x.iter().zip(&expansion.reference).map(|(x, r)| shifted(*x, *r)).unzip();
            let mut lit = vec![0; 12];
            let (lit, entries) = columns.lit_columns(&u, &mut lit);
            walked += usize::from(entries * WALK_SHARE.1 < columns.nnz() * WALK_SHARE.0);
            for isa in Isa::available() {
                let (mut got_m, mut got_s) = (vec![f32::NAN; 20], vec![f32::NAN; 20]);
                expansion.moments(&sparse, isa, &x, &mut scratch, (&mut got_m, &mut got_s));
                let (mut walk_m, mut walk_s) = (vec![f32::NAN; 20], vec![f32::NAN; 20]);
                columns.moments(lit, (&u, &z), expansion.biases(), &mut scratch.sums, (&mut walk_m, &mut walk_s));
                bayesian_dense::standard_deviations(&mut walk_s);
                let (mut sliced_m, mut sliced_s) = (vec![f32::NAN; 20], vec![f32::NAN; 20]);
                sparse.moments(isa, (&u, &z), expansion.biases(), (&mut sliced_m, &mut sliced_s));
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!((bits(&walk_m), bits(&walk_s)), (bits(&sliced_m), bits(&sliced_s)), "{isa:?}");
                assert_eq!((bits(&got_m), bits(&got_s)), (bits(&sliced_m), bits(&sliced_s)), "{isa:?}");
            }
        }
        assert_eq!(walked, 2, "the blank inputs take the walk, the lit one the sliced products");
    }

    #[test]
    fn sums_that_overflow_leave_the_moments_about_zero() {
        let layer = BayesianDense::new(2, 1, vec![3e38, 3e38], vec![0.1, 0.1], vec![0.0], vec![0.1]);
        let expansion = RawZeroExpansion::new(&layer, Some(&Normalization::global(1.0, 1.0)));
        assert_eq!(expansion.reference, [0.0, 0.0]);
        assert_eq!(expansion.biases(), (layer.bias_mu(), layer.bias_var()));
    }

    #[test]
    fn a_variance_that_rounds_below_zero_gives_a_zero_standard_deviation() {
        let mut var = [-1e-9, -0.0, 0.0, 4.0, f32::NAN];
        bayesian_dense::standard_deviations(&mut var);
        assert_eq!(var[..4], [0.0, 0.0, 0.0, 2.0]);
        assert!(var[4].is_nan(), "NaN stays NaN: it is reported, not hidden");
    }
}
