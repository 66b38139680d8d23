//! The Bayes-by-Backprop dense layer: trainable mu and rho per weight and bias, sigma = softplus(rho),
//! with both gradient estimators (local reparameterization and per-minibatch weight sampling).

use super::gaussian_posterior::{GaussianPosterior, WeightSample};
use super::linear::initial_weights;
use super::noise::Noise;
use bnn_runtime::SeededRng;
use candle_core::{Device, Result, Tensor, Var};

/// A dense layer with a factorised Gaussian posterior over weights `[out, in]` and biases `[out]`.
pub struct BayesLinear {
    pub(crate) posterior: GaussianPosterior,
    /// What the fused CPU step's forward pass multiplies with, rewritten in place every step: the
    /// variances (local reparameterization) or a weight sample (weight sampling), and the masked means.
    pub(crate) work: FusedWork,
    in_features: usize,
    out_features: usize,
}

/// The fused step's forward tensors of one layer (see [`BayesLinear`]'s `work`).
pub(crate) struct FusedWork {
    pub(crate) weight: Var,
    pub(crate) bias: Var,
    pub(crate) masked_mu: Option<Var>,
}

impl FusedWork {
    fn new(in_features: usize, out_features: usize, device: &Device) -> Result<Self> {
        Ok(Self {
            weight: Var::zeros((out_features, in_features), candle_core::DType::F32, device)?,
            bias: Var::zeros(out_features, candle_core::DType::F32, device)?,
            masked_mu: None,
        })
    }
}

impl BayesLinear {
    /// Means ~ N(0, (mu_scale / sqrt(in))^2), biases' means 0, every rho = `rho`.
    pub fn new(
        in_features: usize,
        out_features: usize,
        mu_scale: f32,
        rho: f32,
        rng: &mut SeededRng,
        device: &Device,
    ) -> Result<Self> {
        let mu = initial_weights(in_features, out_features, mu_scale, rng, device)?;
        Ok(Self {
            posterior: GaussianPosterior::new(&mu, out_features, rho)?,
            work: FusedWork::new(in_features, out_features, device)?,
            in_features,
            out_features,
        })
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Fixes the pruning pattern: weights where `mask` is 0 stay absent (mean and standard deviation 0).
    pub fn set_mask(&mut self, mask: Tensor) -> Result<()> {
        self.work.masked_mu = Some(Var::from_tensor(&mask.zeros_like()?)?);
        self.posterior.set_mask(mask)
    }

    /// `x mu_W^T + mu_b` for `x` of shape `[batch, in]`.
    pub fn forward_mean(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.posterior.weight_mu()?.t()?)?.broadcast_add(self.posterior.bias_mu.as_tensor())
    }

    /// Local reparameterization: `mean + sqrt(x^2 sigma_W^2^T + sigma_b^2) * eps`, one independent draw per
    /// example and unit.
    pub fn forward_local_reparam(&self, x: &Tensor, noise: &mut Noise) -> Result<Tensor> {
        let mean = self.forward_mean(x)?;
        let p = &self.posterior;
        let var = x.sqr()?.matmul(&p.weight_sigma()?.sqr()?.t()?)?.broadcast_add(&p.bias_sigma()?.sqr()?)?;
        let eps = noise.gaussian(&[x.dim(0)?, self.out_features])?;
        mean + (var.sqrt()? * eps)?
    }

    /// `x W^T + b` for sampled weights.
    pub fn forward_with(x: &Tensor, sample: &WeightSample) -> Result<Tensor> {
        x.matmul(&sample.weight.t()?)?.broadcast_add(&sample.bias)
    }
}
