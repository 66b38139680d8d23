//! The runtime's side of `benches/onnx/compare_onnxruntime.py`, which times ONNX Runtime on the same shape in
//! the same run. Medians, printed as `key value` lines:
//!
//! - `mean_single_us`, `mean_batch32_us`: the deterministic `Mean` pass of a random 784-400-400-10 model, one
//!   input and a batch of 32 (one thread);
//! - `pruned_s32_single_us`, `dense_s32_single_us`: one Monte-Carlo prediction (local reparameterization,
//!   S = 32, one thread) of the trained 95%-pruned model and of the trained dense model, each with the default
//!   seed every call (so the predictor replays its noise from the third call on); `pruned_new_seed_s32_single_us`
//!   the pruned model's with a new seed each call (it draws its noise every time);
//! - `pruned_s32_batch64_per_s`, `dense_s32_batch64_per_s`: predictions per second of those models on a batch
//!   of 64 inputs at S = 32 on 2 threads (a `ParallelPredictor` kept from batch to batch, as ONNX Runtime keeps
//!   its session and its thread pool; each `predict_batch_parallel` call starts its threads and makes their
//!   predictors);
//!   `pruned_shared_s32_batch64_per_s`, `dense_shared_s32_batch64_per_s` the same with shared weights (the inputs of the batch share each sample's
//!   network);
//! - `lenet_mean_us`, `lenet_s32_us`: a random Bayesian LeNet-5 (`bnn_benches::lenet5`), its `Mean` pass and one
//!   S = 32 prediction of one 28x28 image (one thread).
//!
//! The input is MNIST test image 0 (and the batch the first 64 test images) when `BNN_MNIST_DIR` names the
//! MNIST directory, else a fixed synthetic image.
//!
//! cargo run --release -p bnn-benches --example onnx_counterparts [-- DENSE.safetensors PRUNED.safetensors]

use bnn_benches::{input, lenet5, random_model, MNIST};
use bnn_runtime::{Model, ParallelPredictor, PredictOptions, Predictor, Sampler};
use std::path::PathBuf;
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

/// The first `n` MNIST test images (scaled to [0, 1]) from `BNN_MNIST_DIR`, or `n` copies of the synthetic image.
fn images(n: usize) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    Ok(match std::env::var_os("BNN_MNIST_DIR") {
        Some(dir) => bnn_trainer::data::load_mnist_test(&PathBuf::from(dir), Some(n))?.inputs,
        None => (0..n).flat_map(|_| input(784)).collect(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dense_path = args.next().unwrap_or_else(|| "models/mnist-bbb.safetensors".into());
    let pruned_path = args.next().unwrap_or_else(|| "models/mnist-bbb-snr95-f16.safetensors".into());
    let (dense, pruned) = (Model::load(&dense_path)?, Model::load(&pruned_path)?);

    let random = random_model(&MNIST, 1);
    let x = input(784);
    let batch32: Vec<f32> = (0..32).flat_map(|_| x.iter().copied()).collect();
    let mean = PredictOptions::default().sampler(Sampler::Mean);
    let mut p = Predictor::new(&random);
    println!("mean_single_us {:.1}", median_us(3000, || drop(p.predict(&x, &mean).unwrap())));
    println!("mean_batch32_us {:.1}", median_us(300, || drop(p.predict_batch(&batch32, &mean).unwrap())));

    let (image, batch64) = (images(1)?, images(64)?);
    let s32 = PredictOptions::default().samples(32);
    let shared = s32.sampler(Sampler::SharedWeights);
    for (name, model, runs) in [("pruned", &pruned, 2000), ("dense", &dense, 300)] {
        let mut p = Predictor::new(model);
        println!("{name}_s32_single_us {:.1}", median_us(runs, || drop(p.predict(&image, &s32).unwrap())));
        if name == "pruned" {
            let mut seed = 0;
            let mut new_seed = || {
                seed += 1;
                drop(p.predict(&image, &s32.seed(seed)).unwrap())
            };
            println!("{name}_new_seed_s32_single_us {:.1}", median_us(runs, &mut new_seed));
        }
        for (kind, options) in [("", &s32), ("shared_", &shared)] {
            let mut kept = ParallelPredictor::new(model, 2);
            let batch_us = median_us(runs / 40, || drop(kept.predict_batch(&batch64, options).unwrap()));
            println!("{name}_{kind}s32_batch64_per_s {:.0}", 64.0 / (batch_us * 1e-6));
        }
    }

    let lenet = lenet5(1);
    let mut p = Predictor::new(&lenet);
    println!("lenet_mean_us {:.1}", median_us(1000, || drop(p.predict(&image, &mean).unwrap())));
    println!("lenet_s32_us {:.1}", median_us(200, || drop(p.predict(&image, &s32).unwrap())));
    Ok(())
}
