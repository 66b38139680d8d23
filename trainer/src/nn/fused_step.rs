//! The fused CPU training step of a whole network. The forward and backward passes run by hand on plain
//! slices, layer by layer (`fused_layers` for dense layers and activations, `fused_conv` for convolutions and
//! pooling): each Bayesian layer multiplies with tensors that one fused pass
//! per parameter tensor writes (variances, standard deviations or a weight sample, see `kernels::posterior`). Only the
//! likelihood runs on candle, on the network's output as a variable, so any likelihood (and its own
//! trainable noise) keeps working; its gradient with respect to the output starts the backward pass. Then
//! one fused pass per Bayesian parameter tensor adds the KL term's gradients, applies the chain rule through
//! `sigma = softplus(rho)` and updates `mu`, `rho` and their Adam moments in place; deterministic layers get
//! Adam's fused pass on their host gradients. The composed ops of `Network::forward_train` are the reference
//! this is checked against (`trainer/tests/fused_gradients.rs`).

use super::fused_conv::{ConvRecord, PoolRecord};
use super::fused_layers::{
    activate_in_place, activation_backward, BayesGradients, BayesRecord, GradientTarget, TensorUse,
};
use super::gaussian_posterior::GaussianPosterior;
use super::network::{NetLayer, Network};
use super::noise::Noise;
use crate::kernels::conv::ConvShape;
use crate::kernels::posterior::PriorTerms;
use crate::kernels::tensor_values::values;
use crate::optim::Adam;
use crate::recipe::{Estimator, PriorSpec};
use bnn_runtime::Shape;
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// What one layer's forward pass kept for its backward pass.
enum Record {
    Bayes(BayesRecord),
    Linear,
    Conv(ConvRecord),
    Pool(PoolRecord),
    Flatten,
    Dropout(Vec<f32>),
    Activation(bnn_runtime::Activation),
}

/// One forward pass of the fused step: every layer's input and output, what each layer kept, and the
/// output as the candle variable the likelihood differentiates.
pub struct FusedPass {
    /// `activations[i]` is layer `i`'s input; the last is the network's output.
    activations: Vec<Vec<f32>>,
    records: Vec<Record>,
    out: Var,
}

/// The data term's gradients of one layer's parameters.
enum DataGradients {
    Bayes(BayesGradients),
    Deterministic { weight: Vec<f32>, bias: Vec<f32> },
    None,
}

/// A variable's checkpoint name and the gradient of the loss with respect to its values.
pub type NamedGradient = (String, Vec<f32>);

impl Network {
    /// One stochastic training pass of the fused CPU step (see the module documentation): the same samples as
    /// [`Network::forward_train`] draws from the same noise, but without the KL term, which
    /// [`Network::update_fused`] computes with its gradients. Returns the output (a variable: the likelihood
    /// on it is differentiated by candle) and the record the backward pass needs.
    pub fn forward_fused(
        &self,
        x: &Tensor,
        estimator: Estimator,
        prior: &PriorSpec,
        noise: &mut Noise,
    ) -> Result<(Tensor, FusedPass)> {
        let prior = PriorTerms::new(prior);
        let batch = x.dim(0)?;
        let mut activations = vec![values(x, |v| v.to_vec())?];
        let mut records = Vec::with_capacity(self.layers.len());
        // The size of each example's feature maps while the network reads images.
        let mut image = match self.input {
            Shape::Image(dims) => Some(dims),
            Shape::Flat(_) => None,
        };
        let err = |m: &str| candle_core::Error::Msg(format!("the fused step: {m}"));
        for layer in &self.layers {
            let h = activations.last().expect("the input is there");
            let conv_shape = |g: &bnn_runtime::ConvGeometry| {
                let [_, height, width] = image.ok_or_else(|| err("a convolution reads images"))?;
                let shape = ConvShape::new(g, batch, [height, width]).map_err(|m| err(&m))?;
                let [oh, ow] = shape.output();
                Ok::<_, candle_core::Error>((shape, Some([g.out_channels, oh, ow])))
            };
            let (out, record) = match layer {
                NetLayer::Bayes(l) => {
                    let (out, r) = l.forward_host(h, batch, estimator, &prior, noise)?;
                    (out, Record::Bayes(r))
                }
                NetLayer::Linear(l) => (l.forward_host(h, batch)?, Record::Linear),
                NetLayer::BayesConv(l) => {
                    let (shape, next) = conv_shape(&l.geometry)?;
                    image = next;
                    let (out, r) = l.forward_host(h, shape, estimator, noise)?;
                    (out, Record::Conv(r))
                }
                NetLayer::Conv(l) => {
                    let (shape, next) = conv_shape(&l.geometry)?;
                    image = next;
                    let (out, r) = l.forward_host(h, shape)?;
                    (out, Record::Conv(r))
                }
                NetLayer::Pool(kind, geometry) => {
                    let dims = image.ok_or_else(|| err("pooling reads images"))?;
                    let (out, r) = PoolRecord::forward(h, dims, *kind, geometry);
                    image = Some(r.output());
                    (out, Record::Pool(r))
                }
                NetLayer::Flatten => {
                    image = None;
                    (h.clone(), Record::Flatten)
                }
                NetLayer::Dropout(p) => {
                    let mask = noise.dropout_values(h.len(), *p);
                    (h.iter().zip(&mask).map(|(h, m)| h * m).collect(), Record::Dropout(mask))
                }
                NetLayer::Activation(a) => {
                    let mut out = h.clone();
                    activate_in_place(*a, &mut out);
                    (out, Record::Activation(*a))
                }
            };
            activations.push(out);
            records.push(record);
        }
        let last = activations.last().expect("the output is there");
        let out = Var::from_slice(last, (batch, last.len() / batch.max(1)), x.device())?;
        Ok((out.as_tensor().clone(), FusedPass { activations, records, out }))
    }

