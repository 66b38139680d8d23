//! [`Network`]: the trainable stack of layers built from a recipe (dense, or convolutional with pooling and
//! flatten), its forward passes (training sample, evaluation sample, posterior mean), its KL term, and its
//! conversion to a runtime model.

use super::bayes_linear::BayesLinear;
use super::conv::{check_trainable_pool, pool, BayesConv2d, Conv2d};
use super::linear::Linear;
use super::noise::Noise;
use crate::arch::{Architecture, Stage};
use crate::recipe::{Estimator, ModelKind, ModelSpec, PriorSpec};
use bnn_runtime::{Activation, Normalization, PoolGeometry, PoolKind, Provenance, SeededRng, Shape, Task};
use candle_core::{Device, Result, Tensor, Var};

/// One trainable layer.
pub enum NetLayer {
    Bayes(BayesLinear),
    Linear(Linear),
    BayesConv(BayesConv2d),
    Conv(Conv2d),
    Pool(PoolKind, PoolGeometry),
    Flatten,
    Dropout(f32),
    Activation(Activation),
}

/// A feed-forward network of Bayesian or deterministic layers.
pub struct Network {
    pub layers: Vec<NetLayer>,
    /// What the network reads: a flat vector, or an image passed flat in NCHW order.
    pub input: Shape,
}

fn activate(x: &Tensor, a: Activation) -> Result<Tensor> {
    match a {
        Activation::Relu => x.relu(),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => candle_nn::ops::sigmoid(x),
        Activation::Gelu => x.gelu_erf(),
        Activation::Identity => Ok(x.clone()),
    }
}

impl NetLayer {
    /// A pass through a layer without a posterior: deterministic weights, pooling, activation, and dropout
    /// drawn from `dropout` (off without it).
    pub(crate) fn forward_deterministic(&self, h: &Tensor, dropout: Option<&mut Noise>) -> Result<Tensor> {
        match self {
            NetLayer::Bayes(_) | NetLayer::BayesConv(_) => {
                Err(candle_core::Error::Msg("a Bayesian layer has no deterministic pass".into()))
            }
            NetLayer::Linear(l) => l.forward(h),
            NetLayer::Conv(l) => l.forward(h),
            NetLayer::Pool(kind, geometry) => pool(h, *kind, geometry),
            NetLayer::Flatten => h.flatten_from(1),
            NetLayer::Dropout(p) => match dropout {
                Some(noise) => h * noise.dropout_mask(h.dims(), *p)?,
                None => Ok(h.clone()),
            },
            NetLayer::Activation(a) => activate(h, *a),
        }
    }
}

