//! [`Network`]: the trainable stack of layers built from a recipe, its forward passes (training sample,
//! evaluation sample, posterior mean), its KL term, and its conversion to a runtime model.

use super::bayes_linear::BayesLinear;
use super::linear::Linear;
use super::noise::Noise;
use crate::recipe::{Estimator, ModelKind, ModelSpec, PriorSpec};
use bnn_runtime::{Activation, SeededRng};
use candle_core::{Device, Result, Tensor, Var};

/// One trainable layer.
pub enum NetLayer {
    Bayes(BayesLinear),
    Linear(Linear),
    Dropout(f32),
    Activation(Activation),
}

/// A feed-forward network of Bayesian or deterministic dense layers.
pub struct Network {
    pub layers: Vec<NetLayer>,
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
    /// A training pass through a layer without a posterior: deterministic weights, active dropout, activation.
    pub(crate) fn forward_deterministic(&self, h: &Tensor, noise: &mut Noise) -> Result<Tensor> {
        match self {
            NetLayer::Bayes(_) => Err(candle_core::Error::Msg("a Bayesian layer has no deterministic pass".into())),
            NetLayer::Linear(l) => l.forward(h),
            NetLayer::Dropout(p) => h * noise.dropout_mask(h.dims(), *p)?,
            NetLayer::Activation(a) => activate(h, *a),
        }
    }
}

impl Network {
    /// `input -> hidden... -> head` with the recipe's layer kind, activation and dropout, initialised from `seed`.
    pub fn new(spec: &ModelSpec, input: usize, head: usize, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = SeededRng::new(seed);
        let sizes: Vec<usize> = std::iter::once(input).chain(spec.hidden.iter().copied()).chain([head]).collect();
        let mut layers = Vec::new();
        for (k, w) in sizes.windows(2).enumerate() {
            layers.push(match spec.kind {
                ModelKind::Bayesian => {
                    NetLayer::Bayes(BayesLinear::new(w[0], w[1], spec.mu_init_scale, spec.rho_init, &mut rng, device)?)
                }
                ModelKind::Deterministic | ModelKind::McDropout => {
                    NetLayer::Linear(Linear::new(w[0], w[1], spec.mu_init_scale, &mut rng, device)?)
                }
            });
            if k + 2 < sizes.len() {
                layers.push(NetLayer::Activation(spec.activation));
                if spec.dropout > 0.0 {
                    layers.push(NetLayer::Dropout(spec.dropout));
                }
            }
        }
        Ok(Self { layers })
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
        let mut h = x.clone();
        let mut kl = Tensor::zeros((), candle_core::DType::F32, x.device())?;
        for layer in &self.layers {
            h = match layer {
                NetLayer::Bayes(l) => match estimator {
                    Estimator::LocalReparam => {
                        kl = (kl + l.kl(prior, None, noise)?)?;
                        l.forward_local_reparam(&h, noise)?
                    }
                    Estimator::WeightSampling => {
                        let sample = l.sample_weights(noise)?;
                        kl = (kl + l.kl(prior, Some(&sample), noise)?)?;
                        BayesLinear::forward_with(&h, &sample)?
                    }
                },
                other => other.forward_deterministic(&h, noise)?,
            };
        }
        Ok((h, kl))
    }

