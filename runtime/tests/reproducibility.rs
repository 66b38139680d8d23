//! Seeds: the same seed gives bit-identical predictions, different seeds differ, and batch item i equals a
//! single prediction with seed + i.

mod common;

use bnn_runtime::{Activation, Dense, Dropout, Layer, Model, PredictOptions, Predictor, Sampler, Task};

fn model() -> bnn_runtime::Model {
    common::bayesian_mlp(1, &[3, 8, 3], Task::Classification { classes: 3, labels: vec![] }, 0.5)
}

#[test]
fn the_same_seed_gives_bit_identical_results_and_different_seeds_differ() {
    let m = model();
    let x = [0.3, 0.1, -0.2];
    for sampler in [Sampler::LocalReparam, Sampler::WeightSampling, Sampler::SharedWeights] {
        let opts = PredictOptions::default().samples(16).sampler(sampler);
        let a = m.predict(&x, &opts.seed(42)).unwrap();
        let b = m.predict(&x, &opts.seed(42)).unwrap();
        let c = m.predict(&x, &opts.seed(43)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

#[test]
fn a_reused_predictor_gives_the_same_results_as_a_fresh_one() {
    let m = model();
    let mut p = Predictor::new(&m);
    let opts = PredictOptions::default().seed(7);
    let first = p.predict(&[1.0, 2.0, 3.0], &opts).unwrap();
    p.predict(&[-1.0, 0.0, 5.0], &opts).unwrap();
    assert_eq!(p.predict(&[1.0, 2.0, 3.0], &opts).unwrap(), first);
}

#[test]
fn a_predictor_replaying_its_noise_gives_the_drawn_bits() {
    // A predictor keeps the noise of a local-reparameterization prediction of a Bayesian dense network (from the
    // second in a row with the same seed and sample count) and reads it back for the next ones: every prediction,
    // in any order of seeds and counts, after recordings that failed half-way (an overflow), dense and sparse, must
    // give a fresh predictor's bits; one over the tape's room (S = 40) draws as usual.
    let task = Task::Regression { outputs: 1, noise: bnn_runtime::NoiseModel::Homoscedastic { sigma: 0.1 } };
    let dense = common::bayesian_mlp(3, &[2, 16, 16, 1], task, 0.3);
    // Under Miri, fewer and smaller predictions of the dense network only.
    let (s, models) = if cfg!(miri) { (8, vec![dense]) } else { (32, vec![dense.sparsified(), dense]) };
    for m in models {
        let mut p = Predictor::new(&m);
        let calls = [(3, s, 0.5), (3, s, -1.0), (4, s, -1.0), (3, s, 0.5), (3, 7, 2.0), (3, 40, 2.0), (3, 7, 0.1)];
        for &(seed, samples, v) in &calls[..if cfg!(miri) { 4 } else { calls.len() }] {
            let o = PredictOptions::default().seed(seed).samples(samples);
            let x = [v, 1.0 - v];
            // The second failure is the first recording; then a recording, then replays.
            for _ in 0..2 {
                for _ in 0..2 {
                    assert_eq!(p.predict(&[1.0e22, 1.0], &o), Err(bnn_runtime::PredictError::NonFiniteOutput));
                }
                let fresh = Predictor::new(&m).predict(&x, &o);
                assert_eq!(p.predict(&x, &o), fresh, "seed {seed}, S = {samples}, {x:?}");
            }
        }
    }
}

#[test]
fn batch_item_i_equals_a_single_prediction_with_seed_plus_i() {
    let m = model();
    let inputs = [0.1, 0.2, 0.3, -1.0, 0.0, 1.0, 2.0, 2.0, -2.0];
    let opts = PredictOptions::default().seed(100).samples(8);
    let batch = m.predict_batch(&inputs, &opts).unwrap();
    assert_eq!(batch.len(), 3);
    for (i, p) in batch.iter().enumerate() {
        assert_eq!(*p, m.predict(&inputs[i * 3..i * 3 + 3], &opts.seed(100 + i as u64)).unwrap());
    }
}

#[test]
fn batches_take_their_first_layer_in_groups_with_the_bits_of_single_predictions() {
    // A batch's first dense layer runs eight inputs at a time: a Bayesian one behind a normalisation (its moments
    // for local reparameterization, its mean weights for `Mean`; inputs lit and mostly blank), the same layers
    // sparsified (their sliced layout) and an MC-dropout network's deterministic one, over 19 inputs (two groups
    // and a part; under Miri 9 and fewer samples), must give every item the single prediction's bits; a
    // non-finite value is reported for its own item.
    let task = Task::Classification { classes: 4, labels: vec![] };
    let plain = common::bayesian_mlp(5, &[13, 16, 4], task.clone(), 0.4);
    let norm = Some(bnn_runtime::Normalization::global(0.3, 1.7));
    let dense = Model::new(plain.layers().to_vec(), task.clone(), norm, Default::default()).unwrap();
    let weights = |n: usize, scale: f32| (0..n).map(|k| ((k * 5 % 17) as f32 * 0.61).sin() * scale).collect();
    let dropout = Model::new(
        vec![
            Layer::Dense(Dense::new(13, 16, weights(13 * 16, 0.3), weights(16, 0.1))),
            Layer::Activation(Activation::Relu),
            Layer::Dropout(Dropout::new(0.25)),
            Layer::Dense(Dense::new(16, 4, weights(16 * 4, 0.4), weights(4, 0.1))),
        ],
        task,
        None,
        Default::default(),
    )
    .unwrap();
    let fixed = PredictOptions::default().seed(9);
    let (items, option_sets) = match cfg!(miri) {
        true => (9, vec![fixed.samples(2), fixed.sampler(Sampler::Mean)]),
        false => (
            19,
            vec![
                fixed.samples(40),
                PredictOptions::default().adaptive(64, 0.01),
                fixed.sampler(Sampler::Mean),
                fixed.samples(5).sampler(Sampler::WeightSampling),
            ],
        ),
    };
    // Every other item mostly raw zeros (blank pixels: the single prediction's first layer reads only the lit
    // ones, `layers/raw_zero.rs`), the others lit throughout.
    let value = |k: usize| ((k * 7 % 23) as f32 * 0.37).sin() * 2.0;
    let inputs: Vec<f32> =
        (0..items * 13).map(|k| if (k / 13) % 2 == 0 && k % 5 != 2 { 0.0 } else { value(k) }).collect();
    for model in [&dense, &dense.sparsified(), &dropout] {
        for opts in &option_sets {
            let batch = model.predict_batch(&inputs, opts).unwrap();
            assert_eq!(batch.len(), items);
            for (i, p) in batch.iter().enumerate() {
                let single = model.predict(&inputs[i * 13..(i + 1) * 13], &opts.seed(opts.seed + i as u64)).unwrap();
                assert_eq!(*p, single, "item {i}, {opts:?}");
            }
        }
        let mut bad = inputs.clone();
        bad[8 * 13 + 4] = f32::INFINITY;
        let err = model.predict_batch(&bad, &PredictOptions::default()).unwrap_err();
        assert_eq!(err, bnn_runtime::PredictError::NonFiniteInput { index: 4, value: f32::INFINITY });
    }
}

#[test]
fn adaptive_sampling_stops_early_when_the_mean_is_precise_and_reports_the_count() {
    let m = model();
    let x = [0.3, 0.1, -0.2];
    let loose = m.predict(&x, &PredictOptions::default().adaptive(1000, 0.05)).unwrap();
    let strict = m.predict(&x, &PredictOptions::default().adaptive(1000, 1e-6)).unwrap();
    assert!(loose.samples_used() >= bnn_runtime::ADAPTIVE_MIN_SAMPLES && loose.samples_used() < 1000);
    assert_eq!(strict.samples_used(), 1000);
}
