//! The fused CPU training step of a Bayesian layer: the forward pass multiplies with tensors that one fused
//! pass per parameter tensor writes in place (variances or a weight sample, see `kernels::posterior`), candle's
//! autograd differentiates the loss with respect to those tensors, and one fused pass per parameter tensor
//! adds the KL term's gradients, applies the chain rule through `sigma = softplus(rho)` and updates `mu`, `rho`
//! and their Adam moments in place. The composed ops of [`BayesLinear`] are the reference it is checked against.

use super::bayes_linear::BayesLinear;
use super::network::{NetLayer, Network};
use super::noise::Noise;
use super::product::WeightProduct;
use crate::kernels::posterior::{self, ForwardUse, GradientSink, Posterior, PriorTerms, StepInputs};
use crate::kernels::tensor_values::{values, values_mut};
use crate::optim::{Adam, AdamStep};
use crate::recipe::{Estimator, PriorSpec};
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// The noise keys one layer's step drew: for the weight sample (weight sampling) or the Monte-Carlo KL's own
/// weight sample (local reparameterization with a mixture prior), weights then biases.
#[derive(Debug, Clone, Copy)]
pub struct LayerKeys {
    weight: Option<u64>,
    bias: Option<u64>,
}

/// The checkpoint names of one layer's four variables: weight mu, weight rho, bias mu, bias rho.
pub type LayerNames<'a> = [&'a str; 4];

impl BayesLinear {
    /// The training forward pass of the fused step for `x` of shape `[batch, in]`, drawing the same noise in
    /// the same order as the composed path (`forward_local_reparam` / `sample_weights` with `kl`).
    /// `input_grad` says whether `x` needs a gradient (not for data).
    pub fn forward_fused(
        &self,
        x: &Tensor,
        input_grad: bool,
        estimator: Estimator,
        prior: &PriorTerms,
        noise: &mut Noise,
    ) -> Result<(Tensor, LayerKeys)> {
        let keys = if estimator == Estimator::WeightSampling || prior.is_monte_carlo() {
            LayerKeys { weight: Some(noise.next_key()), bias: Some(noise.next_key()) }
        } else {
            LayerKeys { weight: None, bias: None }
        };
        let usage = |key: Option<u64>| match estimator {
            Estimator::LocalReparam => ForwardUse::Moments,
            Estimator::WeightSampling => ForwardUse::Sample { key: key.unwrap_or_default() },
        };
        let mask = self.host_mask.as_deref();
        write_forward_values(&self.weight_mu, &self.weight_rho, mask, usage(keys.weight), &self.work.weight)?;
        write_forward_values(&self.bias_mu, &self.bias_rho, None, usage(keys.bias), &self.work.bias)?;
        let out = match estimator {
            Estimator::LocalReparam => {
                let mean_weight = match (&self.work.masked_mu, mask) {
                    (Some(masked), Some(mask)) => {
                        values(self.weight_mu.as_tensor(), |mu| {
                            values_mut(masked.as_tensor(), |out| {
                                out.iter_mut().zip(mu).zip(mask).for_each(|((o, m), k)| *o = m * k)
                            })
                        })??;
                        masked.as_tensor()
                    }
                    _ => self.weight_mu.as_tensor(),
                };
                let mean = WeightProduct::apply(x, mean_weight, input_grad)?.broadcast_add(self.bias_mu.as_tensor())?;
                let var = WeightProduct::apply(&x.sqr()?, self.work.weight.as_tensor(), input_grad)?
                    .broadcast_add(self.work.bias.as_tensor())?;
                let eps = noise.gaussian(&[x.dim(0)?, self.out_features()])?;
                (mean + (var.sqrt()? * eps)?)?
            }
            Estimator::WeightSampling => WeightProduct::apply(x, self.work.weight.as_tensor(), input_grad)?
                .broadcast_add(self.work.bias.as_tensor())?,
        };
        Ok((out, keys))
    }

