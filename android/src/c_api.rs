//! The C ABI (`include/bnn.h`): an opaque [`BnnModel`] handle, loading from bytes or a path, classification and
//! regression predictions into caller-owned buffers, and a per-thread last-error message.
//!
//! Every function catches panics; a failing call returns a non-zero status (or a null handle) and leaves a
//! message for [`bnn_last_error`]. Pointers to inputs and outputs are only read or written within the call.

use crate::options::NativeOptions;
use crate::{conformal_interval, decide, BindingError, ErrorKind, BNN_SAMPLER_LOCAL_REPARAM};
use bnn_runtime::{Prediction, Shape};
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use crate::handle::BnnModel;

/// The call succeeded.
pub const BNN_OK: i32 = 0;
/// An argument was invalid: null buffer, wrong length, non-finite input, bad options, wrong task.
pub const BNN_ERROR_INVALID_ARGUMENT: i32 = 1;
/// The model bytes or file could not be read or are not a valid model.
pub const BNN_ERROR_MODEL: i32 = 2;
/// The model handle is null.
pub const BNN_ERROR_NULL_HANDLE: i32 = 3;
/// A bug: a panic was caught at the boundary. The handle stays usable.
pub const BNN_ERROR_INTERNAL: i32 = 4;

/// `bnn_model_task` for a classifier.
pub const BNN_TASK_CLASSIFICATION: i32 = 0;
/// `bnn_model_task` for a regression model.
pub const BNN_TASK_REGRESSION: i32 = 1;

/// Options of one prediction. Start from `bnn_options_default()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BnnOptions {
    /// Seed of the random stream: the same seed gives bit-identical results.
    pub seed: u64,
    /// Number of Monte-Carlo samples (when `adaptive_max` is 0), 1 to 2^24.
    pub samples: u32,
    /// When > 0, sample adaptively up to this many until every predictive-mean entry has a standard error of at
    /// most `tolerance`.
    pub adaptive_max: u32,
    pub tolerance: f32,
    /// One of `BNN_SAMPLER_LOCAL_REPARAM` (default), `BNN_SAMPLER_WEIGHT_SAMPLING`, `BNN_SAMPLER_MEAN`,
    /// `BNN_SAMPLER_SHARED_WEIGHTS` (a batch's inputs share each sample's network; fixed sample counts only).
    pub sampler: i32,
    /// Probability mass of regression intervals, in (0, 1); default 0.95.
    pub interval_level: f32,
}

/// The scalar results of a classification; the class probabilities go to the caller's buffer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct BnnClassification {
    /// Index of the most probable class.
    pub class_index: u32,
    /// Entropy of the mean probabilities: total uncertainty, in nats.
    pub predictive_entropy: f32,
    /// Mean entropy of the sampled probabilities: the aleatoric part.
    pub expected_entropy: f32,
    /// Predictive minus expected entropy: the epistemic part (mutual information).
    pub mutual_information: f32,
    pub samples_used: u32,
}

/// The scalars of a calibrated classifier's decision (`bnn_decide`); the set and the calibrated probabilities go
/// to the caller's buffers.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct BnnDecision {
    /// Classes written to `set`, most probable first; 0: no class is plausible at this level.
    pub set_size: u32,
    /// 1: abstain (the largest calibrated probability is below the model's threshold); 0: answer.
    pub abstain: i32,
    /// The largest calibrated probability.
    pub confidence: f32,
}

/// Caller-owned output buffers of a regression, each `outputs` floats long, and the scalars the call fills in.
#[repr(C)]
#[derive(Debug)]
pub struct BnnRegression {
    pub mean: *mut f32,
    pub aleatoric_variance: *mut f32,
    pub epistemic_variance: *mut f32,
    pub total_variance: *mut f32,
    pub lower: *mut f32,
    pub upper: *mut f32,
    /// Length of every buffer above; must equal `bnn_model_output_dim`.
    pub outputs: usize,
    /// Filled in: the interval's probability mass.
    pub interval_level: f32,
    /// Filled in.
    pub samples_used: u32,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(error: &BindingError) {
    let message = CString::new(error.to_string().replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(message));
}

/// Runs `f` with panics caught; on failure records the message and returns what `on_error` makes of the error.
fn guarded<T>(on_error: impl FnOnce(&BindingError) -> T, f: impl FnOnce() -> Result<T, BindingError>) -> T {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(BindingError::from_panic(payload)));
    outcome.unwrap_or_else(|error| {
        set_last_error(&error);
        on_error(&error)
    })
}

