//! Each layer's part of the fused CPU step, on plain row-major slices `[batch, features]`: its forward pass
//! (keeping what its backward pass needs), its backward pass (the data term's gradients with respect to its
//! forward tensors and to its input), and, for a Bayesian layer, the fused KL-and-Adam pass over its
//! parameter tensors (`kernels::posterior`). The matrix products go through `kernels::matmul`; nothing here
//! builds a candle graph.

use super::bayes_linear::BayesLinear;
use super::gaussian_posterior::GaussianPosterior;
use super::linear::Linear;
use super::noise::Noise;
use crate::kernels::matmul::{column_sums, product, Matrix};
use crate::kernels::posterior::{self, ForwardUse, GradientSink, Posterior, PriorTerms, StepInputs};
use crate::kernels::tensor_values::{values, values_mut};
use crate::optim::{Adam, AdamStep};
use crate::recipe::Estimator;
use bnn_runtime::Activation;
use candle_core::{Result, Tensor, Var};
use rayon::prelude::*;

/// The noise keys one Bayesian layer's step drew: for the weight sample (weight sampling) or the Monte-Carlo
/// KL's own weight sample (local reparameterization with a mixture prior), weights then biases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerKeys {
    weight: Option<u64>,
    bias: Option<u64>,
}

/// What a Bayesian layer's forward pass keeps for its backward pass.
pub(crate) struct BayesRecord {
    keys: LayerKeys,
    /// Local reparameterization only: the squared inputs, the activations' standard deviations and their noise.
    moments: Option<MomentRecord>,
}

pub(crate) struct MomentRecord {
    squared_input: Vec<f32>,
    std: Vec<f32>,
    eps: Vec<f32>,
}

/// The data term's gradients with respect to one parameter tensor's forward tensors: the means (local
/// reparameterization) or the weight sample (weight sampling), and the variances (local reparameterization).
pub(crate) struct TensorGradients {
    pub(crate) mean: Vec<f32>,
    pub(crate) var: Option<Vec<f32>>,
}

/// The data term's gradients of a Bayesian layer's weights and biases.
pub(crate) struct BayesGradients {
    pub(crate) weight: TensorGradients,
    pub(crate) bias: TensorGradients,
}

/// The checkpoint names of one layer's four variables: weight mu, weight rho, bias mu, bias rho.
pub type LayerNames<'a> = [&'a str; 4];

