//! One S = 32 prediction of a model's input repeated, for `perf record` and for A/B timing of two builds run
//! alternately (benches/README.md, session 19): prints the mean wall time per prediction. With `BATCH`, each
//! repetition is one `predict_batch` of that many inputs on one thread. The inputs are the first MNIST test
//! images when `BNN_MNIST_DIR` names the MNIST directory (and the model reads 784 values), else copies of the
//! synthetic input. `SAMPLER` names the sampler (`local-reparam` unless given; `shared-weights` for a batch whose
//! inputs share each sample's network). With `THREADS`, each repetition is one `predict_batch_parallel` on that many
//! threads (what `benches/onnx/compare_onnxruntime.py` times). Every repetition uses the default seed, as an app
//! that sets none does; with `BNN_NEW_SEED_EACH_CALL` set, repetition `r` uses seed `r` (a predictor then cannot
//! replay its last prediction's noise).
//!
//! cargo run --release -p bnn-benches --example repeat_prediction -- MODEL.safetensors [REPETITIONS [BATCH [SAMPLER
//! [THREADS]]]]

use bnn_runtime::{Model, PredictOptions, Predictor, Sampler};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: repeat_prediction MODEL.safetensors [REPETITIONS [BATCH [SAMPLER [THREADS]]]]";
    let path = args.next().ok_or(usage)?;
    let repetitions: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000).max(1);
    let batch: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1).max(1);
    let sampler: Sampler = args.next().map(|s| s.parse()).transpose()?.unwrap_or_default();
    let threads: Option<usize> = args.next().map(|s| s.parse()).transpose()?;
    let model = Model::load(path)?;
    let d = model.input_dim();
    let inputs = match (batch, std::env::var_os("BNN_MNIST_DIR")) {
        (_, Some(dir)) if d == 784 => bnn_trainer::data::load_mnist_test(&PathBuf::from(dir), Some(batch))?.inputs,
        _ => (0..batch).flat_map(|_| bnn_benches::input(d)).collect(),
    };
    let new_seeds = std::env::var_os("BNN_NEW_SEED_EACH_CALL").is_some();
    let mut predictor = Predictor::new(&model);
    let start = std::time::Instant::now();
    for r in 0..repetitions {
        let options = PredictOptions::default().samples(32).sampler(sampler);
        let options = if new_seeds { options.seed(r as u64) } else { options };
        if let Some(threads) = threads {
            std::hint::black_box(model.predict_batch_parallel(&inputs, &options, threads)?);
        } else if batch == 1 {
            std::hint::black_box(predictor.predict(&inputs, &options)?);
        } else {
            std::hint::black_box(predictor.predict_batch(&inputs, &options)?);
        }
    }
    let per_prediction = start.elapsed().as_secs_f64() * 1e6 / (repetitions * batch) as f64;
    println!("{per_prediction:.1} µs per prediction");
    Ok(())
}
