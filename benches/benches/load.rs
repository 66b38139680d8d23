//! Time to load and validate a model from bytes: dense f32 and 95%-pruned f16 (CSR).

use bnn_benches::{pruned, random_model, MNIST};
use bnn_runtime::{Model, ModelWriter, StorageDtype};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let dense = random_model(&MNIST, 1);
    let dense_bytes = ModelWriter::new(&dense).to_bytes().unwrap();
    let sparse_bytes = ModelWriter::new(&pruned(&dense, 0.95)).dtype(StorageDtype::F16).to_bytes().unwrap();
    let mut group = c.benchmark_group("load");
    group.bench_function("dense_f32", |b| b.iter(|| Model::from_bytes(&dense_bytes).unwrap()));
    group.bench_function("pruned95_f16", |b| b.iter(|| Model::from_bytes(&sparse_bytes).unwrap()));
    group.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(20); targets = bench }
criterion_main!(benches);
