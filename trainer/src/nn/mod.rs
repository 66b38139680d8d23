//! The trainable network on candle: Bayesian and deterministic dense layers, priors and KL terms, and the
//! seeded noise that makes training reproducible.

mod bayes_linear;
mod fused_step;
mod linear;
mod network;
mod noise;
mod prior;
mod product;

pub use bayes_linear::{softplus, BayesLinear, WeightSample};
pub use fused_step::{LayerKeys, StepKeys};
pub use linear::Linear;
pub use network::{NetLayer, Network};
pub use noise::Noise;
pub use prior::{gaussian_kl, monte_carlo_kl};
