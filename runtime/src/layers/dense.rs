//! The deterministic dense layer: point-estimate weights, as in a standard or MC-dropout network.

use super::layout::{CsrPattern, WeightLayout};
use crate::kernels::{Isa, Lanes};
use crate::prelude::*;

/// A fully connected layer with fixed weights `[out_features, in_features]`, stored in `layout`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    in_features: usize,
    out_features: usize,
    layout: WeightLayout,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    /// A dense layer from its row-major weights and biases. Lengths and values are checked when the layer
    /// joins a [`Model`](crate::Model).
    pub fn new(in_features: usize, out_features: usize, weight: Vec<f32>, bias: Vec<f32>) -> Self {
        let layout = WeightLayout::Dense { rows: out_features, cols: in_features };
        Self::with_layout(in_features, out_features, layout, weight, bias)
    }

    /// A layer whose weight values are stored in `layout`.
    pub fn with_layout(
        in_features: usize,
        out_features: usize,
        layout: WeightLayout,
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Self {
        Self { in_features, out_features, layout, weight, bias }
    }

    /// The same layer with every zero weight left out.
    pub fn sparsified(&self) -> Self {
        let w = self.dense_weight();
        let pattern = CsrPattern::from_mask(self.out_features, self.in_features, |k| w[k] != 0.0);
        let values = w.iter().copied().filter(|v| *v != 0.0).collect();
        let layout = WeightLayout::Csr { cols: self.in_features, pattern };
        Self::with_layout(self.in_features, self.out_features, layout, values, self.bias.clone())
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }
    pub fn out_features(&self) -> usize {
        self.out_features
    }
    pub fn layout(&self) -> &WeightLayout {
        &self.layout
    }
    /// The stored weights (row-major `[out, in]` when dense).
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }
    /// All weights as a dense row-major matrix.
    pub fn dense_weight(&self) -> Vec<f32> {
        self.layout.to_dense(&self.weight)
    }
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// `y = W h + b` for a block of `s` samples (`h` is `[in × s]`, `y` is `[out × s]`) on `isa`; `live` (`in`)
    /// is scratch.
    pub(crate) fn forward_block(&self, isa: Isa, h: &[f32], s: usize, live: &mut [u32], y: &mut [f32]) {
        let h = &h[..self.in_features * s];
        self.layout.affine_block(isa, (&self.weight, &self.bias), (h, s), live, y);
    }

    /// `y = W x + b`.
    pub(crate) fn forward(&self, x: &[f32], y: &mut [f32]) {
        self.layout.affine(&self.weight, &self.bias, x, y);
    }

    /// [`Self::forward`] of [`INPUT_LANES`](crate::kernels::INPUT_LANES) inputs side by side (`xt[c][i]` is value
    /// `c` of input `i`), with its bits in every lane; `false`, leaving `y` alone, for a sparse layer.
    #[inline(always)]
    pub(crate) fn forward_lanes(&self, xt: &[Lanes], y: &mut [Lanes]) -> bool {
        self.layout.affine_lanes(&self.weight, &self.bias, xt, &mut y[..self.out_features])
    }
}
