//! One S = 32 prediction of a model's input repeated, for `perf record` and for A/B timing of two builds run
//! alternately (benches/README.md, session 19): prints the mean wall time per prediction.
//!
//! cargo run --release -p bnn-benches --example repeat_prediction -- MODEL.safetensors [REPETITIONS]

use bnn_runtime::{Model, PredictOptions, Predictor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: repeat_prediction MODEL.safetensors [REPETITIONS]")?;
    let repetitions: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000).max(1);
    let model = Model::load(path)?;
    let x = bnn_benches::input(model.input_dim());
    let options = PredictOptions::default().samples(32);
    let mut predictor = Predictor::new(&model);
    let start = std::time::Instant::now();
    for _ in 0..repetitions {
        std::hint::black_box(predictor.predict(&x, &options)?);
    }
    println!("{:.1} µs per prediction", start.elapsed().as_secs_f64() * 1e6 / repetitions as f64);
    Ok(())
}
