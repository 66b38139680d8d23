//! [`decide`]: a calibrated classifier's decision on the probabilities a host passes back, and
//! [`conformal_interval`]: a calibrated regression model's interval around the mean and total variance it passes
//! back — checked, then the runtime's [`Calibration`](bnn_runtime::Calibration). Shared by the C ABI
//! (`bnn_decide`, `bnn_conformal_interval`) and JNI (`NativeBridge.decide`, `NativeBridge.conformalInterval`).

use crate::handle::BnnModel;
use crate::BindingError;
use bnn_runtime::Decision;

/// The model's calibration, or the error that says it has none.
fn calibration(handle: &BnnModel) -> Result<&bnn_runtime::Calibration, BindingError> {
    handle.model().calibration().ok_or_else(|| {
        BindingError::InvalidArgument("the model is not calibrated (calibrate it with `bnn calibrate`)".into())
    })
}

/// The message for a level the calibration does not store.
fn not_stored(level: f32, stored: &[bnn_runtime::ConformalLevel]) -> BindingError {
    let stored: Vec<String> = stored.iter().map(|s| s.level.to_string()).collect();
    BindingError::InvalidArgument(format!("level {level} is not stored; the model stores [{}]", stored.join(", ")))
}

/// The conformal interval `(lower, upper)` at `level` of a regression prediction's `mean` and `total_variance`.
pub fn conformal_interval(
    handle: &BnnModel,
    mean: &[f32],
    total_variance: &[f32],
    level: f32,
) -> Result<(Vec<f32>, Vec<f32>), BindingError> {
    let calibration = calibration(handle)?;
    let outputs = handle.output_dim();
    if mean.len() != outputs || total_variance.len() != outputs {
        return Err(BindingError::InvalidArgument(format!(
            "{} means and {} variances given, the model has {outputs} outputs",
            mean.len(),
            total_variance.len()
        )));
    }
    if let Some(v) = mean.iter().chain(total_variance).find(|v| !v.is_finite()) {
        return Err(BindingError::InvalidArgument(format!("means and variances must be finite, found {v}")));
    }
    calibration.interval(mean, total_variance, level).ok_or_else(|| not_stored(level, &calibration.intervals))
}

/// Decides on `probabilities` (a classification's Monte-Carlo mean probabilities) at conformal `level`.
pub fn decide(handle: &BnnModel, probabilities: &[f32], level: f32) -> Result<Decision, BindingError> {
    let calibration = calibration(handle)?;
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
    calibration.decide(probabilities, level).ok_or_else(|| not_stored(level, &calibration.sets))
}
