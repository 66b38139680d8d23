//! Input normalisation stored with the model: `(x - mean) / std` per feature, fitted on training data.

use crate::prelude::*;
use serde::{Deserialize, Serialize};

/// Per-feature standardisation applied to every input before the first layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// Writes `(x - mean) / std` into `out`.
    pub(crate) fn apply(&self, x: &[f32], out: &mut [f32]) {
        for (((o, v), m), s) in out.iter_mut().zip(x).zip(&self.mean).zip(&self.std) {
            *o = (v - m) / s;
        }
    }

    pub(crate) fn validate(&self, input_dim: usize) -> Result<(), String> {
        if self.mean.len() != input_dim || self.std.len() != input_dim {
            return Err(format!(
                "mean has {} and std has {} entries, the model has {input_dim} inputs",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some((i, m)) = self.mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(format!("mean[{i}] = {m} is not finite"));
        }
        if let Some((i, s)) = self.std.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
            return Err(format!("std[{i}] = {s} must be finite and > 0"));
        }
        Ok(())
    }
}
