//! The performance issue's ratio targets, measured in one interleaved run so that the machine's drift hits
//! every configuration alike (`bnn_trainer::evaluate::interleaved_latencies`): dense `Mean`, dense
//! `LocalReparam` S = 32, dense `WeightSampling` S = 32 and 95%-pruned `LocalReparam` S = 32 on the random
//! MNIST-shape model, and, when given, the trained dense model against its 95%-pruned file — on the synthetic
//! input, and again (the two interleaved on their own) on MNIST test image 0 when `BNN_MNIST_DIR` names the MNIST
//! directory: a convolution's work depends on the image (a digit's blank background is filled, not convolved).
//! Prints the median time of each and the ratios.
//!
//! [BNN_MNIST_DIR=DIR] cargo run --release -p bnn-benches --example target_ratios [-- DENSE.safetensors
//! PRUNED.safetensors]

use bnn_benches::{input, pruned, random_model, MNIST};
use bnn_runtime::{Model, PredictOptions, Sampler};
use bnn_trainer::evaluate::{interleaved_latencies, LatencyCase, LATENCY_ROUNDS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dense = random_model(&MNIST, 1);
    let sparse = pruned(&dense, 0.95);
    let trained = match (std::env::args().nth(1), std::env::args().nth(2)) {
        (Some(d), Some(p)) => Some((Model::load(d)?, Model::load(p)?)),
        _ => None,
    };
    let mean = PredictOptions::default().sampler(Sampler::Mean);
    let lrt = PredictOptions::default().samples(32);
    let ws = PredictOptions::default().samples(32).sampler(Sampler::WeightSampling);
    let case = |model, options, per_round: usize| LatencyCase { model, options, reps: per_round * LATENCY_ROUNDS };
    let mut cases = vec![case(&dense, mean, 400), case(&dense, lrt, 40), case(&dense, ws, 2), case(&sparse, lrt, 100)];
    if let Some((d, p)) = &trained {
        cases.extend([case(d, lrt, 40), case(p, lrt, 100)]);
    }
    let us: Vec<f64> = interleaved_latencies(&cases, &input(784))?.iter().map(|t| t.as_secs_f64() * 1e6).collect();
    let (mean_d, lrt_d, ws_d, lrt_p) = (us[0], us[1], us[2], us[3]);
    println!("random 784-400-400-10, medians of {LATENCY_ROUNDS} interleaved rounds (µs):");
    println!("  dense Mean {mean_d:.1} | dense LocalReparam S=32 {lrt_d:.1} | dense WeightSampling S=32 {ws_d:.1} | 95%-pruned LocalReparam S=32 {lrt_p:.1}");
    println!("  WeightSampling / LocalReparam (target >= 50): {:.1}", ws_d / lrt_d);
    println!("  dense LocalReparam / dense Mean (target <= 10): {:.2}", lrt_d / mean_d);
    println!("  pruned LocalReparam / dense Mean (target <= 2): {:.2}", lrt_p / mean_d);
    let report = |input: &str, dense: f64, pruned: f64| {
        println!("trained model, LocalReparam S=32, {input}: dense {dense:.1} µs, 95%-pruned {pruned:.1} µs");
        println!("  dense / pruned (targets: the MLP >= 5, a LeNet-5 >= 4): {:.2}", dense / pruned);
    };
    if let [.., trained_d, trained_p] = us[4..] {
        report("synthetic input", trained_d, trained_p);
    }
    if let (Some(dir), [.., d, p]) = (std::env::var_os("BNN_MNIST_DIR"), cases.as_slice()) {
        let digit = bnn_trainer::data::load_mnist_test(dir.as_ref(), Some(1))?.inputs;
        let us = interleaved_latencies(&[*d, *p], &digit)?;
        report("MNIST test image 0", us[0].as_secs_f64() * 1e6, us[1].as_secs_f64() * 1e6);
    }
    Ok(())
}
