//! What the network's outputs mean: classification logits or regression outputs with a noise model.

use crate::prelude::*;
use serde::{Deserialize, Serialize};

/// Smallest predicted standard deviation of a heteroscedastic head: `scale = softplus(raw) + MIN_SCALE`.
pub const HETEROSCEDASTIC_MIN_SCALE: f32 = 1e-6;

/// The prediction task, which fixes how the last layer is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// The last layer gives `classes` logits; probabilities are their softmax.
    Classification {
        classes: usize,
        /// Optional human-readable class names, one per class when present.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        labels: Vec<String>,
    },
    /// The last layer gives `outputs` means (and, if heteroscedastic, `outputs` raw scales after them).
    Regression { outputs: usize, noise: NoiseModel },
}

/// The likelihood's observation noise for regression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoiseModel {
    /// One fixed noise standard deviation for every input.
    Homoscedastic { sigma: f32 },
    /// The network predicts the noise: output `outputs + k` is a raw scale for output `k`, and the standard
    /// deviation is `softplus(raw) + HETEROSCEDASTIC_MIN_SCALE`.
    Heteroscedastic,
}

impl Task {
    /// How many values the last layer must produce.
    pub fn head_width(&self) -> usize {
        match self {
            Task::Classification { classes, .. } => *classes,
            Task::Regression { outputs, noise: NoiseModel::Homoscedastic { .. } } => *outputs,
            Task::Regression { outputs, noise: NoiseModel::Heteroscedastic } => 2 * outputs,
        }
    }

    /// Checks the task's own fields.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Task::Classification { classes, labels } => {
                if *classes < 2 {
                    return Err(format!("classification needs at least 2 classes, found {classes}"));
                }
                if !labels.is_empty() && labels.len() != *classes {
                    return Err(format!("{} labels for {classes} classes", labels.len()));
                }
            }
            Task::Regression { outputs, noise } => {
                if *outputs == 0 {
                    return Err("regression needs at least one output".into());
                }
                if let NoiseModel::Homoscedastic { sigma } = noise {
                    if !(sigma.is_finite() && *sigma > 0.0) {
                        return Err(format!("homoscedastic noise sigma must be finite and > 0, found {sigma}"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The heteroscedastic standard deviation for a raw network output.
pub fn heteroscedastic_scale(raw: f32) -> f32 {
    softplus(raw) + HETEROSCEDASTIC_MIN_SCALE
}

/// `ln(1 + e^x)`, computed without overflow.
pub fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        crate::math::ln_1pf(crate::math::expf(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_width_follows_the_noise_model() {
        let c = Task::Classification { classes: 10, labels: vec![] };
        let homo = Task::Regression { outputs: 3, noise: NoiseModel::Homoscedastic { sigma: 0.1 } };
        let hetero = Task::Regression { outputs: 3, noise: NoiseModel::Heteroscedastic };
        assert_eq!((c.head_width(), homo.head_width(), hetero.head_width()), (10, 3, 6));
    }

    #[test]
    fn softplus_is_log_one_plus_exp_and_never_overflows() {
        for x in [-30.0f32, -2.0, 0.0, 1.5, 19.0] {
            assert!((softplus(x) - (1.0 + (x as f64).exp()).ln() as f32).abs() < 1e-6);
        }
        assert_eq!(softplus(1000.0), 1000.0);
    }
}
