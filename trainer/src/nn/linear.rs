//! The deterministic dense layer of point-estimate and MC-dropout networks.

use bnn_runtime::SeededRng;
use candle_core::{Device, Result, Tensor, Var};

/// `y = x W^T + b`, weights `[out, in]`.
pub struct Linear {
    pub(crate) weight: Var,
    pub(crate) bias: Var,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    /// Weights ~ N(0, (scale / sqrt(in))^2), biases 0.
    pub fn new(
        in_features: usize,
        out_features: usize,
        scale: f32,
        rng: &mut SeededRng,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            weight: Var::from_tensor(&initial_weights(in_features, out_features, scale, rng, device)?)?,
            bias: Var::from_tensor(&Tensor::zeros(out_features, candle_core::DType::F32, device)?)?,
            in_features,
            out_features,
        })
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.as_tensor().t()?)?.broadcast_add(self.bias.as_tensor())
    }

    /// `sum W^2` (biases are not penalised).
    pub fn squared_norm(&self) -> Result<Tensor> {
        self.weight.as_tensor().sqr()?.sum_all()
    }
}

/// An `[out, in]` weight matrix with entries ~ N(0, (scale / sqrt(in))^2), drawn from `rng`; shared by the
/// deterministic weights here and the Bayesian layer's means.
pub(crate) fn initial_weights(
    in_features: usize,
    out_features: usize,
    scale: f32,
    rng: &mut SeededRng,
    device: &Device,
) -> Result<Tensor> {
    let s = scale / (in_features as f32).sqrt();
    let w: Vec<f32> = (0..in_features * out_features).map(|_| rng.gaussian() * s).collect();
    Tensor::from_vec(w, (out_features, in_features), device)
}
