//! Likelihoods: the per-example negative log-likelihood of a minibatch, and the task the exported model
//! declares.

use crate::nn::softplus;
use crate::recipe::LikelihoodSpec;
use bnn_runtime::{NoiseModel, Task, HETEROSCEDASTIC_MIN_SCALE};
use candle_core::{Device, Result, Tensor, Var};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

/// Minibatch targets as tensors.
pub enum BatchTargets {
    /// `[batch]` class indices (u32).
    Classes(Tensor),
    /// `[batch, outputs]` values.
    Values(Tensor),
}

/// A likelihood with its trainable noise, if any.
pub struct Likelihood {
    spec: LikelihoodSpec,
    log_sigma: Option<Var>,
}

impl Likelihood {
    pub fn new(spec: LikelihoodSpec, device: &Device) -> Result<Self> {
        let log_sigma = match spec {
            LikelihoodSpec::Gaussian { sigma, learn: true } => {
                Some(Var::from_tensor(&Tensor::new((sigma as f64).ln() as f32, device)?)?)
            }
            _ => None,
        };
        Ok(Self { spec, log_sigma })
    }

    pub fn spec(&self) -> LikelihoodSpec {
        self.spec
    }

    /// Network outputs needed for `targets` target columns (or classes).
    pub fn head_width(&self, targets: usize) -> usize {
        match self.spec {
            LikelihoodSpec::Heteroscedastic => 2 * targets,
            _ => targets,
        }
    }

    /// The homoscedastic noise standard deviation now (fixed or learned).
    pub fn noise_sigma(&self) -> Result<Option<f32>> {
        Ok(match (self.spec, &self.log_sigma) {
            (LikelihoodSpec::Gaussian { .. }, Some(v)) => Some(v.as_tensor().exp()?.to_scalar::<f32>()?),
            (LikelihoodSpec::Gaussian { sigma, .. }, None) => Some(sigma),
            _ => None,
        })
    }

    /// Mean negative log-likelihood per example of a minibatch.
    pub fn nll(&self, out: &Tensor, targets: &BatchTargets) -> Result<Tensor> {
        match (self.spec, targets) {
            (LikelihoodSpec::Categorical, BatchTargets::Classes(labels)) => candle_nn::loss::cross_entropy(out, labels),
            (LikelihoodSpec::Gaussian { sigma, .. }, BatchTargets::Values(y)) => {
                let sq = (out - y)?.sqr()?;
                let per = match &self.log_sigma {
                    Some(ls) => {
                        let ls = ls.as_tensor();
                        let inv_var = ls.affine(-2.0, 0.0)?.exp()?;
                        (sq.broadcast_mul(&inv_var)? * 0.5)?.broadcast_add(ls)?.affine(1.0, HALF_LN_2PI)?
                    }
                    None => {
                        let s = sigma as f64;
                        sq.affine(0.5 / (s * s), s.ln() + HALF_LN_2PI)?
                    }
                };
                per.sum(1)?.mean_all()
            }
            (LikelihoodSpec::Heteroscedastic, BatchTargets::Values(y)) => {
                let k = y.dim(1)?;
                let mean = out.narrow(1, 0, k)?;
                let scale = softplus(&out.narrow(1, k, k)?)?.affine(1.0, HETEROSCEDASTIC_MIN_SCALE as f64)?;
                let z = ((mean - y)? / &scale)?;
                (scale.log()? + (z.sqr()? * 0.5)?)?.affine(1.0, HALF_LN_2PI)?.sum(1)?.mean_all()
            }
            _ => Err(candle_core::Error::Msg("likelihood and targets disagree (classes vs values)".into())),
        }
    }

    /// The runtime task for a model with `targets` classes or outputs.
    pub fn task(&self, targets: usize) -> Result<Task> {
        Ok(match self.spec {
            LikelihoodSpec::Categorical => Task::Classification { classes: targets, labels: vec![] },
            LikelihoodSpec::Gaussian { .. } => Task::Regression {
                outputs: targets,
                noise: NoiseModel::Homoscedastic { sigma: self.noise_sigma()?.unwrap_or(1.0) },
            },
            LikelihoodSpec::Heteroscedastic => {
                Task::Regression { outputs: targets, noise: NoiseModel::Heteroscedastic }
            }
        })
    }

    pub fn named_vars(&self) -> Vec<(String, Var)> {
        self.log_sigma.iter().map(|v| ("likelihood.log_sigma".to_string(), v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_nll_is_the_normal_log_density() {
        let d = Device::Cpu;
        let out = Tensor::new(&[[1.0f32], [2.0]], &d).unwrap();
        let y = BatchTargets::Values(Tensor::new(&[[1.5f32], [1.0]], &d).unwrap());
        let lik = Likelihood::new(LikelihoodSpec::Gaussian { sigma: 0.5, learn: false }, &d).unwrap();
        let got = lik.nll(&out, &y).unwrap().to_scalar::<f32>().unwrap() as f64;
        let nll = |r: f64| 0.5 * (2.0 * std::f64::consts::PI).ln() + 0.5f64.ln() + r * r / (2.0 * 0.25);
        assert!((got - (nll(0.5) + nll(1.0)) / 2.0).abs() < 1e-5);
        let learned = Likelihood::new(LikelihoodSpec::Gaussian { sigma: 0.5, learn: true }, &d).unwrap();
        let got_learned = learned.nll(&out, &y).unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!((got - got_learned).abs() < 1e-5, "a learned sigma starts at the recipe's value");
    }

    #[test]
    fn heteroscedastic_nll_uses_the_softplus_scale() {
        let d = Device::Cpu;
        let out = Tensor::new(&[[0.0f32, 0.3]], &d).unwrap();
        let y = BatchTargets::Values(Tensor::new(&[[0.4f32]], &d).unwrap());
        let got = Likelihood::new(LikelihoodSpec::Heteroscedastic, &d).unwrap().nll(&out, &y).unwrap();
        let s = bnn_runtime::heteroscedastic_scale(0.3) as f64;
        let expected = 0.5 * (2.0 * std::f64::consts::PI).ln() + s.ln() + 0.16 / (2.0 * s * s);
        assert!((got.to_scalar::<f32>().unwrap() as f64 - expected).abs() < 1e-5);
    }
}
