//! [`decide`]: a calibrated classifier's decision on the probabilities a host passes back — checked, then the
//! runtime's [`Calibration::decide`](bnn_runtime::Calibration::decide). Shared by the C ABI (`bnn_decide`) and
//! JNI (`NativeBridge.decide`).

use crate::handle::BnnModel;
use crate::BindingError;
use bnn_runtime::Decision;

/// Decides on `probabilities` (a classification's Monte-Carlo mean probabilities) at conformal `level`.
pub fn decide(handle: &BnnModel, probabilities: &[f32], level: f32) -> Result<Decision, BindingError> {
    let calibration = handle.model().calibration().ok_or_else(|| {
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
    calibration.decide(probabilities, level).ok_or_else(|| {
        let stored: Vec<String> = calibration.sets.iter().map(|s| s.level.to_string()).collect();
        BindingError::InvalidArgument(format!("level {level} is not stored; the model stores [{}]", stored.join(", ")))
    })
}
