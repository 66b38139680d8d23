//! The Bayesian dense layer: a factorised Gaussian posterior N(mu, sigma^2) over every weight and bias,
//! stored densely or sparsely after pruning, with one forward kernel per sampler.

use super::layout::{CsrPattern, WeightLayout};
use crate::aligned::LineAligned;
use crate::kernels::{self, Isa, Lanes, SlicedWeights};
use crate::prelude::*;
use crate::sample::{Noise, SeededRng};

/// A fully connected layer whose weights and biases are independent Gaussians.
///
/// Weights are `[out_features, in_features]`, stored in `layout` (row-major when dense). The variances are
/// cached at construction so the local-reparameterization kernel needs no extra work per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct BayesianDense {
    in_features: usize,
    out_features: usize,
    layout: WeightLayout,
    weight_mu: Vec<f32>,
    weight_sigma: Vec<f32>,
    bias_mu: Vec<f32>,
    bias_sigma: Vec<f32>,
    weight_var: Vec<f32>,
    bias_var: Vec<f32>,
    /// A CSR layer's means and variances in groups of eight rows, for its single-input products.
    sliced: Option<Box<SlicedWeights>>,
}

impl BayesianDense {
    /// A dense layer from its posterior parameters, weights row-major. Lengths and values are checked when
    /// the layer joins a [`Model`](crate::Model), which names the offending tensor.
    pub fn new(
        in_features: usize,
        out_features: usize,
        weight_mu: Vec<f32>,
        weight_sigma: Vec<f32>,
        bias_mu: Vec<f32>,
        bias_sigma: Vec<f32>,
    ) -> Self {
        let layout = WeightLayout::Dense { rows: out_features, cols: in_features };
        Self::with_layout(in_features, out_features, layout, weight_mu, weight_sigma, bias_mu, bias_sigma)
    }

    /// A layer whose weight values are stored in `layout` (one value per stored entry).
    pub fn with_layout(
        in_features: usize,
        out_features: usize,
        layout: WeightLayout,
        weight_mu: Vec<f32>,
        weight_sigma: Vec<f32>,
        bias_mu: Vec<f32>,
        bias_sigma: Vec<f32>,
    ) -> Self {
        let weight_var: Vec<f32> = weight_sigma.iter().map(|s| s * s).collect();
        let bias_var = bias_sigma.iter().map(|s| s * s).collect();
        let sliced = match &layout {
            WeightLayout::Csr { pattern, .. } => SlicedWeights::new(pattern, &weight_mu, &weight_var).map(Box::new),
            WeightLayout::Dense { .. } => None,
        };
        Self {
            in_features,
            out_features,
            layout,
            weight_mu,
            weight_sigma,
            bias_mu,
            bias_sigma,
            weight_var,
            bias_var,
            sliced,
        }
    }

    /// The same layer with every weight whose mean and standard deviation are both 0 (pruned) left out.
    pub fn sparsified(&self) -> Self {
        let (mu, sigma) = (self.dense_weight_mu(), self.dense_weight_sigma());
        let pattern = CsrPattern::from_mask(self.out_features, self.in_features, |k| mu[k] != 0.0 || sigma[k] != 0.0);
        let keep = |v: &[f32]| -> Vec<f32> {
            (0..v.len()).filter(|k| mu[*k] != 0.0 || sigma[*k] != 0.0).map(|k| v[k]).collect()
        };
        let (mu_s, sigma_s) = (keep(&mu), keep(&sigma));
        let layout = WeightLayout::Csr { cols: self.in_features, pattern };
        Self::with_layout(
            self.in_features,
            self.out_features,
            layout,
            mu_s,
            sigma_s,
            self.bias_mu.clone(),
            self.bias_sigma.clone(),
        )
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }
    pub fn out_features(&self) -> usize {
        self.out_features
    }
    pub fn layout(&self) -> &WeightLayout {
        &self.layout
    }
    /// Posterior means of the stored weights (row-major `[out, in]` when dense).
    pub fn weight_mu(&self) -> &[f32] {
        &self.weight_mu
    }
    /// Posterior standard deviations of the stored weights.
    pub fn weight_sigma(&self) -> &[f32] {
        &self.weight_sigma
    }
    /// All weight means as a dense row-major matrix (pruned entries 0).
    pub fn dense_weight_mu(&self) -> Vec<f32> {
        self.layout.to_dense(&self.weight_mu)
    }
    /// All weight standard deviations as a dense row-major matrix (pruned entries 0).
    pub fn dense_weight_sigma(&self) -> Vec<f32> {
        self.layout.to_dense(&self.weight_sigma)
    }
    pub fn bias_mu(&self) -> &[f32] {
        &self.bias_mu
    }
    pub fn bias_sigma(&self) -> &[f32] {
        &self.bias_sigma
    }
    /// The stored weights' variances, and the biases'.
    pub(crate) fn weight_var(&self) -> &[f32] {
        &self.weight_var
    }
    pub(crate) fn bias_var(&self) -> &[f32] {
        &self.bias_var
    }