    /// The data term's gradients of every layer, from the likelihood's gradients in `grads`.
    fn data_gradients(&self, pass: &FusedPass, grads: &GradStore) -> Result<Vec<DataGradients>> {
        let g_out = grads
            .get(pass.out.as_tensor())
            .ok_or_else(|| candle_core::Error::Msg("the loss does not depend on the network's output".into()))?;
        let mut g = values(g_out, |v| v.to_vec())?;
        let mut out: Vec<DataGradients> = (0..self.layers.len()).map(|_| DataGradients::None).collect();
        for (i, (layer, record)) in self.layers.iter().zip(&pass.records).enumerate().rev() {
            let (x, y) = (&pass.activations[i], &pass.activations[i + 1]);
            // Until a layer has changed it, the input is the data, which needs no gradient.
            let input_grad = i > 0;
            let grad_x = match (layer, record) {
                (NetLayer::Bayes(l), Record::Bayes(r)) => {
                    let (grads, grad_x) = l.backward_host(x, r, &g, input_grad)?;
                    out[i] = DataGradients::Bayes(grads);
                    grad_x
                }
                (NetLayer::Linear(l), Record::Linear) => {
                    let a = l.backward_host(x, &g, input_grad)?;
                    out[i] = DataGradients::Deterministic { weight: a.weight, bias: a.bias };
                    a.input
                }
                (NetLayer::BayesConv(_) | NetLayer::Conv(_), Record::Conv(r)) => {
                    let (grads, grad_x) = r.backward(&g, input_grad);
                    out[i] = match layer {
                        NetLayer::BayesConv(_) => DataGradients::Bayes(grads.into_bayes()),
                        _ => DataGradients::Deterministic { weight: grads.weight, bias: grads.bias },
                    };
                    grad_x
                }
                (NetLayer::Pool(..), Record::Pool(r)) => Some(r.backward(&g)),
                (NetLayer::Flatten, Record::Flatten) => Some(g.clone()),
                (NetLayer::Dropout(_), Record::Dropout(mask)) => Some(g.iter().zip(mask).map(|(g, m)| g * m).collect()),
                (NetLayer::Activation(_), Record::Activation(a)) => Some(activation_backward(*a, x, y, &g)),
                _ => return Err(candle_core::Error::Msg("the fused pass does not match the network".into())),
            };
            match grad_x {
                Some(grad_x) if input_grad => g = grad_x,
                _ => break,
            }
        }
        Ok(out)
    }

