//! f32 versus f16 storage: load time and prediction latency (values are decoded to f32 at load, so the
//! predictions should cost the same).

use bnn_benches::{input, random_model, MNIST};
use bnn_runtime::{Model, ModelWriter, PredictOptions, Predictor, StorageDtype};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let model = random_model(&MNIST, 1);
    let x = input(784);
    let mut group = c.benchmark_group("storage_dtype");
    for dtype in [StorageDtype::F32, StorageDtype::F16] {
        let bytes = ModelWriter::new(&model).dtype(dtype).to_bytes().unwrap();
        group.bench_function(format!("{dtype:?}/load"), |b| b.iter(|| Model::from_bytes(&bytes).unwrap()));
        let loaded = Model::from_bytes(&bytes).unwrap();
        let mut p = Predictor::new(&loaded);
        let opts = PredictOptions::default().samples(32);
        group.bench_function(format!("{dtype:?}/LocalReparam_S32"), |b| b.iter(|| p.predict(&x, &opts).unwrap()));
    }
    group.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(20); targets = bench }
criterion_main!(benches);