    /// `y = mu_W x + bias` (`bias` the layer's `mu_b`, or what stands for it: `raw_zero.rs`).
    pub(crate) fn forward_mean(&self, isa: Isa, x: &[f32], bias: &[f32], y: &mut [f32]) {
        match &self.sliced {
            Some(sliced) => sliced.mean(isa, x, bias, y),
            None => self.layout.affine(&self.weight_mu, bias, x, y),
        }
    }

    /// The Gaussian moments of the pre-activations for a fixed input: `mean = mu_W x + b_mu` and
    /// `sd = sqrt(sigma_W^2 x2 + b_var)`. With `x2` the squares of `x` and the layer's own biases, the exact
    /// moments; [`RawZeroExpansion`](super::RawZeroExpansion) passes the same moments taken about another point.
    pub(crate) fn moments(
        &self,
        isa: Isa,
        (x, x2): (&[f32], &[f32]),
        (bias_mu, bias_var): (&[f32], &[f32]),
        (mean, sd): (&mut [f32], &mut [f32]),
    ) {
        let (mean, sd) = (&mut mean[..self.out_features], &mut sd[..self.out_features]);
        match &self.sliced {
            Some(sliced) => sliced.moments(isa, (x, x2), (bias_mu, bias_var), (mean, &mut *sd)),
            None => {
                self.layout.affine(&self.weight_mu, bias_mu, x, mean);
                self.layout.affine(&self.weight_var, bias_var, x2, sd);
            }
        }
        standard_deviations(sd);
    }

