//! One S = 32 prediction of a model's input repeated, for `perf record` and for A/B timing of two builds run
//! alternately (benches/README.md, session 19): prints the mean wall time per prediction. With `BATCH`, each
//! repetition is one `predict_batch` of that many inputs on one thread. The inputs are the first MNIST test
//! images when `BNN_MNIST_DIR` names the MNIST directory (and the model reads 784 values), else copies of the
//! synthetic input. `SAMPLER` names the sampler (`local-reparam` unless given; `shared-weights` for a batch whose
//! inputs share each sample's network). With `THREADS`, each repetition is one batch of a `ParallelPredictor` on
//! that many threads, kept from one repetition to the next (what `benches/onnx/compare_onnxruntime.py` times).
//! Every repetition uses the default seed, as an app that sets none does; with `BNN_NEW_SEED_EACH_CALL` set,
//! repetition `r` uses seed `r` (a predictor then cannot replay its last prediction's noise). With `BNN_C_ABI` set,
//! each single prediction is one `bnn_classify` call of the C ABI (a 10-class model), as a C, iOS or Android host
//! makes it.
//!
//! cargo run --release -p bnn-benches --example repeat_prediction -- MODEL.safetensors [REPETITIONS [BATCH [SAMPLER
//! [THREADS]]]]

use bnn_android::c_api::{self, BnnClassification, BnnModel, BnnOptions};
use bnn_runtime::{Model, ParallelPredictor, PredictOptions, Predictor, SampleCount, Sampler};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: repeat_prediction MODEL.safetensors [REPETITIONS [BATCH [SAMPLER [THREADS]]]]";
    let path = args.next().ok_or(usage)?;
    let repetitions: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000).max(1);
    let batch: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1).max(1);
    let sampler: Sampler = args.next().map(|s| s.parse()).transpose()?.unwrap_or_default();
    let threads: Option<usize> = args.next().map(|s| s.parse()).transpose()?;
    let model = Model::load(&path)?;
    let d = model.input_dim();
    let inputs = match (batch, std::env::var_os("BNN_MNIST_DIR")) {
        (_, Some(dir)) if d == 784 => bnn_trainer::data::load_mnist_test(&PathBuf::from(dir), Some(batch))?.inputs,
        _ => (0..batch).flat_map(|_| bnn_benches::input(d)).collect(),
    };
    let new_seeds = std::env::var_os("BNN_NEW_SEED_EACH_CALL").is_some();
    let c_handle = match std::env::var_os("BNN_C_ABI") {
        Some(_) if batch == 1 && threads.is_none() => Some(load_through_c(&std::fs::read(&path)?)?),
        Some(_) => return Err("BNN_C_ABI times single predictions on one thread only".into()),
        None => None,
    };
    let mut predictor = Predictor::new(&model);
    let mut parallel = threads.map(|threads| ParallelPredictor::new(&model, threads));
    let start = std::time::Instant::now();
    for r in 0..repetitions {
        let options = PredictOptions::default().samples(32).sampler(sampler);
        let options = if new_seeds { options.seed(r as u64) } else { options };
        if let Some(parallel) = parallel.as_mut() {
            std::hint::black_box(parallel.predict_batch(&inputs, &options)?);
        } else if let Some(handle) = c_handle {
            classify_through_c(handle, &inputs, &options)?;
        } else if batch == 1 {
            std::hint::black_box(predictor.predict(&inputs, &options)?);
        } else {
            std::hint::black_box(predictor.predict_batch(&inputs, &options)?);
        }
    }
    let per_prediction = start.elapsed().as_secs_f64() * 1e6 / (repetitions * batch) as f64;
    println!("{per_prediction:.1} µs per prediction");
    // SAFETY: the handle came from `bnn_model_load_bytes` and no call uses it any more.
    c_handle.into_iter().for_each(|handle| unsafe { c_api::bnn_model_free(handle) });
    Ok(())
}

/// A model handle of the C ABI, as a C or iOS host loads one.
fn load_through_c(bytes: &[u8]) -> Result<*mut BnnModel, Box<dyn std::error::Error>> {
    // SAFETY: `bytes` is valid for its length; the bytes are copied.
    let handle = unsafe { c_api::bnn_model_load_bytes(bytes.as_ptr(), bytes.len()) };
    if handle.is_null() {
        return Err("bnn_model_load_bytes failed".into());
    }
    Ok(handle)
}

/// One `bnn_classify` call with `options`' seed and sample count.
fn classify_through_c(handle: *mut BnnModel, input: &[f32], options: &PredictOptions) -> Result<(), String> {
    let SampleCount::Fixed(samples) = options.samples else { return Err("fixed sample counts only".into()) };
    let c_options = BnnOptions { seed: options.seed, samples: samples as u32, ..c_api::bnn_options_default() };
    let (mut probabilities, mut out) = ([0.0f32; 10], BnnClassification::default());
    // SAFETY: a live handle, `input` and `probabilities` valid for their lengths, `out` writable.
    let status = unsafe {
        c_api::bnn_classify(handle, input.as_ptr(), input.len(), &c_options, probabilities.as_mut_ptr(), 10, &mut out)
    };
    std::hint::black_box((probabilities, out));
    (status == 0).then_some(()).ok_or_else(|| format!("bnn_classify failed with status {status}"))
}