/// Where [`BayesLinear::update_fused`] sends a layer's gradients.
pub(crate) enum GradientTarget<'a> {
    /// An Adam step of the layer's variables, named (weight mu, weight rho, bias mu, bias rho) as in `adam`.
    Adam { adam: &'a mut Adam, step: &'a AdamStep, names: LayerNames<'a> },
    /// Into four vectors of the variables' sizes, in that order.
    Store(&'a mut [Vec<f32>; 4]),
}

/// The fewest elements an element-wise pass hands one thread.
pub(crate) const PARALLEL_MIN: usize = 1 << 14;

/// Applies activation `a` to `v` in place, on rayon's threads.
pub(crate) fn activate_in_place(a: Activation, v: &mut [f32]) {
    v.par_chunks_mut(PARALLEL_MIN).for_each(|chunk| a.apply(chunk));
}

/// `out[r, j] += b[j]` for every row `r` of the row-major `out`.
fn add_to_rows(out: &mut [f32], b: &[f32]) {
    for row in out.chunks_exact_mut(b.len()) {
        row.iter_mut().zip(b).for_each(|(o, b)| *o += b);
    }
}

/// `x W^T + b` for `x` `[batch, in]`, `W` `[out, in]`: a dense layer's forward product.
fn affine(x: &[f32], batch: usize, w: &Tensor, b: &Tensor, (out_f, in_f): (usize, usize)) -> Result<Vec<f32>> {
    let mut out = vec![0.0f32; batch * out_f];
    values(w, |w| product(&mut out, Matrix::new(x, batch, in_f), Matrix::new(w, out_f, in_f).t(), false))?;
    values(b, |b| add_to_rows(&mut out, b))?;
    Ok(out)
}

/// The data term's gradients of a dense layer `x W^T + b`.
pub(crate) struct AffineGradients {
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    /// With respect to the input `x`, when asked for.
    pub(crate) input: Option<Vec<f32>>,
}

/// The gradients of `x W^T + b` given `g = d loss / d out` (the input's only with `input_grad`).
fn affine_backward(
    x: &[f32],
    g: &[f32],
    w: &Tensor,
    (out_f, in_f): (usize, usize),
    input_grad: bool,
) -> Result<AffineGradients> {
    let batch = g.len() / out_f;
    let mut grad_w = vec![0.0f32; out_f * in_f];
    product(&mut grad_w, Matrix::new(g, batch, out_f).t(), Matrix::new(x, batch, in_f), false);
    let mut grad_b = vec![0.0f32; out_f];
    column_sums(g, &mut grad_b);
    let grad_x = if input_grad {
        let mut grad_x = vec![0.0f32; batch * in_f];
        values(w, |w| product(&mut grad_x, Matrix::new(g, batch, out_f), Matrix::new(w, out_f, in_f), false))?;
        Some(grad_x)
    } else {
        None
    };
    Ok(AffineGradients { weight: grad_w, bias: grad_b, input: grad_x })
}

impl Linear {
    /// The fused step's forward pass of `x` `[batch, in]`.
    pub(crate) fn forward_host(&self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        affine(x, batch, self.weight.as_tensor(), self.bias.as_tensor(), (self.out_features(), self.in_features()))
    }

    /// The data term's gradients (the input's only with `input_grad`), given its gradient `g` with respect
    /// to the output.
    pub(crate) fn backward_host(&self, x: &[f32], g: &[f32], input_grad: bool) -> Result<AffineGradients> {
        affine_backward(x, g, self.weight.as_tensor(), (self.out_features(), self.in_features()), input_grad)
    }
}

/// The gradient of an activation's input from its output's gradient `g`, its input `x` and output `y`.
pub(crate) fn activation_backward(a: Activation, x: &[f32], y: &[f32], g: &[f32]) -> Vec<f32> {
    let it = g.par_iter().zip(x.par_iter().zip(y)).with_min_len(PARALLEL_MIN);
    match a {
        Activation::Relu => it.map(|(g, (x, _))| if *x > 0.0 { *g } else { 0.0 }).collect(),
        Activation::Tanh => it.map(|(g, (_, y))| g * (1.0 - y * y)).collect(),
        Activation::Sigmoid => it.map(|(g, (_, y))| g * y * (1.0 - y)).collect(),
        Activation::Gelu => it
            .map(|(g, (x, _))| {
                // d/dx x Phi(x) = Phi(x) + x phi(x).
                let cdf = 0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = (-0.5 * x * x).exp() * 0.398_942_3;
                g * (cdf + x * pdf)
            })
            .collect(),
        Activation::Identity => g.to_vec(),
    }
}

impl BayesLinear {
    /// The fused step's forward pass of `x` `[batch, in]` with `estimator`, drawing the same noise in the same
    /// order as the composed path (`forward_local_reparam` / `sample_weights` with `kl`): it writes the layer's
    /// forward tensors in place (variances or a weight sample, and the masked means) and returns the output.
    pub(crate) fn forward_host(
        &self,
        x: &[f32],
        batch: usize,
        estimator: Estimator,
        prior: &PriorTerms,
        noise: &mut Noise,
    ) -> Result<(Vec<f32>, BayesRecord)> {
        let keys = if estimator == Estimator::WeightSampling || prior.is_monte_carlo() {
            LayerKeys { weight: Some(noise.next_key()), bias: Some(noise.next_key()) }
        } else {
            LayerKeys { weight: None, bias: None }
        };
        let mask = self.posterior.host_mask.as_deref();
        let (weight_use, bias_use) = (forward_use(estimator, keys.weight), forward_use(estimator, keys.bias));
        write_forward_values(
            &self.posterior.weight_mu,
            &self.posterior.weight_rho,
            mask,
            weight_use,
            &self.work.weight,
        )?;
        write_forward_values(&self.posterior.bias_mu, &self.posterior.bias_rho, None, bias_use, &self.work.bias)?;
        let shape = (self.out_features(), self.in_features());
        match estimator {
            Estimator::LocalReparam => {
                if let (Some(masked), Some(mask)) = (&self.work.masked_mu, mask) {
                    values(self.posterior.weight_mu.as_tensor(), |mu| {
                        values_mut(masked.as_tensor(), |out| {
                            out.iter_mut().zip(mu).zip(mask).for_each(|((o, m), k)| *o = m * k)
                        })
                    })??;
                }
                let mut out =
                    affine(x, batch, self.mean_weight().as_tensor(), self.posterior.bias_mu.as_tensor(), shape)?;
                let squared_input: Vec<f32> = x.iter().map(|v| v * v).collect();
                let mut std =
                    affine(&squared_input, batch, self.work.weight.as_tensor(), self.work.bias.as_tensor(), shape)?;
                std.iter_mut().for_each(|v| *v = v.sqrt());
                let mut eps = vec![0.0f32; out.len()];
                noise.fill_gaussian(&mut eps);
                out.iter_mut().zip(std.iter().zip(&eps)).for_each(|(o, (s, e))| *o += s * e);
                Ok((out, BayesRecord { keys, moments: Some(MomentRecord { squared_input, std, eps }) }))
            }
            Estimator::WeightSampling => {
                let out = affine(x, batch, self.work.weight.as_tensor(), self.work.bias.as_tensor(), shape)?;
                Ok((out, BayesRecord { keys, moments: None }))
            }
        }
    }

    /// The means the local-reparameterization pass multiplies with: `mu`, or its masked copy.
    fn mean_weight(&self) -> &Var {
        self.work.masked_mu.as_ref().unwrap_or(&self.posterior.weight_mu)
    }

    /// The data term's gradients with respect to the layer's forward tensors, and to its input `x` when
    /// `input_grad`, from `g = d loss / d output`.
    pub(crate) fn backward_host(
        &self,
        x: &[f32],
        record: &BayesRecord,
        g: &[f32],
        input_grad: bool,
    ) -> Result<(BayesGradients, Option<Vec<f32>>)> {
        let shape = (self.out_features(), self.in_features());
        let Some(m) = &record.moments else {
            let a = affine_backward(x, g, self.work.weight.as_tensor(), shape, input_grad)?;
            let grads = BayesGradients {
                weight: TensorGradients { mean: a.weight, var: None },
                bias: TensorGradients { mean: a.bias, var: None },
            };
            return Ok((grads, a.input));
        };
        // out = mean + sqrt(var) eps: d out / d var = eps / (2 sqrt(var)).
        let g_var: Vec<f32> = g.iter().zip(m.eps.iter().zip(&m.std)).map(|(g, (e, s))| g * e / (2.0 * s)).collect();
        let mean = affine_backward(x, g, self.mean_weight().as_tensor(), shape, input_grad)?;
        let var = affine_backward(&m.squared_input, &g_var, self.work.weight.as_tensor(), shape, input_grad)?;
        // d loss / d x = (through the mean) + 2 x (through the squared input).
        let grad_x = mean.input.zip(var.input).map(|(mut gx, gs)| {
            gx.iter_mut().zip(gs.iter().zip(x)).for_each(|(o, (s, x))| *o += 2.0 * x * s);
            gx
        });
        let grads = BayesGradients {
            weight: TensorGradients { mean: mean.weight, var: Some(var.weight) },
            bias: TensorGradients { mean: mean.bias, var: Some(var.bias) },
        };
        Ok((grads, grad_x))
    }
}

impl BayesRecord {
    /// How the pass used the layer's weights and biases under `estimator` (for the fused update).
    pub(crate) fn tensor_uses(&self, estimator: Estimator) -> [TensorUse; 2] {
        [self.keys.weight, self.keys.bias].map(|key| TensorUse {
            usage: forward_use(estimator, key),
            kl_key: if estimator == Estimator::LocalReparam { key } else { None },
        })
    }
}

/// How a step's forward pass used one parameter tensor, and the noise key of its Monte-Carlo KL sample when
/// the use itself has none (see `kernels::posterior::StepInputs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TensorUse {
    pub(crate) usage: ForwardUse,
    pub(crate) kl_key: Option<u64>,
}

