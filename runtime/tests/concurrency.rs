//! One `Model` shared by 8 threads, each making 10,000 predictions (mixed samplers and seeds, each thread with its
//! own `Predictor`): every result is bit-identical to the serial result for the same seed.

mod common;

use bnn_runtime::{Model, PredictOptions, Prediction, Predictor, Sampler, Task};
use std::sync::Arc;

const THREADS: usize = 8;
// Under Miri (which checks the threads for data races) a few predictions per thread suffice.
const PER_THREAD: usize = if cfg!(miri) { 5 } else { 10_000 };

fn options(i: usize) -> PredictOptions {
    let sampler = [Sampler::LocalReparam, Sampler::WeightSampling, Sampler::Mean][i % 3];
    PredictOptions::default().samples(1 + i % 7).seed(i as u64).sampler(sampler)
}

fn input(i: usize) -> [f32; 3] {
    [(i % 11) as f32 * 0.1, -((i % 5) as f32) * 0.3, 0.25]
}

#[test]
fn eight_threads_sharing_one_model_get_the_serial_results() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Model>();

    let model =
        Arc::new(common::bayesian_mlp(5, &[3, 16, 8, 4], Task::Classification { classes: 4, labels: vec![] }, 0.5));
    let mut predictor = Predictor::new(&model);
    let serial: Arc<Vec<Prediction>> =
        Arc::new((0..PER_THREAD).map(|i| predictor.predict(&input(i), &options(i)).unwrap()).collect());

    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (model, serial) = (Arc::clone(&model), Arc::clone(&serial));
            std::thread::spawn(move || {
                let mut predictor = Predictor::new(&model);
                // Each thread walks all seeds in its own order (a stride coprime to 10,000) so that threads
                // interleave differently.
                let stride = [1, 3, 7, 9, 11, 13, 17, 19][t]; // all coprime to 10,000 and to 5
                (0..PER_THREAD)
                    .map(|k| (k * stride + t) % PER_THREAD)
                    .filter(|&i| predictor.predict(&input(i), &options(i)).unwrap() != serial[i])
                    .count()
            })
        })
        .collect();
    let mismatches: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(mismatches, vec![0; THREADS], "results differing from the serial ones, per thread");
}