    /// The fused backward pass of the layer after `forward_fused`, with the data term's gradients in `grads` and
    /// the KL term weighted by `kl_weight`, handing each parameter tensor's gradients to `target`. Returns the
    /// layer's KL term (before any update).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_fused(
        &self,
        grads: &GradStore,
        keys: LayerKeys,
        estimator: Estimator,
        prior: &PriorTerms,
        kl_weight: f64,
        mut target: GradientTarget,
    ) -> Result<f64> {
        let mean_weight = self.work.masked_mu.as_ref().unwrap_or(&self.weight_mu);
        let weight = Tensors {
            mu: &self.weight_mu,
            rho: &self.weight_rho,
            forward_mean: mean_weight,
            forward_var: &self.work.weight,
        };
        let bias = Tensors {
            mu: &self.bias_mu,
            rho: &self.bias_rho,
            forward_mean: &self.bias_mu,
            forward_var: &self.work.bias,
        };
        let mut kl = 0.0;
        for (k, (t, key, mask)) in
            [(weight, keys.weight, self.host_mask.as_deref()), (bias, keys.bias, None)].into_iter().enumerate()
        {
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
            kl += t.step(grads, estimator, key, prior, mask, kl_weight as f32, sink)?;
        }
        Ok(kl)
    }
}

/// Where [`BayesLinear::backward_fused`] sends a layer's gradients.
pub(crate) enum GradientTarget<'a> {
    /// An Adam step of the layer's variables, named (weight mu, weight rho, bias mu, bias rho) as in `adam`.
    Adam { adam: &'a mut Adam, step: &'a AdamStep, names: LayerNames<'a> },
    /// Into four vectors of the variables' sizes, in that order.
    Store(&'a mut [Vec<f32>; 4]),
}

/// The variables of one parameter tensor and the tensors its forward pass used.
struct Tensors<'a> {
    mu: &'a Var,
    rho: &'a Var,
    /// What the forward pass used as means (local reparameterization): `mu` itself or its masked copy.
    forward_mean: &'a Var,
    /// The variances (local reparameterization) or the weight sample (weight sampling).
    forward_var: &'a Var,
}

impl Tensors<'_> {
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        grads: &GradStore,
        estimator: Estimator,
        key: Option<u64>,
        prior: &PriorTerms,
        mask: Option<&[f32]>,
        kl_weight: f32,
        sink: GradientSink,
    ) -> Result<f64> {
        let grad = |v: &Var| {
            grads
                .get(v.as_tensor())
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg("a Bayesian layer got no gradient".into()))
        };
        let (grad_mean, grad_var, usage) = match estimator {
            Estimator::LocalReparam => (grad(self.forward_mean)?, Some(grad(self.forward_var)?), ForwardUse::Moments),
            Estimator::WeightSampling => {
                (grad(self.forward_var)?, None, ForwardUse::Sample { key: key.unwrap_or_default() })
            }
        };
        let kl_key = if estimator == Estimator::LocalReparam { key } else { None };
        values(&grad_mean, |grad_mean| {
            with_optional_values(grad_var.as_ref(), |grad_var| {
                values_mut(self.mu.as_tensor(), |mu| {
                    values_mut(self.rho.as_tensor(), |rho| {
                        let inputs = StepInputs { grad_mean, grad_var, usage, prior: *prior, kl_key, kl_weight };
                        posterior::step(Posterior { mu, rho, mask }, &inputs, sink)
                    })
                })
            })
        })???
    }
}

fn with_optional_values<R>(t: Option<&Tensor>, f: impl FnOnce(Option<&[f32]>) -> R) -> Result<R> {
    match t {
        Some(t) => values(t, |v| f(Some(v))),
        None => Ok(f(None)),
    }
}

/// Writes the forward tensor of one parameter tensor into `out` (see `kernels::posterior::forward_values`).
fn write_forward_values(mu: &Var, rho: &Var, mask: Option<&[f32]>, usage: ForwardUse, out: &Var) -> Result<()> {
    values(mu.as_tensor(), |mu| {
        values(rho.as_tensor(), |rho| {
            values_mut(out.as_tensor(), |out| posterior::forward_values(mu, rho, mask, usage, out))
        })
    })???;
    Ok(())
}

/// A variable's checkpoint name and the gradient of the loss with respect to its values.
pub type NamedGradient = (String, Vec<f32>);