impl GaussianPosterior {
    /// The fused KL-and-update pass over the weights and the biases, used as `uses` says, with the data term's
    /// gradients `data` and the KL term weighted by `kl_weight`, handing each tensor's gradients to `target`.
    /// Returns the KL term (before any update).
    pub(crate) fn update_fused(
        &self,
        data: &BayesGradients,
        uses: [TensorUse; 2],
        prior: &PriorTerms,
        kl_weight: f64,
        mut target: GradientTarget,
    ) -> Result<f64> {
        let parts = [
            (&self.weight_mu, &self.weight_rho, &data.weight, uses[0], self.host_mask.as_deref()),
            (&self.bias_mu, &self.bias_rho, &data.bias, uses[1], None),
        ];
        let mut kl = 0.0;
        for (k, (mu, rho, grads, tensor_use, mask)) in parts.into_iter().enumerate() {
            let sink = match &mut target {
                GradientTarget::Adam { adam, step, names } => {
                    let (mu_name, rho_name) = (names[2 * k], names[2 * k + 1]);
                    let [(mm, mv), (rm, rv)] = adam
                        .host_moments_pair(mu_name, rho_name)
                        .ok_or_else(|| candle_core::Error::Msg(format!("no host Adam state for `{mu_name}`")))?;
                    GradientSink::Adam { step: **step, mu_moments: [mm, mv], rho_moments: [rm, rv] }
                }
                GradientTarget::Store(out) => {
                    let [mu, rho] = &mut out[2 * k..2 * k + 2] else { unreachable!("two of four") };
                    GradientSink::Store { mu, rho }
                }
            };
            let inputs = StepInputs {
                grad_mean: &grads.mean,
                grad_var: grads.var.as_deref(),
                usage: tensor_use.usage,
                prior: *prior,
                kl_key: tensor_use.kl_key,
                kl_weight: kl_weight as f32,
            };
            kl += values_mut(mu.as_tensor(), |mu| {
                values_mut(rho.as_tensor(), |rho| posterior::step(Posterior { mu, rho, mask }, &inputs, sink))
            })??;
        }
        Ok(kl)
    }
}

