//! The JNI entry points behind `io.bnnedge.NativeBridge` (`android/java/src/main/java/io/bnnedge/`).
//!
//! Each runs inside `EnvUnowned::with_env`, which catches panics, and resolves with [`ThrowTyped`], which turns
//! a [`BindingError`] into the Java exception of its [`ErrorKind`]: `IOException` for a bad model,
//! `IllegalArgumentException` for a bad request, `IllegalStateException` for a closed handle, and
//! `RuntimeException` for a caught panic. A handle is the `long` value of a `*mut BnnModel`; 0 means closed.

use crate::handle::BnnModel;
use crate::packed::{pack_prediction, packed_len};
use crate::{conformal_interval, decide, BindingError, ErrorKind, NativeOptions};
use jni::errors::ErrorPolicy;
use jni::objects::{JByteArray, JClass, JFloatArray, JIntArray, JString};
use jni::strings::JNIString;
use jni::sys::{jfloat, jint, jlong};
use jni::{jni_str, Env, EnvUnowned};

/// Error policy: throw the Java exception that matches the error's kind, and return the type's default.
pub struct ThrowTyped;

impl ThrowTyped {
    fn throw(env: &mut Env<'_>, kind: ErrorKind, message: String) {
        if env.exception_check() {
            return; // a Java exception is already pending (from a failed JNI call): let it propagate
        }
        let class = match kind {
            ErrorKind::InvalidArgument => jni_str!("java/lang/IllegalArgumentException"),
            ErrorKind::Model => jni_str!("java/io/IOException"),
            ErrorKind::Closed => jni_str!("java/lang/IllegalStateException"),
            ErrorKind::Internal => jni_str!("java/lang/RuntimeException"),
        };
        // `throw_new` reports the exception it just threw as an error; the exception is what we want.
        let _ = env.throw_new(class, JNIString::new(message));
    }
}

impl<T: Default> ErrorPolicy<T, BindingError> for ThrowTyped {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut (),
        error: BindingError,
    ) -> jni::errors::Result<T> {
        Self::throw(env, error.kind(), error.to_string());
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut (),
        payload: Box<dyn std::any::Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        let error = BindingError::from_panic(payload);
        Self::throw(env, error.kind(), error.to_string());
        Ok(T::default())
    }
}

fn handle_ref<'a>(handle: jlong) -> Result<&'a BnnModel, BindingError> {
    // SAFETY: the Java wrapper passes 0 or a handle from `loadBytes`/`loadPath`, and holds a read lock while any
    // call uses it, which `free` (under the write lock) waits for; so a non-zero handle is live here.
    unsafe { BnnModel::borrow(handle as *const BnnModel) }
}

/// The values of a Java `float[]` (`what` names it when it is null).
fn read_floats(env: &mut Env<'_>, array: &JFloatArray<'_>, what: &str) -> Result<Vec<f32>, BindingError> {
    if array.is_null() {
        return Err(BindingError::InvalidArgument(format!("{what} are null")));
    }
    let mut values = vec![0.0f32; array.len(env)?];
    array.get_region(env, 0, &mut values)?;
    Ok(values)
}

/// A new Java `float[]` holding `values`.
fn float_array<'local>(env: &mut Env<'local>, values: &[f32]) -> Result<JFloatArray<'local>, BindingError> {
    let array = JFloatArray::new(env, values.len())?;
    array.set_region(env, 0, values)?;
    Ok(array)
}

/// `static native long loadBytes(byte[] bytes) throws IOException`
#[no_mangle]
pub extern "system" fn Java_io_bnnedge_NativeBridge_loadBytes<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    bytes: JByteArray<'local>,
) -> jlong {
    env.with_env(|env| -> Result<jlong, BindingError> {
        if bytes.is_null() {
            return Err(BindingError::InvalidArgument("model bytes are null".into()));
        }
        let bytes = env.convert_byte_array(&bytes)?;
        Ok(BnnModel::from_bytes(&bytes)?.into_raw() as jlong)
    })
    .resolve::<ThrowTyped>()
}

/// `static native long loadPath(String path) throws IOException`
#[no_mangle]
pub extern "system" fn Java_io_bnnedge_NativeBridge_loadPath<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    path: JString<'local>,
) -> jlong {
    env.with_env(|env| -> Result<jlong, BindingError> {
        if path.is_null() {
            return Err(BindingError::InvalidArgument("model path is null".into()));
        }
        let path = path.try_to_string(env)?;
        Ok(BnnModel::from_path(&path)?.into_raw() as jlong)
    })
    .resolve::<ThrowTyped>()
}

/// `static native void free(long handle)`
#[no_mangle]
pub extern "system" fn Java_io_bnnedge_NativeBridge_free<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) {
    env.with_env(|_| -> Result<(), BindingError> {
        // SAFETY: the wrapper calls `free` once, under its write lock, after which the handle is 0 in Java.
        unsafe { BnnModel::release(handle as *mut BnnModel) };
        Ok(())
    })
    .resolve::<ThrowTyped>()
}

