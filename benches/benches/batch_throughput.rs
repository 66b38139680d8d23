//! Throughput of a batch of 64 inputs at S = 32 (local reparameterization), dense MNIST shape: serially with one
//! reused `Predictor`, and with `predict_batch_parallel` on 2 threads (this machine's cores).

use bnn_benches::{input, random_model, MNIST};
use bnn_runtime::{PredictOptions, Predictor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let model = random_model(&MNIST, 1);
    let one = input(784);
    let batch: Vec<f32> = (0..64).flat_map(|_| one.iter().copied()).collect();
    let opts = PredictOptions::default().samples(32);
    let mut group = c.benchmark_group("batch_throughput");
    group.throughput(Throughput::Elements(64));
    let mut p = Predictor::new(&model);
    group.bench_function("batch64_S32", |b| b.iter(|| p.predict_batch(&batch, &opts).unwrap()));
    group
        .bench_function("batch64_S32_2threads", |b| b.iter(|| model.predict_batch_parallel(&batch, &opts, 2).unwrap()));
    group.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(10); targets = bench }
criterion_main!(benches);