    /// One Monte-Carlo prediction sample (local reparameterization, dropout on), for evaluation.
    pub fn forward_sample(&self, x: &Tensor, noise: &mut Noise) -> Result<Tensor> {
        let mut h = x.clone();
        for layer in &self.layers {
            h = match layer {
                NetLayer::Bayes(l) => l.forward_local_reparam(&h, noise)?,
                other => other.forward_deterministic(&h, noise)?,
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
        let mut h = x.clone();
        for layer in &self.layers {
            h = match layer {
                NetLayer::Bayes(l) => l.forward_mean(&h)?,
                NetLayer::Linear(l) => l.forward(&h)?,
                NetLayer::Dropout(_) => h,
                NetLayer::Activation(a) => activate(&h, *a)?,
            };
        }
        Ok(h)
    }

    /// `sum W^2` over deterministic layers, for weight decay.
    pub fn deterministic_squared_norm(&self, device: &Device) -> Result<Tensor> {
        let mut total = Tensor::zeros((), candle_core::DType::F32, device)?;
        for layer in &self.layers {
            if let NetLayer::Linear(l) = layer {
                total = (total + l.squared_norm()?)?;
            }
        }
        Ok(total)
    }

    /// Every trainable variable with its checkpoint name (`layers.{i}.{weight|bias}.{mu|rho}`).
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            match layer {
                NetLayer::Bayes(l) => {
                    let vars = [&l.weight_mu, &l.weight_rho, &l.bias_mu, &l.bias_rho];
                    out.extend(Network::bayesian_names(i).into_iter().zip(vars.map(Var::clone)));
                }
                NetLayer::Linear(l) => {
                    out.push((format!("layers.{i}.weight.mu"), l.weight.clone()));
                    out.push((format!("layers.{i}.bias.mu"), l.bias.clone()));
                }
                NetLayer::Dropout(_) | NetLayer::Activation(_) => {}
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
        let inverse_softplus = |s: f32| match s {
            s if s > 20.0 => s,
            s if s > 0.0 => s.exp_m1().ln().max(-30.0),
            _ => -30.0,
        };
        for (i, (mine, theirs)) in self.layers.iter_mut().zip(layers).enumerate() {
            match (mine, theirs) {
                (NetLayer::Bayes(l), bnn_runtime::Layer::BayesianDense(r))
                    if (l.in_features(), l.out_features()) == (r.in_features(), r.out_features()) =>
                {
                    let shape = (r.out_features(), r.in_features());
                    let (mu, sigma) = (r.dense_weight_mu(), r.dense_weight_sigma());
                    let mask: Vec<f32> =
                        mu.iter().zip(&sigma).map(|(m, s)| if *m != 0.0 || *s != 0.0 { 1.0 } else { 0.0 }).collect();
                    l.weight_mu.set(&Tensor::from_vec(mu, shape, device)?)?;
                    l.weight_rho.set(&Tensor::from_vec(
                        sigma.iter().map(|s| inverse_softplus(*s)).collect::<Vec<_>>(),
                        shape,
                        device,
                    )?)?;
                    l.bias_mu.set(&Tensor::from_slice(r.bias_mu(), r.out_features(), device)?)?;
                    let bias_rho: Vec<f32> = r.bias_sigma().iter().map(|s| inverse_softplus(*s)).collect();
                    l.bias_rho.set(&Tensor::from_vec(bias_rho, r.out_features(), device)?)?;
                    l.set_mask(Tensor::from_vec(mask, shape, device)?)?;
                }
                (NetLayer::Linear(l), bnn_runtime::Layer::Dense(r))
                    if (l.in_features(), l.out_features()) == (r.in_features(), r.out_features()) =>
                {
                    l.weight.set(&Tensor::from_vec(r.dense_weight(), (r.out_features(), r.in_features()), device)?)?;
                    l.bias.set(&Tensor::from_slice(r.bias(), r.out_features(), device)?)?;
                }
                (NetLayer::Dropout(_), bnn_runtime::Layer::Dropout(_))
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
                    NetLayer::Bayes(l) => bnn_runtime::Layer::BayesianDense(bnn_runtime::BayesianDense::new(
                        l.in_features(),
                        l.out_features(),
                        flat(&l.weight_mu()?)?,
                        flat(&l.weight_sigma()?)?,
                        flat(l.bias_mu.as_tensor())?,
                        flat(&l.bias_sigma()?)?,
                    )),
                    NetLayer::Linear(l) => bnn_runtime::Layer::Dense(bnn_runtime::Dense::new(
                        l.in_features(),
                        l.out_features(),
                        flat(l.weight.as_tensor())?,
                        flat(l.bias.as_tensor())?,
                    )),
                    NetLayer::Dropout(p) => bnn_runtime::Layer::Dropout(bnn_runtime::Dropout::new(*p)),
                    NetLayer::Activation(a) => bnn_runtime::Layer::Activation(*a),
                })
            })
            .collect()
    }
}