impl Network {
    /// The recipe's network for `input` values and `head` outputs, initialised from `seed`: `model.arch`'s stages
    /// (or `input -> hidden... ->`) then a dense layer to `head`, each dense or convolution stage but the last
    /// followed by the activation and, when the recipe asks for it, dropout.
    pub fn new(spec: &ModelSpec, input: usize, head: usize, seed: u64, device: &Device) -> Result<Self> {
        let err = |m: String| candle_core::Error::Msg(m);
        let mut arch = match &spec.arch {
            Some(text) => Architecture::parse(text).map_err(err)?,
            None => Architecture::mlp(&std::iter::once(input).chain(spec.hidden.iter().copied()).collect::<Vec<_>>()),
        };
        if arch.input.len() != input {
            return Err(err(format!(
                "model.arch reads {} values ({:?}), the data has {input}",
                arch.input.len(),
                arch.input
            )));
        }
        arch.stages.push(Stage::Dense(head));
        let inputs = arch.stage_inputs().map_err(|e| err(format!("model.arch: {e}")))?;
        let (weighted, bayesian, scale) = (arch.weighted(), spec.kind == ModelKind::Bayesian, spec.mu_init_scale);
        let mut rng = SeededRng::new(seed);
        let (mut layers, mut done) = (Vec::new(), 0);
        for (stage, shape) in arch.stages.iter().zip(inputs) {
            let layer = match *stage {
                Stage::Dense(out) => {
                    let Shape::Flat(inp) = shape else {
                        return Err(err("model.arch: a dense layer after an image needs `flatten` first".into()));
                    };
                    if bayesian {
                        NetLayer::Bayes(BayesLinear::new(inp, out, scale, spec.rho_init, &mut rng, device)?)
                    } else {
                        NetLayer::Linear(Linear::new(inp, out, scale, &mut rng, device)?)
                    }
                }
                Stage::Conv(g) if bayesian => {
                    NetLayer::BayesConv(BayesConv2d::new(g, scale, spec.rho_init, &mut rng, device)?)
                }
                Stage::Conv(g) => NetLayer::Conv(Conv2d::new(g, scale, &mut rng, device)?),
                Stage::Pool(kind, geometry) => {
                    // `stage_inputs` gave pooling an image.
                    if let Shape::Image([_, h, w]) = shape {
                        check_trainable_pool(&geometry, [h, w]).map_err(err)?;
                    }
                    layers.push(NetLayer::Pool(kind, geometry));
                    continue;
                }
                Stage::Flatten => {
                    layers.push(NetLayer::Flatten);
                    continue;
                }
            };
            layers.push(layer);
            done += 1;
            if done < weighted {
                layers.push(NetLayer::Activation(spec.activation));
                if spec.dropout > 0.0 {
                    layers.push(NetLayer::Dropout(spec.dropout));
                }
            }
        }
        Ok(Self { layers, input: arch.input })
    }

    /// `x` (`[batch, values]`) as the first layer reads it: as is, or as `[batch, c, h, w]` images.
    fn shaped_input(&self, x: &Tensor) -> Result<Tensor> {
        match self.input {
            Shape::Flat(_) => Ok(x.clone()),
            Shape::Image([c, h, w]) => x.reshape((x.dim(0)?, c, h, w)),
        }
    }

    /// One stochastic training pass and the KL term of the posterior from the prior (0 for deterministic
    /// layers): each Bayesian layer uses `estimator`; dropout is active.
    pub fn forward_train(
        &self,
        x: &Tensor,
        estimator: Estimator,
        prior: &PriorSpec,
        noise: &mut Noise,
    ) -> Result<(Tensor, Tensor)> {
        let mut h = self.shaped_input(x)?;
        let mut kl = Tensor::zeros((), candle_core::DType::F32, x.device())?;
        for layer in &self.layers {
            h = match layer {
                NetLayer::BayesConv(l) => {
                    let (out, sample) = match estimator {
                        Estimator::LocalReparam => l.forward_flipout(&h, noise)?,
                        Estimator::WeightSampling => {
                            let sample = l.posterior.sample(noise)?;
                            (l.forward_with(&h, &sample)?, sample)
                        }
                    };
                    kl = (kl + l.posterior.kl(prior, Some(&sample), noise)?)?;
                    out
                }
                NetLayer::Bayes(l) => match estimator {
                    Estimator::LocalReparam => {
                        kl = (kl + l.posterior.kl(prior, None, noise)?)?;
                        l.forward_local_reparam(&h, noise)?
                    }
                    Estimator::WeightSampling => {
                        let sample = l.posterior.sample(noise)?;
                        kl = (kl + l.posterior.kl(prior, Some(&sample), noise)?)?;
                        BayesLinear::forward_with(&h, &sample)?
                    }
                },
                other => other.forward_deterministic(&h, Some(&mut *noise))?,
            };
        }
        Ok((h, kl))
    }

    /// One Monte-Carlo prediction sample (local reparameterization in dense layers, Flipout in convolutions,
    /// dropout on), for evaluation.
    pub fn forward_sample(&self, x: &Tensor, noise: &mut Noise) -> Result<Tensor> {
        let mut h = self.shaped_input(x)?;
        for layer in &self.layers {
            h = match layer {
                NetLayer::Bayes(l) => l.forward_local_reparam(&h, noise)?,
                NetLayer::BayesConv(l) => l.forward_flipout(&h, noise)?.0,
                other => other.forward_deterministic(&h, Some(&mut *noise))?,
            };
        }
        Ok(h)
    }

