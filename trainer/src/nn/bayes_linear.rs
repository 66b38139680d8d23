//! The Bayes-by-Backprop dense layer: trainable mu and rho per weight and bias, sigma = softplus(rho),
//! with both gradient estimators (local reparameterization and per-minibatch weight sampling).

use super::noise::Noise;
use super::prior::{gaussian_kl, monte_carlo_kl};
use crate::recipe::PriorSpec;
use bnn_runtime::SeededRng;
use candle_core::{Device, Result, Tensor, Var};

/// `ln(1 + e^x)`, stable for any x: `relu(x) + ln(1 + e^-|x|)`.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?
}

/// A dense layer with a factorised Gaussian posterior over weights `[out, in]` and biases `[out]`.
pub struct BayesLinear {
    pub(crate) weight_mu: Var,
    pub(crate) weight_rho: Var,
    pub(crate) bias_mu: Var,
    pub(crate) bias_rho: Var,
    in_features: usize,
    out_features: usize,
}

/// A weight sample of one layer and the noise that made it (kept for the Monte-Carlo KL).
pub struct WeightSample {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps_weight: Tensor,
    pub eps_bias: Tensor,
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
        let scale = mu_scale / (in_features as f32).sqrt();
        let mu: Vec<f32> = (0..in_features * out_features).map(|_| rng.gaussian() * scale).collect();
        Ok(Self {
            weight_mu: Var::from_tensor(&Tensor::from_vec(mu, (out_features, in_features), device)?)?,
            weight_rho: Var::from_tensor(&Tensor::full(rho, (out_features, in_features), device)?)?,
            bias_mu: Var::from_tensor(&Tensor::zeros(out_features, candle_core::DType::F32, device)?)?,
            bias_rho: Var::from_tensor(&Tensor::full(rho, out_features, device)?)?,
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

    pub fn weight_sigma(&self) -> Result<Tensor> {
        softplus(self.weight_rho.as_tensor())
    }
    pub fn bias_sigma(&self) -> Result<Tensor> {
        softplus(self.bias_rho.as_tensor())
    }

    /// `x mu_W^T + mu_b` for `x` of shape `[batch, in]`.
    pub fn forward_mean(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight_mu.as_tensor().t()?)?.broadcast_add(self.bias_mu.as_tensor())
    }

    /// Local reparameterization: `mean + sqrt(x^2 sigma_W^2^T + sigma_b^2) * eps`, one independent draw per
    /// example and unit.
    pub fn forward_local_reparam(&self, x: &Tensor, noise: &mut Noise) -> Result<Tensor> {
        let mean = self.forward_mean(x)?;
        let var = x.sqr()?.matmul(&self.weight_sigma()?.sqr()?.t()?)?.broadcast_add(&self.bias_sigma()?.sqr()?)?;
        let eps = noise.gaussian(&[x.dim(0)?, self.out_features])?;
        mean + (var.sqrt()? * eps)?
    }

    /// One draw of every weight and bias: `mu + sigma * eps`.
    pub fn sample_weights(&self, noise: &mut Noise) -> Result<WeightSample> {
        let eps_weight = noise.gaussian(&[self.out_features, self.in_features])?;
        let eps_bias = noise.gaussian(&[self.out_features])?;
        let weight = (self.weight_mu.as_tensor() + (self.weight_sigma()? * &eps_weight)?)?;
        let bias = (self.bias_mu.as_tensor() + (self.bias_sigma()? * &eps_bias)?)?;
        Ok(WeightSample { weight, bias, eps_weight, eps_bias })
    }

    /// `x W^T + b` for sampled weights.
    pub fn forward_with(x: &Tensor, sample: &WeightSample) -> Result<Tensor> {
        x.matmul(&sample.weight.t()?)?.broadcast_add(&sample.bias)
    }

    /// `KL(q || p)`: closed form for a Gaussian prior; otherwise a one-sample Monte-Carlo estimate, from
    /// `sample` when given (the forward pass's own weights) or from a fresh draw.
    pub fn kl(&self, prior: &PriorSpec, sample: Option<&WeightSample>, noise: &mut Noise) -> Result<Tensor> {
        if let PriorSpec::Gaussian { sigma } = *prior {
            let w = gaussian_kl(self.weight_mu.as_tensor(), &self.weight_sigma()?, sigma as f64)?;
            let b = gaussian_kl(self.bias_mu.as_tensor(), &self.bias_sigma()?, sigma as f64)?;
            return w + b;
        }
        let fresh;
        let s = match sample {
            Some(s) => s,
            None => {
                fresh = self.sample_weights(noise)?;
                &fresh
            }
        };
        let w = monte_carlo_kl(&s.weight, &self.weight_sigma()?, &s.eps_weight, prior)?;
        let b = monte_carlo_kl(&s.bias, &self.bias_sigma()?, &s.eps_bias, prior)?;
        w + b
    }
}
