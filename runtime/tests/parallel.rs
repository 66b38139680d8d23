//! `Model::predict_batch_parallel` gives bit-identical results to the serial batch for every thread count (with
//! shared weights too: every thread draws the batch's networks), and reports the same error for a bad item; a
//! `ParallelPredictor` kept across batches gives every batch the serial bits too.

mod common;

use bnn_runtime::{ParallelPredictor, PredictError, PredictOptions, Sampler, Task};

#[test]
fn threads_never_change_the_results() {
    let model = common::bayesian_mlp(3, &[5, 12, 4], Task::Classification { classes: 4, labels: vec![] }, 0.4);
    // Fewer items and thread counts under Miri, which checks the threads for data races.
    let items = if cfg!(miri) { 7 } else { 23 };
    let thread_counts: &[usize] = if cfg!(miri) { &[2, 3] } else { &[0, 1, 2, 3, 4, 8, 64] };
    let inputs: Vec<f32> = (0..5 * items).map(|i| (i as f32 * 0.37).sin()).collect();
    for sampler in [Sampler::LocalReparam, Sampler::WeightSampling, Sampler::Mean, Sampler::SharedWeights] {
        let options = PredictOptions::default().samples(9).seed(1000).sampler(sampler);
        let serial = model.predict_batch(&inputs, &options).unwrap();
        for &threads in thread_counts {
            assert_eq!(model.predict_batch_parallel(&inputs, &options, threads).unwrap(), serial, "{threads} threads");
        }
    }
    assert!(model.predict_batch_parallel(&[], &PredictOptions::default(), 4).unwrap().is_empty());
}

#[test]
fn a_bad_item_gives_the_serial_error() {
    let model = common::bayesian_mlp(3, &[2, 4, 2], Task::Classification { classes: 2, labels: vec![] }, 0.4);
    let mut inputs = vec![0.5f32; 2 * 10];
    inputs[13] = f32::NAN;
    let serial = model.predict_batch(&inputs, &PredictOptions::default()).unwrap_err();
    let parallel = model.predict_batch_parallel(&inputs, &PredictOptions::default(), 3).unwrap_err();
    assert_eq!(parallel.to_string(), serial.to_string()); // NaN != NaN: compare the messages
    let ragged = model.predict_batch_parallel(&inputs[..3], &PredictOptions::default(), 2).unwrap_err();
    assert!(matches!(ragged, PredictError::BatchLength { .. }));
}

#[test]
fn kept_predictors_give_every_batch_the_serial_bits() {
    let model = common::bayesian_mlp(3, &[5, 12, 4], Task::Classification { classes: 4, labels: vec![] }, 0.4);
    let inputs: Vec<f32> = (0..5 * 41).map(|i| (i as f32 * 0.53).cos()).collect();
    let mut kept = ParallelPredictor::new(&model, 3);
    // A batch repeated, then other seeds, counts, samplers and sizes (the chunks' boundaries move, so each
    // predictor meets other items), then the first batch again.
    let batches: &[(usize, u64, usize, Sampler)] = &[
        (41, 5, 32, Sampler::LocalReparam),
        (41, 5, 32, Sampler::LocalReparam),
        (40, 5, 32, Sampler::LocalReparam),
        (17, 6, 32, Sampler::LocalReparam),
        // One item per thread: each predictor records its item's noise on the second call and replays it on the
        // third, but not for the next seed.
        (3, 5, 32, Sampler::LocalReparam),
        (3, 5, 32, Sampler::LocalReparam),
        (3, 5, 32, Sampler::LocalReparam),
        (3, 6, 32, Sampler::LocalReparam),
        (41, 6, 9, Sampler::SharedWeights),
        (3, 5, 32, Sampler::WeightSampling),
        (41, 5, 7, Sampler::Mean),
        (41, 5, 32, Sampler::LocalReparam),
    ];
    let batches = if cfg!(miri) { &batches[4..8] } else { batches };
    for &(items, seed, samples, sampler) in batches {
        let options = PredictOptions::default().samples(samples).seed(seed).sampler(sampler);
        let x = &inputs[..5 * items];
        let serial = model.predict_batch(x, &options).unwrap();
        assert_eq!(kept.predict_batch(x, &options).unwrap(), serial, "{items} items, seed {seed}, {sampler:?}");
    }
    assert!(matches!(
        kept.predict_batch(&inputs[..4], &PredictOptions::default()),
        Err(PredictError::BatchLength { .. })
    ));
}
