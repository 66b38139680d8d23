//! How a Monte-Carlo sample of the network is drawn: the [`Sampler`] choice and the seeded random source.

mod rng;
mod tape;
mod ziggurat;

pub use rng::SeededRng;
pub(crate) use tape::{Noise, NoiseTape};

/// How each Monte-Carlo sample treats the Bayesian weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sampler {
    /// Local reparameterization: each pre-activation `b_j = sum_i x_i w_ij` is drawn from its exact Gaussian,
    /// `N(x . mu_j + mu_bj, x^2 . sigma_j^2 + sigma_bj^2)`. Exact in distribution for one input and much
    /// cheaper than drawing every weight. The default.
    #[default]
    LocalReparam,
    /// The reference: a fresh draw of every weight and bias for every sample.
    WeightSampling,
    /// Deterministic: the posterior means, with dropout off. One pass whatever the sample count.
    Mean,
    /// For a batch, as a framework's forward pass of a batch: each sample's network is drawn once and runs every
    /// input of the batch, 32 inputs to a block product (a first Bayesian dense layer still draws each input's
    /// pre-activations from their exact moments, with the sample's noise per unit shared by the inputs). Each
    /// input's samples are exact draws of its predictive distribution, as with weight sampling, but the inputs of a
    /// batch share their networks, so their Monte-Carlo errors are correlated. An item's result depends on the
    /// seed and its input only: equal inputs get equal results. Fixed sample counts only.
    SharedWeights,
}