/// How `estimator` uses a parameter tensor in the forward pass, with the tensor's noise key (weight sampling).
fn forward_use(estimator: Estimator, key: Option<u64>) -> ForwardUse {
    match estimator {
        Estimator::LocalReparam => ForwardUse::Moments,
        Estimator::WeightSampling => ForwardUse::Sample { key: key.unwrap_or_default() },
    }
}

/// Writes the forward tensor of one parameter tensor into `out` (see `kernels::posterior::forward_values`).
fn write_forward_values(mu: &Var, rho: &Var, mask: Option<&[f32]>, usage: ForwardUse, out: &Var) -> Result<()> {
    values_mut(out.as_tensor(), |out| forward_tensor(mu, rho, mask, usage, out))?
}

/// The forward tensor of one parameter tensor, written into `out` (see `kernels::posterior::forward_values`).
pub(crate) fn forward_tensor(
    mu: &Var,
    rho: &Var,
    mask: Option<&[f32]>,
    usage: ForwardUse,
    out: &mut [f32],
) -> Result<()> {
    values(mu.as_tensor(), |mu| values(rho.as_tensor(), |rho| posterior::forward_values(mu, rho, mask, usage, out)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_gradients_match_central_differences() {
        let xs = [-2.5f32, -0.7, -0.1, 0.3, 1.2, 3.0];
        let g = [1.0f32, -0.5, 2.0, 0.25, -1.5, 0.75];
        for a in [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Gelu, Activation::Identity] {
            let f = |x: f32| {
                let mut v = [x];
                a.apply(&mut v);
                v[0] as f64
            };
            let y: Vec<f32> = xs.iter().map(|x| f(*x) as f32).collect();
            let got = activation_backward(a, &xs, &y, &g);
            for ((x, g), got) in xs.iter().zip(&g).zip(&got) {
                let h = 1e-3f32;
                let want = (f(x + h) - f(x - h)) / (2.0 * h as f64) * *g as f64;
                assert!((*got as f64 - want).abs() < 2e-3, "{a:?} at {x}: {got} vs {want}");
            }
        }
    }
}
