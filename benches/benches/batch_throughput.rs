//! Throughput of a batch of 64 inputs at S = 32, MNIST shape, dense and 95%-pruned (`bnn_benches::pruned`):
//! serially with one reused `Predictor`, and with `predict_batch_parallel` on 2 threads (this machine's cores);
//! local reparameterization and shared weights (the batch's inputs share each sample's network).

use bnn_benches::{input, pruned, random_model, MNIST};
use bnn_runtime::{PredictOptions, Predictor, Sampler};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let dense = random_model(&MNIST, 1);
    let sparse = pruned(&dense, 0.95);
    let one = input(784);
    let batch: Vec<f32> = (0..64).flat_map(|_| one.iter().copied()).collect();
    let mut group = c.benchmark_group("batch_throughput");
    group.throughput(Throughput::Elements(64));
    for (kind, model) in [("dense", &dense), ("pruned", &sparse)] {
        for (name, sampler) in [("", Sampler::LocalReparam), ("_shared", Sampler::SharedWeights)] {
            let opts = PredictOptions::default().samples(32).sampler(sampler);
            let mut p = Predictor::new(model);
            group.bench_function(format!("{kind}_batch64_S32{name}"), |b| {
                b.iter(|| p.predict_batch(&batch, &opts).unwrap())
            });
            group.bench_function(format!("{kind}_batch64_S32_2threads{name}"), |b| {
                b.iter(|| model.predict_batch_parallel(&batch, &opts, 2).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(10); targets = bench }
criterion_main!(benches);
