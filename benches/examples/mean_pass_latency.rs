//! Median latency of the runtime's deterministic `Mean` pass on the dense MNIST shape (784-400-400-10): one
//! input, and a batch of 32. Printed as `key value_us` lines for `benches/onnx/compare_onnxruntime.py`, which
//! times ONNX Runtime on the same shape in the same run.
//!
//! cargo run --release -p bnn-benches --example mean_pass_latency

use bnn_benches::{input, random_model, MNIST};
use bnn_runtime::{PredictOptions, Predictor, Sampler};
use std::time::Instant;

fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..runs / 10 {
        f(); // warm-up
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn main() {
    let model = random_model(&MNIST, 1);
    let x = input(784);
    let batch: Vec<f32> = (0..32).flat_map(|_| x.iter().copied()).collect();
    let options = PredictOptions::default().sampler(Sampler::Mean);
    let mut predictor = Predictor::new(&model);
    let single = median_us(3000, || drop(predictor.predict(&x, &options).unwrap()));
    let batch32 = median_us(300, || drop(predictor.predict_batch(&batch, &options).unwrap()));
    println!("bnn_mean_single_us {single:.1}");
    println!("bnn_mean_batch32_us {batch32:.1}");
}