/// [`guarded`] for calls that return a status code.
fn status(f: impl FnOnce() -> Result<(), BindingError>) -> i32 {
    let code = |error: &BindingError| match error.kind() {
        ErrorKind::InvalidArgument => BNN_ERROR_INVALID_ARGUMENT,
        ErrorKind::Model => BNN_ERROR_MODEL,
        ErrorKind::Closed => BNN_ERROR_NULL_HANDLE,
        ErrorKind::Internal => BNN_ERROR_INTERNAL,
    };
    guarded(code, || f().map(|()| BNN_OK))
}

/// A slice from a C pointer and length; null is only allowed for length 0.
///
/// # Safety
/// A non-null `ptr` points to `len` readable values that outlive the call.
unsafe fn input_slice<'a, T>(ptr: *const T, len: usize, name: &str) -> Result<&'a [T], BindingError> {
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(BindingError::InvalidArgument(format!("`{name}` is null"))) };
    }
    // SAFETY: non-null, and the caller promises `len` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A mutable slice from a C pointer, which must not be null.
///
/// # Safety
/// `ptr` points to `len` writable floats, not aliased by any other argument, that outlive the call.
unsafe fn output_slice<'a>(ptr: *mut f32, len: usize, name: &str) -> Result<&'a mut [f32], BindingError> {
    if ptr.is_null() {
        return Err(BindingError::InvalidArgument(format!("output buffer `{name}` is null")));
    }
    // SAFETY: non-null, and the caller promises `len` writable, unaliased elements.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

fn native_options(options: Option<&BnnOptions>) -> NativeOptions {
    let o = options.copied().unwrap_or_else(|| bnn_options_default());
    NativeOptions {
        samples: o.samples.into(),
        adaptive_max: o.adaptive_max.into(),
        tolerance: o.tolerance,
        seed: o.seed,
        sampler: o.sampler,
        interval_level: o.interval_level,
    }
}

/// 32 local-reparameterization samples, seed 0, fixed count, 95% intervals.
#[no_mangle]
pub extern "C" fn bnn_options_default() -> BnnOptions {
    BnnOptions {
        seed: 0,
        samples: 32,
        adaptive_max: 0,
        tolerance: 0.0,
        sampler: BNN_SAMPLER_LOCAL_REPARAM,
        interval_level: 0.95,
    }
}

/// Loads a model from `len` bytes (e.g. a bundled asset). Returns null on failure (see `bnn_last_error`).
/// The bytes are copied; the caller may free them after the call. Free the model with `bnn_model_free`.
///
/// # Safety
/// `data` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn bnn_model_load_bytes(data: *const u8, len: usize) -> *mut BnnModel {
    // SAFETY: forwarded caller contract.
    guarded(
        |_| std::ptr::null_mut(),
        || Ok(BnnModel::from_bytes(unsafe { input_slice(data, len, "data") }?)?.into_raw()),
    )
}

/// Loads a model from a file path (UTF-8, NUL-terminated). Returns null on failure (see `bnn_last_error`).
///
/// # Safety
/// `path` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bnn_model_load_path(path: *const c_char) -> *mut BnnModel {
    guarded(
        |_| std::ptr::null_mut(),
        || {
            if path.is_null() {
                return Err(BindingError::InvalidArgument("`path` is null".into()));
            }
            // SAFETY: non-null and NUL-terminated by the caller's contract.
            let path = unsafe { CStr::from_ptr(path) }
                .to_str()
                .map_err(|_| BindingError::InvalidArgument("`path` is not UTF-8".into()))?;
            Ok(BnnModel::from_path(path)?.into_raw())
        },
    )
}

/// Frees a model; null is ignored. No other call may use the handle during or after this one.
///
/// # Safety
/// `model` is null or a live handle from a `bnn_model_load_*` function, freed only once.
#[no_mangle]
pub unsafe extern "C" fn bnn_model_free(model: *mut BnnModel) {
    // SAFETY: forwarded caller contract. Dropping a model cannot panic (plain vectors and strings).
    unsafe { BnnModel::release(model) }
}

/// Features one input must have; 0 for a null handle.
///
/// # Safety
/// `model` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn bnn_model_input_dim(model: *const BnnModel) -> usize {
    // SAFETY: forwarded caller contract.
    guarded(|_| 0, || Ok(unsafe { BnnModel::borrow(model) }?.model().input_dim()))
}

