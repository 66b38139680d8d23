//! The performance issue's ratio targets, measured in one interleaved run so that the machine's drift hits
//! every configuration alike: rounds of (dense `Mean`, dense `LocalReparam` S = 32, dense `WeightSampling`
//! S = 32, 95%-pruned `LocalReparam` S = 32) on the random MNIST-shape model, and, when given, the trained
//! dense model against its 95%-pruned file. Prints the median time of each and the ratios.
//!
//! cargo run --release -p bnn-benches --example target_ratios [-- DENSE.safetensors PRUNED.safetensors]

use bnn_benches::{input, pruned, random_model, MNIST};
use bnn_runtime::{Model, PredictOptions, Predictor, Sampler};
use std::time::Instant;

const ROUNDS: usize = 15;

/// Mean time in µs of `reps` predictions.
fn time_us(model: &Model, x: &[f32], options: &PredictOptions, reps: usize) -> f64 {
    let mut p = Predictor::new(model);
    p.predict(x, options).expect("a valid prediction");
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(p.predict(x, options).expect("a valid prediction"));
    }
    start.elapsed().as_secs_f64() * 1e6 / reps as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dense = random_model(&MNIST, 1);
    let sparse = pruned(&dense, 0.95);
    let trained = match (std::env::args().nth(1), std::env::args().nth(2)) {
        (Some(d), Some(p)) => Some((Model::load(d)?, Model::load(p)?)),
        _ => None,
    };
    let x = input(784);
    let mean = PredictOptions::default().sampler(Sampler::Mean);
    let lrt = PredictOptions::default().samples(32);
    let ws = PredictOptions::default().samples(32).sampler(Sampler::WeightSampling);
    let mut t: [Vec<f64>; 6] = Default::default();
    for _ in 0..ROUNDS {
        t[0].push(time_us(&dense, &x, &mean, 400));
        t[1].push(time_us(&dense, &x, &lrt, 40));
        t[2].push(time_us(&dense, &x, &ws, 2));
        t[3].push(time_us(&sparse, &x, &lrt, 100));
        if let Some((d, p)) = &trained {
            t[4].push(time_us(d, &x, &lrt, 40));
            t[5].push(time_us(p, &x, &lrt, 100));
        }
    }
    let [mean_d, lrt_d, ws_d, lrt_p, trained_d, trained_p] = t.map(|v| if v.is_empty() { f64::NAN } else { median(v) });
    println!("random 784-400-400-10, medians of {ROUNDS} interleaved rounds (µs):");
    println!("  dense Mean {mean_d:.1} | dense LocalReparam S=32 {lrt_d:.1} | dense WeightSampling S=32 {ws_d:.1} | 95%-pruned LocalReparam S=32 {lrt_p:.1}");
    println!("  WeightSampling / LocalReparam (target >= 50): {:.1}", ws_d / lrt_d);
    println!("  dense LocalReparam / dense Mean (target <= 10): {:.2}", lrt_d / mean_d);
    println!("  pruned LocalReparam / dense Mean (target <= 2): {:.2}", lrt_p / mean_d);
    if trained.is_some() {
        println!("trained model, LocalReparam S=32: dense {trained_d:.1} µs, 95%-pruned {trained_p:.1} µs");
        println!("  dense / pruned (target >= 5): {:.2}", trained_d / trained_p);
    }
    Ok(())
}
