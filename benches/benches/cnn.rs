//! Latency of one prediction of a Bayesian LeNet-5 (1x28x28 image, `bnn_benches::lenet5`): the deterministic
//! `Mean` pass, the block sampler at S = 32 (each sample's kernels drawn once and used at every position) and at
//! S = 10 (a block of ten), and weight sampling at S = 8.

use bnn_benches::{input, lenet5};
use bnn_runtime::{PredictOptions, Predictor, Sampler};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let model = lenet5(1);
    let x = input(784);
    let mut group = c.benchmark_group("lenet5");
    for (name, options) in [
        ("Mean", PredictOptions::default().sampler(Sampler::Mean)),
        ("LocalReparam_32", PredictOptions::default().samples(32)),
        ("LocalReparam_10", PredictOptions::default().samples(10)),
        ("WeightSampling_8", PredictOptions::default().samples(8).sampler(Sampler::WeightSampling)),
    ] {
        let mut p = Predictor::new(&model);
        group.bench_function(name, |b| b.iter(|| p.predict(&x, &options).unwrap()));
    }
    group.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(20); targets = bench }
criterion_main!(benches);