    /// The backward pass and one Adam step (step size `lr`) of every variable after [`Network::forward_fused`]:
    /// the fused update of each Bayesian layer with the KL term weighted by `kl_weight`, Adam's fused pass on
    /// each deterministic layer's gradients (the data term's, plus what `grads` holds for them: weight decay),
    /// and Adam on `grads` for every other variable `adam` holds (a learned noise). Returns the KL term, as of
    /// before the update.
    #[allow(clippy::too_many_arguments)]
    pub fn update_fused(
        &self,
        grads: &GradStore,
        pass: &FusedPass,
        estimator: Estimator,
        prior: &PriorSpec,
        kl_weight: f64,
        adam: &mut Adam,
        lr: f64,
    ) -> Result<f64> {
        let prior = PriorTerms::new(prior);
        let data = self.data_gradients(pass, grads)?;
        let step = adam.begin_step(lr);
        let mut kl = 0.0;
        let mut handled = Vec::new();
        for (i, (layer, (record, data))) in self.layers.iter().zip(pass.records.iter().zip(data)).enumerate() {
            match (layer, record, data) {
                (layer, record, DataGradients::Bayes(d)) => {
                    let (posterior, uses) = bayesian_use(layer, record, estimator)?;
                    let names = Network::bayesian_names(i);
                    let refs = [names[0].as_str(), names[1].as_str(), names[2].as_str(), names[3].as_str()];
                    let target = GradientTarget::Adam { adam, step: &step, names: refs };
                    kl += posterior.update_fused(&d, uses, &prior, kl_weight, target)?;
                    handled.extend(names);
                }
                (layer, _, DataGradients::Deterministic { weight, bias }) => {
                    for (name, var, g) in deterministic_parts(i, layer, [weight, bias])? {
                        let g = with_stored_gradient(g, grads, &var)?;
                        adam.update_host(&name, &step, &g)?;
                        handled.push(name);
                    }
                }
                _ => {}
            }
        }
        adam.update_from(grads, &step, |name| handled.iter().any(|h| h == name))?;
        Ok(kl)
    }

    /// The gradients of the whole loss (data term from `grads`, KL term weighted by `kl_weight`) with respect
    /// to every variable of the network after [`Network::forward_fused`], by checkpoint name, and the KL term;
    /// nothing is updated. What the fused update applies, for gradient checks against autograd of the
    /// composed path.
    pub fn fused_gradients(
        &self,
        grads: &GradStore,
        pass: &FusedPass,
        estimator: Estimator,
        prior: &PriorSpec,
        kl_weight: f64,
    ) -> Result<(Vec<NamedGradient>, f64)> {
        let prior = PriorTerms::new(prior);
        let data = self.data_gradients(pass, grads)?;
        let (mut out, mut kl) = (Vec::new(), 0.0);
        for (i, (layer, (record, data))) in self.layers.iter().zip(pass.records.iter().zip(data)).enumerate() {
            match (layer, record, data) {
                (layer, record, DataGradients::Bayes(d)) => {
                    let (posterior, uses) = bayesian_use(layer, record, estimator)?;
                    let (n, m) =
                        (posterior.weight_mu.as_tensor().elem_count(), posterior.bias_mu.as_tensor().elem_count());
                    let mut g = [n, n, m, m].map(|len| vec![0.0f32; len]);
                    kl += posterior.update_fused(&d, uses, &prior, kl_weight, GradientTarget::Store(&mut g))?;
                    out.extend(Network::bayesian_names(i).into_iter().zip(g));
                }
                (layer, _, DataGradients::Deterministic { weight, bias }) => {
                    for (name, var, g) in deterministic_parts(i, layer, [weight, bias])? {
                        out.push((name, with_stored_gradient(g, grads, &var)?));
                    }
                }
                _ => {}
            }
        }
        Ok((out, kl))
    }
}

/// A deterministic layer's two variables with their checkpoint names and the given gradients.
fn deterministic_parts(
    i: usize,
    layer: &NetLayer,
    [weight, bias]: [Vec<f32>; 2],
) -> Result<[(String, Var, Vec<f32>); 2]> {
    let (w, b) = match layer {
        NetLayer::Linear(l) => (&l.weight, &l.bias),
        NetLayer::Conv(l) => (&l.weight, &l.bias),
        _ => return Err(candle_core::Error::Msg("the fused pass does not match the network".into())),
    };
    Ok([(format!("layers.{i}.weight.mu"), w.clone(), weight), (format!("layers.{i}.bias.mu"), b.clone(), bias)])
}

/// A Bayesian layer's posterior and how its pass (`record`) used the weights and biases.
fn bayesian_use<'a>(
    layer: &'a NetLayer,
    record: &Record,
    estimator: Estimator,
) -> Result<(&'a GaussianPosterior, [TensorUse; 2])> {
    let uses = match (layer, record) {
        (NetLayer::Bayes(l), Record::Bayes(r)) => Some((&l.posterior, r.tensor_uses(estimator))),
        (NetLayer::BayesConv(l), Record::Conv(r)) => r.tensor_uses().map(|uses| (&l.posterior, uses)),
        _ => None,
    };
    uses.ok_or_else(|| candle_core::Error::Msg("the fused pass does not match the network".into()))
}

/// `g` plus the gradient `grads` holds for `var` (a penalty on it built with candle ops), if any.
fn with_stored_gradient(mut g: Vec<f32>, grads: &GradStore, var: &Var) -> Result<Vec<f32>> {
    if let Some(stored) = grads.get(var.as_tensor()) {
        values(stored, |s| g.iter_mut().zip(s).for_each(|(g, s)| *g += s))?;
    }
    Ok(g)
}
