//! [`GaussianPosterior`]: the factorised Gaussian posterior of a Bayesian layer's weights and biases (mu and rho
//! per value, sigma = softplus(rho)), its pruning mask, its weight draws, its KL term and its loading from a
//! runtime layer — what the dense and the convolutional Bayesian layers share.

use super::noise::Noise;
use super::prior::{gaussian_kl, monte_carlo_kl};
use crate::recipe::PriorSpec;
use candle_core::{Result, Tensor, Var};

/// `ln(1 + e^x)`, stable for any x: `relu(x) + ln(1 + e^-|x|)`, and `e^x` below -15, where `1 + e^x` rounds
/// to 1 in f32 and the first form would give exactly 0 (and a KL of infinity).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let general = (x.relu()? + x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
    x.lt(-15.0)?.where_cond(&x.exp()?, &general)
}

/// `softplus^-1(sigma)`, with sigma = 0 (a pruned weight) and tiny sigmas mapped to rho = -30.
fn inverse_softplus(sigma: f32) -> f32 {
    match sigma {
        s if s > 20.0 => s,
        s if s > 0.0 => s.exp_m1().ln().max(-30.0),
        _ => -30.0,
    }
}

/// A weight sample of one layer and the noise that made it (kept for the Monte-Carlo KL).
pub struct WeightSample {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps_weight: Tensor,
    pub eps_bias: Tensor,
}

/// Trainable mu and rho per weight (any shape) and per bias (`[out]`), and the pruning pattern.
pub struct GaussianPosterior {
    pub(crate) weight_mu: Var,
    pub(crate) weight_rho: Var,
    pub(crate) bias_mu: Var,
    pub(crate) bias_rho: Var,
    /// 1 for weights that exist, 0 for pruned ones (fine-tuning after pruning keeps them at mu = sigma = 0).
    mask: Option<Tensor>,
    /// The mask's values, for the fused passes.
    pub(crate) host_mask: Option<Vec<f32>>,
}

impl GaussianPosterior {
    /// Weight means `weight_mu` (whose shape is the weights'), `biases` bias means 0, every rho = `rho`.
    pub fn new(weight_mu: &Tensor, biases: usize, rho: f32) -> Result<Self> {
        let device = weight_mu.device();
        Ok(Self {
            weight_mu: Var::from_tensor(weight_mu)?,
            weight_rho: Var::from_tensor(&Tensor::full(rho, weight_mu.shape(), device)?)?,
            bias_mu: Var::zeros(biases, candle_core::DType::F32, device)?,
            bias_rho: Var::from_tensor(&Tensor::full(rho, biases, device)?)?,
            mask: None,
            host_mask: None,
        })
    }

    /// The variables in checkpoint order: weight mu, weight rho, bias mu, bias rho.
    pub fn vars(&self) -> [&Var; 4] {
        [&self.weight_mu, &self.weight_rho, &self.bias_mu, &self.bias_rho]
    }

    /// Fixes the pruning pattern: weights where `mask` is 0 stay absent (mean and standard deviation 0).
    pub fn set_mask(&mut self, mask: Tensor) -> Result<()> {
        self.host_mask = Some(mask.flatten_all()?.to_vec1::<f32>()?);
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

    /// One draw of every weight and bias: `mu + sigma * eps`, with the parameter noise of two keys drawn from
    /// `noise` (weights, then biases), as the fused passes draw it.
    pub fn sample(&self, noise: &mut Noise) -> Result<WeightSample> {
        let (weight_key, bias_key) = (noise.next_key(), noise.next_key());
        let eps_weight = noise.parameter_gaussian(weight_key, self.weight_mu.dims())?;
        let eps_bias = noise.parameter_gaussian(bias_key, self.bias_mu.dims())?;
        let weight = (self.weight_mu()? + (self.weight_sigma()? * &eps_weight)?)?;
        let bias = (self.bias_mu.as_tensor() + (self.bias_sigma()? * &eps_bias)?)?;
        Ok(WeightSample { weight, bias, eps_weight, eps_bias })
    }

    /// `KL(q || p)` over the weights that exist: closed form for a Gaussian prior; otherwise a one-sample
    /// Monte-Carlo estimate, from `sample` when given (the forward pass's own weights) or from a fresh draw.
    pub fn kl(&self, prior: &PriorSpec, sample: Option<&WeightSample>, noise: &mut Noise) -> Result<Tensor> {
        let raw_sigma = softplus(self.weight_rho.as_tensor())?;
        if let PriorSpec::Gaussian { sigma } = *prior {
            let w = gaussian_kl(self.weight_mu.as_tensor(), &raw_sigma, sigma as f64, self.mask.as_ref())?;
            let b = gaussian_kl(self.bias_mu.as_tensor(), &self.bias_sigma()?, sigma as f64, None)?;
            return w + b;
        }
        let fresh;
        let s = match sample {
            Some(s) => s,
            None => {
                fresh = self.sample(noise)?;
                &fresh
            }
        };
        let w = monte_carlo_kl(&s.weight, &raw_sigma, &s.eps_weight, prior, self.mask.as_ref())?;
        let b = monte_carlo_kl(&s.bias, &self.bias_sigma()?, &s.eps_bias, prior, None)?;
        w + b
    }

    /// What a runtime layer stores, flat: weight means and standard deviations (0 where pruned), bias means and
    /// standard deviations — the inverse of [`GaussianPosterior::load`].
    pub fn runtime_values(&self) -> Result<[Vec<f32>; 4]> {
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        Ok([
            flat(&self.weight_mu()?)?,
            flat(&self.weight_sigma()?)?,
            flat(self.bias_mu.as_tensor())?,
            flat(&self.bias_sigma()?)?,
        ])
    }

    /// Takes a runtime layer's posterior — means, rho = softplus^-1(sigma) — and returns the pruning pattern to
    /// keep (1 where a weight exists, 0 where mu = sigma = 0) when some weight is pruned.
    pub fn load(
        &mut self,
        (weight_mu, weight_sigma): (&[f32], &[f32]),
        (bias_mu, bias_sigma): (&[f32], &[f32]),
    ) -> Result<Option<Tensor>> {
        let (shape, device) = (self.weight_mu.shape().clone(), self.weight_mu.device().clone());
        let rho = |sigma: &[f32]| sigma.iter().map(|s| inverse_softplus(*s)).collect::<Vec<_>>();
        self.weight_mu.set(&Tensor::from_slice(weight_mu, &shape, &device)?)?;
        self.weight_rho.set(&Tensor::from_vec(rho(weight_sigma), &shape, &device)?)?;
        self.bias_mu.set(&Tensor::from_slice(bias_mu, bias_mu.len(), &device)?)?;
        self.bias_rho.set(&Tensor::from_vec(rho(bias_sigma), bias_sigma.len(), &device)?)?;
        let pairs = weight_mu.iter().zip(weight_sigma);
        if !pairs.clone().any(|(m, s)| *m == 0.0 && *s == 0.0) {
            return Ok(None);
        }
        let mask: Vec<f32> = pairs.map(|(m, s)| if *m != 0.0 || *s != 0.0 { 1.0 } else { 0.0 }).collect();
        Ok(Some(Tensor::from_vec(mask, &shape, &device)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

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
