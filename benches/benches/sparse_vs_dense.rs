//! Dense versus 95%-pruned sparse (CSR) models: `Mean` and local reparameterization at S = 32.

use bnn_benches::{input, pruned, random_model, MNIST};
use bnn_runtime::{PredictOptions, Predictor, Sampler};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let dense = random_model(&MNIST, 1);
    let sparse = pruned(&dense, 0.95);
    let x = input(784);
    let mut group = c.benchmark_group("sparse_vs_dense");
    for (name, model) in [("dense", &dense), ("pruned95", &sparse)] {
        for (label, opts) in [
            ("Mean", PredictOptions::default().sampler(Sampler::Mean)),
            ("LocalReparam_S32", PredictOptions::default().samples(32)),
        ] {
            let mut p = Predictor::new(model);
            group.bench_function(format!("{name}/{label}"), |b| b.iter(|| p.predict(&x, &opts).unwrap()));
        }
    }
    group.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(30); targets = bench }
criterion_main!(benches);
