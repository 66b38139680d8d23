//! The deterministic dense layer: point-estimate weights, as in a standard or MC-dropout network.

use crate::linalg::affine;

/// A fully connected layer with fixed weights, row-major `[out_features, in_features]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    in_features: usize,
    out_features: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    /// A layer from its weights and biases. Lengths and values are checked when the layer joins a
    /// [`Model`](crate::Model).
    pub fn new(in_features: usize, out_features: usize, weight: Vec<f32>, bias: Vec<f32>) -> Self {
        Self { in_features, out_features, weight, bias }
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }
    pub fn out_features(&self) -> usize {
        self.out_features
    }
    /// Row-major `[out, in]`.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// `y = W x + b`.
    pub(crate) fn forward(&self, x: &[f32], y: &mut [f32]) {
        affine(&self.weight, &self.bias, x, y);
    }
}
