//! The Bayesian dense layer: a factorised Gaussian posterior N(mu, sigma^2) over every weight and bias,
//! with one forward kernel per sampler.

use crate::linalg::{affine, dot};
use crate::sample::SeededRng;

/// A fully connected layer whose weights and biases are independent Gaussians.
///
/// Weights are row-major `[out_features, in_features]`. The variances are cached at construction so the
/// local-reparameterization kernel needs no extra work per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct BayesianDense {
    in_features: usize,
    out_features: usize,
    weight_mu: Vec<f32>,
    weight_sigma: Vec<f32>,
    bias_mu: Vec<f32>,
    bias_sigma: Vec<f32>,
    weight_var: Vec<f32>,
    bias_var: Vec<f32>,
}

impl BayesianDense {
    /// A layer from its posterior parameters. Lengths and values are checked when the layer joins a
    /// [`Model`](crate::Model), which names the offending tensor.
    pub fn new(
        in_features: usize,
        out_features: usize,
        weight_mu: Vec<f32>,
        weight_sigma: Vec<f32>,
        bias_mu: Vec<f32>,
        bias_sigma: Vec<f32>,
    ) -> Self {
        let weight_var = weight_sigma.iter().map(|s| s * s).collect();
        let bias_var = bias_sigma.iter().map(|s| s * s).collect();
        Self { in_features, out_features, weight_mu, weight_sigma, bias_mu, bias_sigma, weight_var, bias_var }
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }
    pub fn out_features(&self) -> usize {
        self.out_features
    }
    /// Posterior means of the weights, row-major `[out, in]`.
    pub fn weight_mu(&self) -> &[f32] {
        &self.weight_mu
    }
    /// Posterior standard deviations of the weights, row-major `[out, in]`.
    pub fn weight_sigma(&self) -> &[f32] {
        &self.weight_sigma
    }
    pub fn bias_mu(&self) -> &[f32] {
        &self.bias_mu
    }
    pub fn bias_sigma(&self) -> &[f32] {
        &self.bias_sigma
    }

    /// `y = mu_W x + mu_b`.
    pub(crate) fn forward_mean(&self, x: &[f32], y: &mut [f32]) {
        affine(&self.weight_mu, &self.bias_mu, x, y);
    }

    /// The exact Gaussian moments of the pre-activations for a fixed input: `mean = mu_W x + mu_b` and
    /// `sd = sqrt(sigma_W^2 x^2 + sigma_b^2)`. `x_sq` is scratch of at least `in_features`.
    pub(crate) fn moments(&self, x: &[f32], x_sq: &mut [f32], mean: &mut [f32], sd: &mut [f32]) {
        let x_sq = &mut x_sq[..x.len()];
        x_sq.iter_mut().zip(x).for_each(|(q, v)| *q = v * v);
        affine(&self.weight_mu, &self.bias_mu, x, mean);
        affine(&self.weight_var, &self.bias_var, x_sq, sd);
        sd.iter_mut().for_each(|v| *v = v.sqrt());
    }

    /// One local-reparameterization sample: `y_j ~ N(mean_j, var_j)` drawn independently for each output.
    pub(crate) fn forward_local_reparam(&self, x: &[f32], x_sq: &mut [f32], y: &mut [f32], rng: &mut SeededRng) {
        let x_sq = &mut x_sq[..x.len()];
        x_sq.iter_mut().zip(x).for_each(|(q, v)| *q = v * v);
        let rows = self.weight_mu.chunks_exact(self.in_features).zip(self.weight_var.chunks_exact(self.in_features));
        for (j, (yj, (mu_row, var_row))) in y.iter_mut().zip(rows).enumerate() {
            let mean = self.bias_mu[j] + dot(mu_row, x);
            let var = self.bias_var[j] + dot(var_row, x_sq);
            *yj = mean + var.sqrt() * rng.gaussian();
        }
    }

    /// One weight-sampling pass: every weight of a row is drawn into `row` (scratch of `in_features`), then
    /// the bias, then the row's dot product with `x`.
    pub(crate) fn forward_weight_sampling(&self, x: &[f32], row: &mut [f32], y: &mut [f32], rng: &mut SeededRng) {
        let row = &mut row[..self.in_features];
        let rows = self.weight_mu.chunks_exact(self.in_features).zip(self.weight_sigma.chunks_exact(self.in_features));
        for (j, (yj, (mu_row, sigma_row))) in y.iter_mut().zip(rows).enumerate() {
            for ((w, m), s) in row.iter_mut().zip(mu_row).zip(sigma_row) {
                *w = m + s * rng.gaussian();
            }
            let bias = self.bias_mu[j] + self.bias_sigma[j] * rng.gaussian();
            *yj = bias + dot(row, x);
        }
    }
}

/// `y = mean + sd * eps` with fresh standard-normal `eps`: a draw from precomputed moments.
pub(crate) fn sample_from_moments(mean: &[f32], sd: &[f32], y: &mut [f32], rng: &mut SeededRng) {
    for ((yj, m), s) in y.iter_mut().zip(mean).zip(sd) {
        *yj = m + s * rng.gaussian();
    }
}