/// The shape of an image input: `channels`, `height` and `width` written to `shape[0..3]` (an image is passed
/// flat, in NCHW order, `bnn_model_input_dim` values). For a flat input `shape` gets `input_dim, 1, 1`. Returns
/// `BNN_OK`, or an error code (null handle or `shape`).
///
/// # Safety
/// `model` is null or a live handle; `shape` is null or holds 3 writable values.
#[no_mangle]
pub unsafe extern "C" fn bnn_model_input_shape(model: *const BnnModel, shape: *mut usize) -> i32 {
    status(|| {
        // SAFETY: `model` is null or a live handle (this function's contract).
        let handle = unsafe { BnnModel::borrow(model) }?;
        if shape.is_null() {
            return Err(BindingError::InvalidArgument("`shape` is null".into()));
        }
        let values = match handle.model().input_shape() {
            Shape::Image(image) => image,
            Shape::Flat(n) => [n, 1, 1],
        };
        // SAFETY: non-null (checked above) and holds 3 writable values (this function's contract).
        unsafe { std::slice::from_raw_parts_mut(shape, 3) }.copy_from_slice(&values);
        Ok(())
    })
}

/// Classes of a classifier, or outputs of a regression model; 0 for a null handle.
///
/// # Safety
/// `model` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn bnn_model_output_dim(model: *const BnnModel) -> usize {
    // SAFETY: forwarded caller contract.
    guarded(|_| 0, || Ok(unsafe { BnnModel::borrow(model) }?.output_dim()))
}

/// `BNN_TASK_CLASSIFICATION` or `BNN_TASK_REGRESSION`; -1 for a null handle.
///
/// # Safety
/// `model` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn bnn_model_task(model: *const BnnModel) -> i32 {
    // SAFETY: forwarded caller contract.
    guarded(|_| -1, || Ok(unsafe { BnnModel::borrow(model) }?.task_code()))
}

/// The model's output width, after checking that its task is `expected` (`wrong_task` is the error otherwise).
fn require_task(model: &BnnModel, expected: i32, wrong_task: &str) -> Result<usize, BindingError> {
    if model.task_code() != expected {
        return Err(BindingError::InvalidArgument(wrong_task.into()));
    }
    Ok(model.output_dim())
}

/// Classifies one input of `input_len` features. Writes `bnn_model_output_dim` class probabilities to
/// `probabilities` (of length `probabilities_len`) and the scalars to `out`. `options` may be null (defaults).
/// Safe to call from several threads at once on one handle.
///
/// # Safety
/// `model` is null or a live handle; the pointers are null or valid for their lengths; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn bnn_classify(
    model: *const BnnModel,
    input: *const f32,
    input_len: usize,
    options: *const BnnOptions,
    probabilities: *mut f32,
    probabilities_len: usize,
    out: *mut BnnClassification,
) -> i32 {
    status(|| {
        // SAFETY: `model` is null or a live handle (this function's contract).
        let handle = unsafe { BnnModel::borrow(model) }?;
        // SAFETY: `input` is null or valid for `input_len` values (this function's contract).
        let input = unsafe { input_slice(input, input_len, "input") }?;
        // SAFETY: `options` is null or points to a valid `BnnOptions` (this function's contract).
        let options = native_options(unsafe { options.as_ref() }).to_predict_options()?;
        let classes = require_task(handle, BNN_TASK_CLASSIFICATION, "bnn_classify called on a regression model")?;
        if probabilities_len != classes {
            return Err(BindingError::InvalidArgument(format!(
                "`probabilities` holds {probabilities_len} floats, the model has {classes} classes"
            )));
        }
        // SAFETY: `probabilities` holds `probabilities_len` writable floats that nothing else aliases (this function's
        // contract).
        let probabilities = unsafe { output_slice(probabilities, probabilities_len, "probabilities") }?;
        // SAFETY: `out` is null or writable (this function's contract).
        let out = unsafe { out.as_mut() }.ok_or_else(|| BindingError::InvalidArgument("`out` is null".into()))?;
        let Prediction::Classification(c) = handle.with_predictor(|p| p.predict(input, &options))? else {
            return Err(BindingError::Panic("a classifier returned a regression prediction".into()));
        };
        probabilities.copy_from_slice(&c.probabilities);
        *out = BnnClassification {
            class_index: c.class as u32,
            predictive_entropy: c.predictive_entropy,
            expected_entropy: c.expected_entropy,
            mutual_information: c.mutual_information,
            samples_used: c.samples_used as u32,
        };
        Ok(())
    })
}

