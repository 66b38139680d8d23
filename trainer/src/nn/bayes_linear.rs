//! The Bayes-by-Backprop dense layer: trainable mu and rho per weight and bias, sigma = softplus(rho),
//! with both gradient estimators (local reparameterization and per-minibatch weight sampling).

use super::linear::initial_weights;
use super::noise::Noise;
use super::prior::{gaussian_kl, monte_carlo_kl};
use crate::recipe::PriorSpec;
use bnn_runtime::SeededRng;
use candle_core::{Device, Result, Tensor, Var};

/// `ln(1 + e^x)`, stable for any x: `relu(x) + ln(1 + e^-|x|)`, and `e^x` below -15, where `1 + e^x` rounds
/// to 1 in f32 and the first form would give exactly 0 (and a KL of infinity).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let general = (x.relu()? + x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
    x.lt(-15.0)?.where_cond(&x.exp()?, &general)
}

/// A dense layer with a factorised Gaussian posterior over weights `[out, in]` and biases `[out]`.
pub struct BayesLinear {
    pub(crate) weight_mu: Var,
    pub(crate) weight_rho: Var,
    pub(crate) bias_mu: Var,
    pub(crate) bias_rho: Var,
    /// 1 for weights that exist, 0 for pruned ones (fine-tuning after pruning keeps them at mu = sigma = 0).
    mask: Option<Tensor>,
    /// The mask's values, for the fused passes.
    pub(crate) host_mask: Option<Vec<f32>>,
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
        Ok(Self {
            weight_mu: Var::from_tensor(&initial_weights(in_features, out_features, mu_scale, rng, device)?)?,
            weight_rho: Var::from_tensor(&Tensor::full(rho, (out_features, in_features), device)?)?,
            bias_mu: Var::from_tensor(&Tensor::zeros(out_features, candle_core::DType::F32, device)?)?,
            bias_rho: Var::from_tensor(&Tensor::full(rho, out_features, device)?)?,
            mask: None,
            host_mask: None,
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
        self.host_mask = Some(mask.flatten_all()?.to_vec1::<f32>()?);
        self.work.masked_mu = Some(Var::from_tensor(&mask.zeros_like()?)?);
        self.mask = Some(mask);
        Ok(())
    }

    fn masked(&self, t: Tensor) -> Result<Tensor> {
        match &self.mask {
            Some(m) => t * m,
            None => Ok(t),
        }
    }

    /// Posterior means of the weights (0 where pruned).
    pub fn weight_mu(&self) -> Result<Tensor> {
        self.masked(self.weight_mu.as_tensor().clone())
    }
    /// Posterior standard deviations of the weights (0 where pruned).
    pub fn weight_sigma(&self) -> Result<Tensor> {
        self.masked(softplus(self.weight_rho.as_tensor())?)
    }
    pub fn bias_sigma(&self) -> Result<Tensor> {
        softplus(self.bias_rho.as_tensor())
    }

    /// `x mu_W^T + mu_b` for `x` of shape `[batch, in]`.
    pub fn forward_mean(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight_mu()?.t()?)?.broadcast_add(self.bias_mu.as_tensor())
    }

    /// Local reparameterization: `mean + sqrt(x^2 sigma_W^2^T + sigma_b^2) * eps`, one independent draw per
    /// example and unit.
    pub fn forward_local_reparam(&self, x: &Tensor, noise: &mut Noise) -> Result<Tensor> {
        let mean = self.forward_mean(x)?;
        let var = x.sqr()?.matmul(&self.weight_sigma()?.sqr()?.t()?)?.broadcast_add(&self.bias_sigma()?.sqr()?)?;
        let eps = noise.gaussian(&[x.dim(0)?, self.out_features])?;
        mean + (var.sqrt()? * eps)?
    }

    /// One draw of every weight and bias: `mu + sigma * eps`, with the parameter noise of two keys drawn from
    /// `noise` (weights, then biases), as the fused passes draw it.
    pub fn sample_weights(&self, noise: &mut Noise) -> Result<WeightSample> {
        let (weight_key, bias_key) = (noise.next_key(), noise.next_key());
        let eps_weight = noise.parameter_gaussian(weight_key, &[self.out_features, self.in_features])?;
        let eps_bias = noise.parameter_gaussian(bias_key, &[self.out_features])?;
        let weight = (self.weight_mu()? + (self.weight_sigma()? * &eps_weight)?)?;
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
            let raw_sigma = softplus(self.weight_rho.as_tensor())?;
            let w = gaussian_kl(self.weight_mu.as_tensor(), &raw_sigma, sigma as f64, self.mask.as_ref())?;
            let b = gaussian_kl(self.bias_mu.as_tensor(), &self.bias_sigma()?, sigma as f64, None)?;
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
        let raw_sigma = softplus(self.weight_rho.as_tensor())?;
        let w = monte_carlo_kl(&s.weight, &raw_sigma, &s.eps_weight, prior, self.mask.as_ref())?;
        let b = monte_carlo_kl(&s.bias, &self.bias_sigma()?, &s.eps_bias, prior, None)?;
        w + b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softplus_is_positive_and_accurate_far_below_zero() {
        let x = Tensor::new(&[-40.0f32, -16.0, -1.0, 0.0, 3.0, 50.0], &Device::Cpu).unwrap();
        let y = softplus(&x).unwrap().to_vec1::<f32>().unwrap();
        for (x, y) in [-40.0f64, -16.0, -1.0, 0.0, 3.0, 50.0].iter().zip(&y) {
            let exact = x.exp().ln_1p();
            assert!(*y > 0.0 && ((*y as f64 - exact) / exact).abs() < 1e-5, "softplus({x}) = {y}, expected {exact}");
        }
    }
}