    /// [`Self::moments`] of a block of `s` inputs, one per column (`x` and `x2` are `[in × s]`; `mean` and `sd`
    /// get `[out × s]`), with the block products on `isa`: fused where it fuses, so other bits than `moments`
    /// gives one input, but each column's the same whatever the block's width and the other columns.
    /// `live` (`in`) is scratch.
    // Inlined where `Isa::run` compiles it (x86-64); one copy elsewhere (android/README.md, "Size").
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub(crate) fn moments_block(
        &self,
        isa: Isa,
        (x, x2, s): (&[f32], &[f32], usize),
        (bias_mu, bias_var): (&[f32], &[f32]),
        live: &mut [u32],
        (mean, sd): (&mut [f32], &mut [f32]),
    ) {
        let (mean, sd) = (&mut mean[..self.out_features * s], &mut sd[..self.out_features * s]);
        let (x, x2) = (&x[..self.in_features * s], &x2[..self.in_features * s]);
        for ((values, h, bias), y) in
            [(&self.weight_mu, x, bias_mu), (&self.weight_var, x2, bias_var)].into_iter().zip([mean, &mut *sd])
        {
            let live = self.layout.live_inputs(h, s, live);
            self.layout.matmul_block(isa, values, h, s, live, y);
            for (row, b) in y.chunks_exact_mut(s).zip(bias) {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
        standard_deviations(sd);
    }

    /// [`Self::moments`] of [`INPUT_LANES`](kernels::INPUT_LANES) inputs side by side (`xt[c][i]` is value `c`
    /// of input `i`, `xt_x2` what stands for its squares; `mean` and `sd` get a row per output): lane `i` gets the
    /// bits `moments` gives input `i`. `false`, leaving the outputs alone, for a sparse layer without its sliced
    /// layout (not made by a valid model).
    #[inline(always)]
    pub(crate) fn moments_lanes(
        &self,
        (xt, xt_x2): (&[Lanes], &[Lanes]),
        (bias_mu, bias_var): (&[f32], &[f32]),
        (mean, sd): (&mut [Lanes], &mut [Lanes]),
    ) -> bool {
        let (mean, sd) = (&mut mean[..self.out_features], &mut sd[..self.out_features]);
        let done = match &self.sliced {
            Some(sliced) => {
                sliced.moments_lanes((xt, xt_x2), (bias_mu, bias_var), (mean, &mut *sd));
                true
            }
            None => {
                self.layout.affine_lanes(&self.weight_mu, bias_mu, xt, mean)
                    && self.layout.affine_lanes(&self.weight_var, bias_var, xt_x2, sd)
            }
        };
        if done {
            sd.iter_mut().for_each(|v| standard_deviations(v));
        }
        done
    }

    /// [`Self::forward_mean`] of [`INPUT_LANES`](kernels::INPUT_LANES) inputs side by side, with its bits in
    /// every lane; `false`, leaving `y` alone, where there is no such kernel (as [`Self::moments_lanes`]).
    #[inline(always)]
    pub(crate) fn mean_lanes(&self, xt: &[Lanes], bias: &[f32], y: &mut [Lanes]) -> bool {
        let y = &mut y[..self.out_features];
        match &self.sliced {
            Some(sliced) => {
                sliced.mean_lanes(xt, bias, y);
                true
            }
            None => self.layout.affine_lanes(&self.weight_mu, bias, xt, y),
        }
    }

    /// Local reparameterization for a block of `s` samples: `h` is `[in × s]`, `y` is `[out × s]`. The noise
    /// of the whole block is drawn at once ([`SeededRng::fill_gaussian`]), output by output, sample by sample.
    /// A CSR layer's block of 32 runs as one pass where `isa` has such a kernel
    /// ([`kernels::csr_local_reparam_one_pass`], the same bits); otherwise the means and variances are two block
    /// products, then the noise is added.
    #[inline(always)]
    pub(crate) fn forward_local_reparam_block(
        &self,
        isa: Isa,
        h: &[f32],
        s: usize,
        scratch: &mut BlockScratch,
        y: &mut [f32],
        noise: &mut Noise,
    ) {
        let (n_in, n_out) = (self.in_features * s, self.out_features * s);
        let (h, y) = (&h[..n_in], &mut y[..n_out]);
        let noise = noise.next(isa, &mut scratch.noise[..n_out]);
        let (weights, bias) = ((&self.weight_mu[..], &self.weight_var[..]), (&self.bias_mu[..], &self.bias_var[..]));
        if let WeightLayout::Csr { pattern, .. } = &self.layout {
            if kernels::csr_local_reparam_one_pass(isa, pattern, weights, bias, (h, s), noise, y) {
                return;
            }
        }
        let (h_sq, var) = (&mut scratch.sq[..n_in], &mut scratch.var[..n_out]);
        h_sq.iter_mut().zip(h).for_each(|(q, v)| *q = v * v);
        let live = self.layout.live_inputs(h, s, &mut scratch.live);
        self.layout.matmul_block(isa, &self.weight_mu, h, s, live, y);
        self.layout.matmul_block(isa, &self.weight_var, h_sq, s, live, var);
        kernels::add_local_reparam_noise(y, var, noise, bias, s);
    }

    /// One weight-sampling pass: every stored weight of a row is drawn into `row` (scratch of `in_features`),
    /// then the bias, then the row's dot product with `x`.
    pub(crate) fn forward_weight_sampling(&self, x: &[f32], row: &mut [f32], y: &mut [f32], rng: &mut SeededRng) {
        for (j, yj) in y.iter_mut().enumerate() {
            let r = self.layout.row(j);
            let row = &mut row[..r.len()];
            for ((w, m), s) in row.iter_mut().zip(&self.weight_mu[r.clone()]).zip(&self.weight_sigma[r]) {
                *w = m + s * rng.gaussian();
            }
            let bias = self.bias_mu[j] + self.bias_sigma[j] * rng.gaussian();
            *yj = bias + self.layout.dot_row(j, row, x);
        }
    }
}

/// Replaces each variance by its square root, a variance below 0 (rounding: `raw_zero.rs`) by 0; NaN stays NaN.
#[inline(always)]
pub(super) fn standard_deviations(var: &mut [f32]) {
    var.iter_mut().for_each(|v| *v = crate::math::sqrtf(if *v < 0.0 { 0.0 } else { *v }));
}

/// Scratch of a local-reparameterization block, sized for the widest layer and the largest block.
#[derive(Debug, Clone)]
pub(crate) struct BlockScratch {
    /// Squared activations `[width × s]`.
    pub sq: LineAligned,
    /// The block's noise `[width × s]`.
    pub noise: LineAligned,
    /// Pre-activation variances `[width × s]`.
    pub var: LineAligned,
    /// The rows of the block that are not all zero.
    pub live: Vec<u32>,
}

impl BlockScratch {
    pub fn new(width: usize, block: usize) -> Self {
        let buffer = || LineAligned::new(width * block);
        Self { sq: buffer(), noise: buffer(), var: buffer(), live: vec![0; width] }
    }
}

/// `y[j, t] = mean[j] + sd[j] * eps` for a block of `s` samples (`y` is `[mean.len() × s]`): draws from
/// precomputed moments.
#[inline(always)]
pub(crate) fn sample_from_moments(isa: Isa, mean: &[f32], sd: &[f32], s: usize, y: &mut [f32], noise: &mut Noise) {
    let y = &mut y[..mean.len() * s];
    if let Some(e) = noise.replayed(y.len()) {
        for (((y_row, e_row), m), d) in y.chunks_exact_mut(s).zip(e.chunks_exact(s)).zip(mean).zip(sd) {
            y_row.iter_mut().zip(e_row).for_each(|(v, e)| *v = m + d * e);
        }
        return;
    }
    noise.draw(isa, y);
    for ((y_row, m), d) in y.chunks_exact_mut(s).zip(mean).zip(sd) {
        y_row.iter_mut().for_each(|v| *v = m + d * *v);
    }
}