/// 1 if the model carries a calibration (`bnn calibrate`: temperature, conformal levels, abstention), 0 if not,
/// -1 for a null handle.
///
/// # Safety
/// `model` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn bnn_model_is_calibrated(model: *const BnnModel) -> i32 {
    // SAFETY: forwarded caller contract.
    guarded(|_| -1, || Ok(unsafe { BnnModel::borrow(model) }?.model().calibration().is_some() as i32))
}

/// A calibrated classifier's decision on `probabilities` (the `classes` probabilities `bnn_classify` wrote):
/// the conformal prediction set at `level` (one of the levels the model stores) into `set` (room for
/// `set_capacity` class indices, at least `classes`), the calibrated probabilities into `calibrated` (may be
/// null; else `classes` floats), and the scalars into `out`. An uncalibrated model, a level it does not store
/// or a wrong length is `BNN_ERROR_INVALID_ARGUMENT`.
///
/// # Safety
/// `model` is null or a live handle; the pointers are null or valid for their lengths and do not overlap.
#[no_mangle]
pub unsafe extern "C" fn bnn_decide(
    model: *const BnnModel,
    probabilities: *const f32,
    classes: usize,
    level: f32,
    calibrated: *mut f32,
    set: *mut u32,
    set_capacity: usize,
    out: *mut BnnDecision,
) -> i32 {
    status(|| {
        // SAFETY: `model` is null or a live handle (this function's contract).
        let handle = unsafe { BnnModel::borrow(model) }?;
        // SAFETY: `probabilities` is null or valid for `classes` values (this function's contract).
        let probabilities = unsafe { input_slice(probabilities, classes, "probabilities") }?;
        if set.is_null() || set_capacity < classes {
            return Err(BindingError::InvalidArgument(format!(
                "`set` must have room for {classes} class indices (capacity {set_capacity})"
            )));
        }
        // SAFETY: `out` is null or writable (this function's contract).
        let out = unsafe { out.as_mut() }.ok_or_else(|| BindingError::InvalidArgument("`out` is null".into()))?;
        let decision = decide(handle, probabilities, level)?;
        if !calibrated.is_null() {
            // SAFETY: `calibrated` holds `classes` writable floats that nothing else aliases (this function's
            // contract).
            unsafe { output_slice(calibrated, classes, "calibrated") }?.copy_from_slice(&decision.calibrated);
        }
        // SAFETY: non-null (checked above) and valid for `set_capacity` >= `classes` >= set length elements.
        let set_out = unsafe { std::slice::from_raw_parts_mut(set, set_capacity) };
        for (slot, class) in set_out.iter_mut().zip(&decision.set) {
            *slot = *class as u32;
        }
        *out = BnnDecision {
            set_size: decision.set.len() as u32,
            abstain: decision.abstain as i32,
            confidence: decision.confidence,
        };
        Ok(())
    })
}

/// A calibrated regression model's conformal interval at `level` (one the model stores): from the `outputs`
/// means and total variances `bnn_regress` wrote, the bounds into `lower` and `upper` (`outputs` floats each).
/// An uncalibrated model, a level it does not store or a wrong length is `BNN_ERROR_INVALID_ARGUMENT`.
///
/// # Safety
/// `model` is null or a live handle; the pointers are null or valid for `outputs` floats and do not overlap.
#[no_mangle]
pub unsafe extern "C" fn bnn_conformal_interval(
    model: *const BnnModel,
    mean: *const f32,
    total_variance: *const f32,
    outputs: usize,
    level: f32,
    lower: *mut f32,
    upper: *mut f32,
) -> i32 {
    status(|| {
        // SAFETY: `model` is null or a live handle (this function's contract).
        let handle = unsafe { BnnModel::borrow(model) }?;
        // SAFETY: `mean` is null or valid for `outputs` values (this function's contract).
        let mean = unsafe { input_slice(mean, outputs, "mean") }?;
        // SAFETY: `total_variance` is null or valid for `outputs` values (this function's contract).
        let total_variance = unsafe { input_slice(total_variance, outputs, "total_variance") }?;
        let (l, u) = conformal_interval(handle, mean, total_variance, level)?;
        // SAFETY: `lower` holds `outputs` writable floats that nothing else aliases (this function's contract).
        unsafe { output_slice(lower, outputs, "lower") }?.copy_from_slice(&l);
        // SAFETY: `upper` holds `outputs` writable floats that nothing else aliases (this function's contract).
        unsafe { output_slice(upper, outputs, "upper") }?.copy_from_slice(&u);
        Ok(())
    })
}