    /// The checkpoint names of Bayesian layer `i`'s variables: weight mu, weight rho, bias mu, bias rho.
    pub(crate) fn bayesian_names(i: usize) -> [String; 4] {
        ["weight.mu", "weight.rho", "bias.mu", "bias.rho"].map(|v| format!("layers.{i}.{v}"))
    }

    /// The deterministic pass with posterior means and dropout off.
    pub fn forward_mean(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.shaped_input(x)?;
        for layer in &self.layers {
            h = match layer {
                NetLayer::Bayes(l) => l.forward_mean(&h)?,
                NetLayer::BayesConv(l) => l.forward_mean(&h)?,
                other => other.forward_deterministic(&h, None)?,
            };
        }
        Ok(h)
    }

    /// `sum W^2` over deterministic layers, for weight decay.
    pub fn deterministic_squared_norm(&self, device: &Device) -> Result<Tensor> {
        let mut total = Tensor::zeros((), candle_core::DType::F32, device)?;
        for layer in &self.layers {
            match layer {
                NetLayer::Linear(l) => total = (total + l.squared_norm()?)?,
                NetLayer::Conv(l) => total = (total + l.squared_norm()?)?,
                _ => {}
            }
        }
        Ok(total)
    }

    /// Every trainable variable with its checkpoint name (`layers.{i}.{weight|bias}.{mu|rho}`).
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            match layer {
                NetLayer::Bayes(BayesLinear { posterior, .. }) | NetLayer::BayesConv(BayesConv2d { posterior, .. }) => {
                    out.extend(Network::bayesian_names(i).into_iter().zip(posterior.vars().map(Var::clone)));
                }
                NetLayer::Linear(Linear { weight, bias, .. }) | NetLayer::Conv(Conv2d { weight, bias, .. }) => {
                    out.push((format!("layers.{i}.weight.mu"), weight.clone()));
                    out.push((format!("layers.{i}.bias.mu"), bias.clone()));
                }
                NetLayer::Pool(..) | NetLayer::Flatten | NetLayer::Dropout(_) | NetLayer::Activation(_) => {}
            }
        }
        out
    }

    /// Loads the weights of a runtime model of the same architecture: means, rho = softplus^-1(sigma), and the
    /// pruning pattern of each Bayesian layer (weights with mu = sigma = 0 stay pruned).
    pub fn load_runtime_layers(&mut self, layers: &[bnn_runtime::Layer], device: &Device) -> Result<()> {
        let err = |m: String| candle_core::Error::Msg(m);
        if layers.len() != self.layers.len() {
            return Err(err(format!("the model has {} layers, the recipe builds {}", layers.len(), self.layers.len())));
        }
        for (i, (mine, theirs)) in self.layers.iter_mut().zip(layers).enumerate() {
            match (mine, theirs) {
                (NetLayer::Bayes(l), bnn_runtime::Layer::BayesianDense(r))
                    if (l.in_features(), l.out_features()) == (r.in_features(), r.out_features()) =>
                {
                    let (mu, sigma) = (r.dense_weight_mu(), r.dense_weight_sigma());
                    if let Some(mask) = l.posterior.load((&mu, &sigma), (r.bias_mu(), r.bias_sigma()))? {
                        l.set_mask(mask)?;
                    }
                }
                (NetLayer::Linear(l), bnn_runtime::Layer::Dense(r))
                    if (l.in_features(), l.out_features()) == (r.in_features(), r.out_features()) =>
                {
                    l.weight.set(&Tensor::from_vec(r.dense_weight(), (r.out_features(), r.in_features()), device)?)?;
                    l.bias.set(&Tensor::from_slice(r.bias(), r.out_features(), device)?)?;
                }
                (NetLayer::BayesConv(l), bnn_runtime::Layer::BayesianConv2d(r)) if l.geometry == *r.geometry() => {
                    let posterior = &mut l.posterior;
                    if let Some(mask) =
                        posterior.load((r.weight_mu(), r.weight_sigma()), (r.bias_mu(), r.bias_sigma()))?
                    {
                        posterior.set_mask(mask)?;
                    }
                }
                (NetLayer::Conv(l), bnn_runtime::Layer::Conv2d(r)) if l.geometry == *r.geometry() => {
                    l.weight.set(&Tensor::from_slice(r.weight(), l.geometry.weight_shape().as_slice(), device)?)?;
                    l.bias.set(&Tensor::from_slice(r.bias(), r.bias().len(), device)?)?;
                }
                (NetLayer::Pool(kind, geometry), bnn_runtime::Layer::Pool2d(r))
                    if (*kind, *geometry) == (r.kind, r.geometry) => {}
                (NetLayer::Flatten, bnn_runtime::Layer::Flatten)
                | (NetLayer::Dropout(_), bnn_runtime::Layer::Dropout(_))
                | (NetLayer::Activation(_), bnn_runtime::Layer::Activation(_)) => {}
                _ => return Err(err(format!("layer {i} of the model does not match the recipe's network"))),
            }
        }
        Ok(())
    }

    /// The runtime's layers, with sigma = softplus(rho) evaluated once.
    pub fn to_runtime_layers(&self) -> Result<Vec<bnn_runtime::Layer>> {
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        self.layers
            .iter()
            .map(|layer| {
                Ok(match layer {
                    NetLayer::Bayes(l) => {
                        let [mu, sigma, bias_mu, bias_sigma] = l.posterior.runtime_values()?;
                        let (i, o) = (l.in_features(), l.out_features());
                        bnn_runtime::Layer::BayesianDense(bnn_runtime::BayesianDense::new(
                            i, o, mu, sigma, bias_mu, bias_sigma,
                        ))
                    }
                    NetLayer::Linear(l) => bnn_runtime::Layer::Dense(bnn_runtime::Dense::new(
                        l.in_features(),
                        l.out_features(),
                        flat(l.weight.as_tensor())?,
                        flat(l.bias.as_tensor())?,
                    )),
                    NetLayer::BayesConv(l) => {
                        let [mu, sigma, bias_mu, bias_sigma] = l.posterior.runtime_values()?;
                        bnn_runtime::Layer::BayesianConv2d(bnn_runtime::BayesianConv2d::new(
                            l.geometry, mu, sigma, bias_mu, bias_sigma,
                        ))
                    }
                    NetLayer::Conv(l) => bnn_runtime::Layer::Conv2d(bnn_runtime::Conv2d::new(
                        l.geometry,
                        flat(l.weight.as_tensor())?,
                        flat(l.bias.as_tensor())?,
                    )),
                    NetLayer::Pool(kind, geometry) => {
                        bnn_runtime::Layer::Pool2d(bnn_runtime::Pool2d { kind: *kind, geometry: *geometry })
                    }
                    NetLayer::Flatten => bnn_runtime::Layer::Flatten,
                    NetLayer::Dropout(p) => bnn_runtime::Layer::Dropout(bnn_runtime::Dropout::new(*p)),
                    NetLayer::Activation(a) => bnn_runtime::Layer::Activation(*a),
                })
            })
            .collect()
    }

    /// The network as a validated runtime model of its input shape.
    pub fn to_runtime_model(
        &self,
        task: Task,
        normalization: Option<Normalization>,
        provenance: Provenance,
    ) -> crate::Result<bnn_runtime::Model> {
        let layers = self.to_runtime_layers()?;
        Ok(bnn_runtime::Model::with_input(layers, self.input, task, normalization, provenance)?)
    }
}
