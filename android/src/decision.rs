//! [`Decision`]: what a calibrated classifier's probabilities mean for an app — the calibrated probabilities,
//! the conformal prediction set at a level the model stores, and whether to abstain. Shared by the C ABI
//! (`bnn_decide`) and JNI (`NativeBridge.decide`).

use crate::handle::BnnModel;
use crate::BindingError;
use bnn_runtime::{aps_set, confidence};

/// A decision on one classification.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The probabilities at the model's calibrated temperature.
    pub calibrated: Vec<f32>,
    /// The conformal set: class indices, most probable first (empty: no class is plausible at this level).
    pub set: Vec<usize>,
    /// The largest calibrated probability.
    pub confidence: f32,
    /// Below the model's abstention threshold (false when it stores none).
    pub abstain: bool,
}

/// Decides on `probabilities` (a classification's Monte-Carlo mean probabilities) at conformal `level`.
pub fn decide(handle: &BnnModel, probabilities: &[f32], level: f32) -> Result<Decision, BindingError> {
    let model = handle.model();
    let calibration = model.calibration().ok_or_else(|| {
        BindingError::InvalidArgument("the model is not calibrated (calibrate it with `bnn calibrate`)".into())
    })?;
    if probabilities.len() != handle.output_dim() {
        return Err(BindingError::InvalidArgument(format!(
            "{} probabilities given, the model has {} classes",
            probabilities.len(),
            handle.output_dim()
        )));
    }
    if let Some(p) = probabilities.iter().find(|p| !(p.is_finite() && **p >= 0.0)) {
        return Err(BindingError::InvalidArgument(format!("a probability must be finite and >= 0, found {p}")));
    }
    let threshold = calibration.threshold(level).ok_or_else(|| {
        let stored: Vec<String> = calibration.sets.iter().map(|s| s.level.to_string()).collect();
        BindingError::InvalidArgument(format!("level {level} is not stored; the model stores [{}]", stored.join(", ")))
    })?;
    let calibrated = calibration.calibrated(probabilities);
    let confidence = confidence(&calibrated);
    Ok(Decision {
        set: aps_set(&calibrated, threshold),
        confidence,
        abstain: calibration.abstain_below.is_some_and(|t| confidence < t),
        calibrated,
    })
}