/// Predicts one input of a regression model into the buffers of `out` (see `BnnRegression`). `options` may be
/// null (defaults). Safe to call from several threads at once on one handle.
///
/// # Safety
/// `model` is null or a live handle; `input` is null or valid for `input_len`; `out` is null or points to a
/// `BnnRegression` whose six buffers are each valid for `out->outputs` floats and do not overlap.
#[no_mangle]
pub unsafe extern "C" fn bnn_regress(
    model: *const BnnModel,
    input: *const f32,
    input_len: usize,
    options: *const BnnOptions,
    out: *mut BnnRegression,
) -> i32 {
    status(|| {
        // SAFETY: `model` is null or a live handle (this function's contract).
        let handle = unsafe { BnnModel::borrow(model) }?;
        // SAFETY: `input` is null or valid for `input_len` values (this function's contract).
        let input = unsafe { input_slice(input, input_len, "input") }?;
        // SAFETY: `options` is null or points to a valid `BnnOptions` (this function's contract).
        let options = native_options(unsafe { options.as_ref() }).to_predict_options()?;
        // SAFETY: `out` is null or writable (this function's contract).
        let out = unsafe { out.as_mut() }.ok_or_else(|| BindingError::InvalidArgument("`out` is null".into()))?;
        let outputs = require_task(handle, BNN_TASK_REGRESSION, "bnn_regress called on a classification model")?;
        if out.outputs != outputs {
            return Err(BindingError::InvalidArgument(format!(
                "`out->outputs` is {}, the model has {outputs} outputs",
                out.outputs
            )));
        }
        let buffers = [
            (out.mean, "mean"),
            (out.aleatoric_variance, "aleatoric_variance"),
            (out.epistemic_variance, "epistemic_variance"),
            (out.total_variance, "total_variance"),
            (out.lower, "lower"),
            (out.upper, "upper"),
        ];
        if let Some((_, name)) = buffers.iter().find(|(ptr, _)| ptr.is_null()) {
            return Err(BindingError::InvalidArgument(format!("output buffer `{name}` is null")));
        }
        let Prediction::Regression(r) = handle.with_predictor(|p| p.predict(input, &options))? else {
            return Err(BindingError::Panic("a regression model returned a classification".into()));
        };
        let values = [&r.mean, &r.aleatoric_variance, &r.epistemic_variance, &r.total_variance, &r.lower, &r.upper];
        for ((ptr, name), values) in buffers.into_iter().zip(values) {
            // SAFETY: each buffer of `out` holds `outputs` writable floats that nothing else aliases (this function's
            // contract).
            unsafe { output_slice(ptr, outputs, name) }?.copy_from_slice(values);
        }
        out.interval_level = r.interval_level;
        out.samples_used = r.samples_used as u32;
        Ok(())
    })
}

/// The message of the last failed call on this thread, or null if none failed yet. The pointer stays valid
/// until the next failing call on the same thread.
#[no_mangle]
pub extern "C" fn bnn_last_error() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ref().map_or(std::ptr::null(), |message| message.as_ptr()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_status_with_its_message() {
        let code = status(|| panic!("kernel bug"));
        assert_eq!(code, BNN_ERROR_INTERNAL);
        // SAFETY: bnn_last_error returns a live NUL-terminated string after a failure on this thread.
        let message = unsafe { CStr::from_ptr(bnn_last_error()) }.to_str().unwrap();
        assert!(message.contains("kernel bug"), "{message}");
    }

    #[test]
    fn null_handles_and_buffers_are_errors_not_crashes() {
        // SAFETY: null handles and buffers are part of the documented contract.
        unsafe {
            assert_eq!(bnn_model_input_dim(std::ptr::null()), 0);
            assert_eq!(bnn_model_task(std::ptr::null()), -1);
            let mut out = BnnClassification::default();
            let code = bnn_classify(
                std::ptr::null(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                std::ptr::null_mut(),
                0,
                &mut out,
            );
            assert_eq!(code, BNN_ERROR_NULL_HANDLE);
            assert!(bnn_model_load_bytes(std::ptr::null(), 3).is_null());
            assert!(bnn_model_load_path(std::ptr::null()).is_null());
            bnn_model_free(std::ptr::null_mut());
        }
    }
}
