//! Latency of one prediction for S in {1, 8, 32, 100} per sampler, dense MNIST and wide shapes.

use bnn_benches::{input, random_model, MNIST, WIDE};
use bnn_runtime::{PredictOptions, Predictor, Sampler};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn bench(c: &mut Criterion) {
    for (name, sizes) in [("mnist", &MNIST[..]), ("wide", &WIDE[..])] {
        let model = random_model(sizes, 1);
        let x = input(sizes[0]);
        let mut group = c.benchmark_group(format!("predict_{name}"));
        for sampler in [Sampler::Mean, Sampler::LocalReparam, Sampler::WeightSampling] {
            for s in [1usize, 8, 32, 100] {
                if sampler == Sampler::Mean && s > 1 {
                    continue; // Mean runs one pass whatever S
                }
                if name == "wide" && (sampler == Sampler::WeightSampling && s > 8) {
                    continue;
                }
                let opts = PredictOptions::default().samples(s).sampler(sampler);
                let mut p = Predictor::new(&model);
                group.bench_with_input(BenchmarkId::new(format!("{sampler:?}"), s), &s, |b, _| {
                    b.iter(|| p.predict(&x, &opts).unwrap())
                });
            }
        }
        group.finish();
    }
}

criterion_group! { name = benches; config = Criterion::default().sample_size(20); targets = bench }
criterion_main!(benches);