/// `static native int[] describe(long handle)`: `{inputDim, task (0 classification, 1 regression), outputDim,
/// recordLength, calibrated (0 or 1), channels, height, width}` where `recordLength` is the length of one packed
/// prediction (see `packed.rs`) and the last three are the input image's shape (`inputDim, 1, 1` for a flat
/// input).
#[no_mangle]
pub extern "system" fn Java_io_bnnedge_NativeBridge_describe<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) -> JIntArray<'local> {
    env.with_env(|env| -> Result<JIntArray<'local>, BindingError> {
        let handle = handle_ref(handle)?;
        let model = handle.model();
        let int =
            |n: usize| jint::try_from(n).map_err(|_| BindingError::InvalidArgument(format!("dimension {n} too large")));
        let [c, h, w] = match model.input_shape() {
            bnn_runtime::Shape::Image(image) => image,
            bnn_runtime::Shape::Flat(n) => [n, 1, 1],
        };
        let values = [
            int(model.input_dim())?,
            handle.task_code(),
            int(handle.output_dim())?,
            int(packed_len(model.task()))?,
            model.calibration().is_some() as jint,
            int(c)?,
            int(h)?,
            int(w)?,
        ];
        let array = JIntArray::new(env, values.len())?;
        array.set_region(env, 0, &values)?;
        Ok(array)
    })
    .resolve::<ThrowTyped>()
}

/// `static native float[] predict(long handle, float[] inputs, long seed, int samples, int adaptiveMax,
/// float tolerance, int sampler, float intervalLevel)`: `inputs` holds one or more inputs back to back (item `i`
/// uses seed `seed + i`); the result is their packed records back to back.
#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub extern "system" fn Java_io_bnnedge_NativeBridge_predict<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    inputs: JFloatArray<'local>,
    seed: jlong,
    samples: jint,
    adaptive_max: jint,
    tolerance: jfloat,
    sampler: jint,
    interval_level: jfloat,
) -> JFloatArray<'local> {
    env.with_env(|env| -> Result<JFloatArray<'local>, BindingError> {
        let handle = handle_ref(handle)?;
        let model = handle.model();
        let values = read_floats(env, &inputs, "inputs")?;
        let options = NativeOptions {
            samples: samples.into(),
            adaptive_max: adaptive_max.into(),
            tolerance,
            seed: seed as u64,
            sampler,
            interval_level,
        }
        .to_predict_options()?;
        let predictions = handle.with_predictor(|p| p.predict_batch(&values, &options))?;
        let mut packed = Vec::with_capacity(predictions.len() * packed_len(model.task()));
        for prediction in &predictions {
            pack_prediction(prediction, &mut packed);
        }
        float_array(env, &packed)
    })
    .resolve::<ThrowTyped>()
}

/// `static native float[] decide(long handle, float[] probabilities, float level)`: a calibrated classifier's
/// decision, packed as `{abstain (0 or 1), confidence, setSize, set_0 .. set_{setSize-1}, calibrated_0 ..
/// calibrated_{classes-1}}` (class indices are exact in f32).
#[no_mangle]
pub extern "system" fn Java_io_bnnedge_NativeBridge_decide<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    probabilities: JFloatArray<'local>,
    level: jfloat,
) -> JFloatArray<'local> {
    env.with_env(|env| -> Result<JFloatArray<'local>, BindingError> {
        let handle = handle_ref(handle)?;
        let d = decide(handle, &read_floats(env, &probabilities, "probabilities")?, level)?;
        let mut packed = Vec::with_capacity(3 + d.set.len() + d.calibrated.len());
        packed.extend([d.abstain as u8 as f32, d.confidence, d.set.len() as f32]);
        packed.extend(d.set.iter().map(|k| *k as f32));
        packed.extend_from_slice(&d.calibrated);
        float_array(env, &packed)
    })
    .resolve::<ThrowTyped>()
}

/// `static native float[] conformalInterval(long handle, float[] mean, float[] totalVariance, float level)`: a
/// calibrated regression model's conformal interval, packed as `{lower_0 .. lower_{k-1}, upper_0 .. upper_{k-1}}`.
#[no_mangle]
pub extern "system" fn Java_io_bnnedge_NativeBridge_conformalInterval<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    mean: JFloatArray<'local>,
    total_variance: JFloatArray<'local>,
    level: jfloat,
) -> JFloatArray<'local> {
    env.with_env(|env| -> Result<JFloatArray<'local>, BindingError> {
        let handle = handle_ref(handle)?;
        let mean = read_floats(env, &mean, "means")?;
        let total_variance = read_floats(env, &total_variance, "variances")?;
        let (lower, upper) = conformal_interval(handle, &mean, &total_variance, level)?;
        float_array(env, &[lower, upper].concat())
    })
    .resolve::<ThrowTyped>()
}