/// The noise keys of a network's fused step, one entry per layer (`None` for layers without a posterior).
pub struct StepKeys(Vec<Option<LayerKeys>>);

impl Network {
    /// One stochastic training pass of the fused CPU step (see the module documentation): the same samples as
    /// [`Network::forward_train`] draws from the same noise, but without the KL term, which
    /// [`Network::update_fused`] computes with its gradients.
    pub fn forward_fused(
        &self,
        x: &Tensor,
        estimator: Estimator,
        prior: &PriorSpec,
        noise: &mut Noise,
    ) -> Result<(Tensor, StepKeys)> {
        let prior = PriorTerms::new(prior);
        let mut h = x.clone();
        let mut keys = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let mut layer_keys = None;
            h = match layer {
                NetLayer::Bayes(l) => {
                    // Until a layer has changed it, `h` is the data, which needs no gradient.
                    let (out, k) = l.forward_fused(&h, i > 0, estimator, &prior, noise)?;
                    layer_keys = Some(k);
                    out
                }
                other => other.forward_deterministic(&h, noise)?,
            };
            keys.push(layer_keys);
        }
        Ok((h, StepKeys(keys)))
    }

    /// The backward pass and one Adam step (step size `lr`) of every variable after [`Network::forward_fused`]:
    /// the fused update of each Bayesian layer with the KL term weighted by `kl_weight`, and Adam on the
    /// gradients in `grads` for every other variable `adam` holds (deterministic layers, a learned noise).
    /// Returns the KL term, as of before the update.
    #[allow(clippy::too_many_arguments)]
    pub fn update_fused(
        &self,
        grads: &GradStore,
        keys: &StepKeys,
        estimator: Estimator,
        prior: &PriorSpec,
        kl_weight: f64,
        adam: &mut Adam,
        lr: f64,
    ) -> Result<f64> {
        let prior = PriorTerms::new(prior);
        let step = adam.begin_step(lr);
        let mut kl = 0.0;
        let mut bayesian = Vec::new();
        for (i, l, k) in self.bayesian_layers(keys) {
            let names = Network::bayesian_names(i);
            let refs = [names[0].as_str(), names[1].as_str(), names[2].as_str(), names[3].as_str()];
            let target = GradientTarget::Adam { adam, step: &step, names: refs };
            kl += l.backward_fused(grads, k, estimator, &prior, kl_weight, target)?;
            bayesian.extend(names);
        }
        adam.update_from(grads, &step, |name| bayesian.iter().any(|b| b == name))?;
        Ok(kl)
    }

    /// The gradients of the whole loss (data term in `grads`, KL term weighted by `kl_weight`) with respect to
    /// every Bayesian variable after [`Network::forward_fused`], by checkpoint name, and the KL term; nothing is
    /// updated. What the fused update applies, for gradient checks against autograd of the composed path.
    pub fn fused_gradients(
        &self,
        grads: &GradStore,
        keys: &StepKeys,
        estimator: Estimator,
        prior: &PriorSpec,
        kl_weight: f64,
    ) -> Result<(Vec<NamedGradient>, f64)> {
        let prior = PriorTerms::new(prior);
        let (mut out, mut kl) = (Vec::new(), 0.0);
        for (i, l, k) in self.bayesian_layers(keys) {
            let (n, m) = (l.in_features() * l.out_features(), l.out_features());
            let mut g = [n, n, m, m].map(|len| vec![0.0f32; len]);
            kl += l.backward_fused(grads, k, estimator, &prior, kl_weight, GradientTarget::Store(&mut g))?;
            out.extend(Network::bayesian_names(i).into_iter().zip(g));
        }
        Ok((out, kl))
    }

    /// The Bayesian layers of a fused step with their index and noise keys.
    fn bayesian_layers<'a>(
        &'a self,
        keys: &'a StepKeys,
    ) -> impl Iterator<Item = (usize, &'a BayesLinear, LayerKeys)> + 'a {
        self.layers.iter().zip(&keys.0).enumerate().filter_map(|(i, (layer, k))| match (layer, k) {
            (NetLayer::Bayes(l), Some(k)) => Some((i, l, *k)),
            _ => None,
        })
    }
}
