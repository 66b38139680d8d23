//! The trainable network on candle: Bayesian and deterministic dense and convolutional layers, priors and KL
//! terms, the seeded noise that makes training reproducible, and the fused CPU training step (forward and backward
//! passes by hand, `fused_step` over `fused_layers` and `fused_conv`).

mod bayes_linear;
mod conv;
mod fused_conv;
mod fused_layers;
mod fused_step;
mod gaussian_posterior;
mod linear;
mod network;
mod noise;
mod prior;

pub use bayes_linear::BayesLinear;
pub use conv::{BayesConv2d, Conv2d};
pub use fused_step::{FusedPass, NamedGradient};
pub use gaussian_posterior::{softplus, GaussianPosterior, WeightSample};
pub use linear::Linear;
pub use network::{NetLayer, Network};
pub use noise::{step_key, Noise};
pub use prior::{gaussian_kl, monte_carlo_kl};
