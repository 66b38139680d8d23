//! The layer kinds a model is made of, in the order the format lists them.

mod activation;
mod bayesian_dense;
mod conv;
mod dense;
mod dropout;
mod layout;
mod pool;
mod raw_zero;

pub use activation::Activation;
pub use bayesian_dense::BayesianDense;
pub(crate) use bayesian_dense::{sample_from_moments, BlockScratch};
pub use conv::{BayesianConv2d, Conv2d, ConvGeometry};
pub use dense::Dense;
pub use dropout::Dropout;
pub use layout::{CsrPattern, WeightLayout};
pub use pool::{Pool2d, PoolGeometry, PoolKind};
pub(crate) use raw_zero::{ExpansionScratch, RawZeroExpansion};

/// One step of the network.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// Weights with a Gaussian posterior.
    BayesianDense(BayesianDense),
    /// Point-estimate weights.
    Dense(Dense),
    /// MC dropout with rate p.
    Dropout(Dropout),
    /// An element-wise non-linearity.
    Activation(Activation),
    /// A 2-D convolution with point-estimate weights.
    Conv2d(Conv2d),
    /// A 2-D convolution whose kernel weights have a Gaussian posterior.
    BayesianConv2d(BayesianConv2d),
    /// Max or average pooling.
    Pool2d(Pool2d),
    /// An image read as a flat vector (NCHW order): the step from convolutions to dense layers.
    Flatten,
}

impl Layer {
    /// `(in_features, out_features)` for layers with weights; `None` for size-preserving layers.
    pub fn dense_sizes(&self) -> Option<(usize, usize)> {
        match self {
            Layer::BayesianDense(l) => Some((l.in_features(), l.out_features())),
            Layer::Dense(l) => Some((l.in_features(), l.out_features())),
            _ => None,
        }
    }

    /// The geometry of a convolution; `None` for other layers.
    pub fn conv_geometry(&self) -> Option<&ConvGeometry> {
        match self {
            Layer::Conv2d(l) => Some(l.geometry()),
            Layer::BayesianConv2d(l) => Some(l.geometry()),
            _ => None,
        }
    }

    /// Whether the layer draws random numbers when sampled.
    pub fn is_stochastic(&self) -> bool {
        matches!(self, Layer::BayesianDense(_) | Layer::BayesianConv2d(_) | Layer::Dropout(_))
    }
}

impl Layer {
    /// The same layer with pruned weights left out of storage (see [`BayesianDense::sparsified`]).
    pub fn sparsified(&self) -> Layer {
        match self {
            Layer::BayesianDense(l) => Layer::BayesianDense(l.sparsified()),
            Layer::Dense(l) => Layer::Dense(l.sparsified()),
            other => other.clone(),
        }
    }
}
