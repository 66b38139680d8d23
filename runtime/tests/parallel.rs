//! `Model::predict_batch_parallel` gives bit-identical results to the serial batch for every thread count (with
//! shared weights too: every thread draws the batch's networks), and reports the same error for a bad item.

mod common;

use bnn_runtime::{PredictError, PredictOptions, Sampler, Task};

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
