//! The Gaussian sampler alone: standard-normal draws per second on one core.

use bnn_runtime::SeededRng;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("gaussian");
    let n = 1 << 16;
    group.throughput(Throughput::Elements(n as u64));
    let mut rng = SeededRng::new(1);
    let mut buf = vec![0.0f32; n];
    group.bench_function("fill_gaussian_65536", |b| b.iter(|| rng.fill_gaussian(&mut buf)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
