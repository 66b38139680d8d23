//! What a calibrated classifier's decision costs next to the prediction it decides on: `Calibration::decide`
//! (temperature scaling, ranking, the APS scores, the conformal set and abstention) on the 10 class probabilities of one S = 32
//! prediction of the 95%-pruned MNIST-shaped model, and that prediction itself.

use bnn_benches::{input, pruned, random_model, MNIST};
use bnn_runtime::{Calibration, CalibrationSplit, ConformalLevel, PredictOptions, Predictor};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let model = pruned(&random_model(&MNIST, 1), 0.95);
    let x = input(MNIST[0]);
    let options = PredictOptions::default().samples(32).seed(1);
    let mut predictor = Predictor::new(&model);
    let p = predictor.predict(&x, &options).unwrap();
    let probabilities = p.as_classification().unwrap().probabilities.clone();
    let calibration = Calibration {
        temperature: 0.85,
        sets: vec![ConformalLevel { level: 0.95, threshold: 0.95 }],
        abstain_below: Some(0.85),
        intervals: vec![],
        split: CalibrationSplit { examples: 1, seed: 1, source: "bench".into() },
    };
    let mut group = c.benchmark_group("decision");
    group.bench_function("predict_pruned95_s32", |b| b.iter(|| predictor.predict(black_box(&x), &options).unwrap()));
    group.bench_function("decide", |b| b.iter(|| calibration.decide(black_box(&probabilities), 0.95).unwrap()));
    group.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(30); targets = bench }
criterion_main!(benches);
