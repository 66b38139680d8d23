//! `Sampler::SharedWeights`: each input's samples are exact draws of its predictive distribution (they agree in
//! distribution with weight sampling on an MLP, an MC-dropout network and a CNN), the inputs of a batch share their
//! networks and their first layer's noise (equal inputs get the same bits), an item's result depends only on the
//! seed and its input, and adaptive counts are refused.

mod common;

use bnn_runtime::{
    Activation, Dense, Dropout, Layer, Model, NoiseModel, PoolKind, PredictError, PredictOptions, Predictor,
    Provenance, Sampler, Task,
};

const S: usize = 20_000;

/// Mean and variance of each of the `width` columns of row-major `samples`, and their standard errors.
fn column_summaries(samples: &[f32], width: usize) -> Vec<[f64; 4]> {
    (0..width)
        .map(|j| {
            let xs: Vec<f64> = samples.iter().skip(j).step_by(width).map(|v| *v as f64).collect();
            let (m, v) = common::moments(xs.iter().copied());
            let m4 = xs.iter().map(|x| (x - m).powi(4)).sum::<f64>() / xs.len() as f64;
            let n = xs.len() as f64;
            [m, v, (v / n).sqrt(), ((m4 - v * v).max(0.0) / n).sqrt()]
        })
        .collect()
}

/// Shared weights and weight sampling give each output of `x` the same mean and variance, within 5 standard errors.
fn agrees_with_weight_sampling(model: &Model, x: &[f32]) {
    let mut p = Predictor::new(model);
    let (mut shared, mut reference) = (Vec::new(), Vec::new());
    let s = if cfg!(miri) { 200 } else { S };
    p.sample_outputs(x, Sampler::SharedWeights, 1, s, &mut shared).unwrap();
    p.sample_outputs(x, Sampler::WeightSampling, 2, s, &mut reference).unwrap();
    assert_eq!(shared.len(), reference.len());
    let w = model.head_width();
    for (j, (a, b)) in column_summaries(&shared, w).iter().zip(column_summaries(&reference, w)).enumerate() {
        assert!(a[1] > 1e-3, "output {j}: the test network must be noticeably stochastic");
        let tol_m = 5.0 * (a[2].powi(2) + b[2].powi(2)).sqrt();
        let tol_v = 5.0 * (a[3].powi(2) + b[3].powi(2)).sqrt();
        assert!((a[0] - b[0]).abs() < tol_m, "output {j}: means {} vs {} (tol {tol_m})", a[0], b[0]);
        assert!((a[1] - b[1]).abs() < tol_v, "output {j}: variances {} vs {} (tol {tol_v})", a[1], b[1]);
    }
}

#[test]
fn each_input_gets_exact_draws_of_its_predictive_distribution() {
    let task = Task::Regression { outputs: 2, noise: NoiseModel::Homoscedastic { sigma: 0.1 } };
    let mlp = common::bayesian_mlp(5, &[4, 16, 8, 2], task, 0.3);
    agrees_with_weight_sampling(&mlp, &[0.8, -0.4, 1.2, 0.1]);
    agrees_with_weight_sampling(&mlp.sparsified(), &[0.8, -0.4, 1.2, 0.1]);
    agrees_with_weight_sampling(&mc_dropout(), &[1.0, 2.0, -1.0]);
    agrees_with_weight_sampling(&common::bayesian_cnn(PoolKind::Max), &common::cnn_image());
}

/// Dense 3 -> 6, ReLU, dropout 0.3, dense 6 -> 2 (a regression): an MC-dropout network.
fn mc_dropout() -> Model {
    let layers = vec![
        Layer::Dense(Dense::new(3, 6, (0..18).map(|k| (k as f32 * 0.9).cos()).collect(), vec![0.1; 6])),
        Layer::Activation(Activation::Relu),
        Layer::Dropout(Dropout::new(0.3)),
        Layer::Dense(Dense::new(6, 2, (0..12).map(|k| (k as f32 * 0.4).sin()).collect(), vec![0.05, -0.05])),
    ];
    let task = Task::Regression { outputs: 2, noise: NoiseModel::Homoscedastic { sigma: 0.1 } };
    Model::new(layers, task, None, Provenance::default()).unwrap()
}

#[test]
fn the_inputs_of_a_batch_share_their_networks_and_first_layer_noise() {
    let mlp = common::bayesian_mlp(2, &[3, 8, 8, 4], Task::Classification { classes: 4, labels: vec![] }, 0.3);
    let x = [0.5f32, -0.2, 0.9];
    let batch: Vec<f32> = [x, x].concat();
    let options = PredictOptions::default().samples(16).seed(7);
    let shared = mlp.predict_batch(&batch, &options.sampler(Sampler::SharedWeights)).unwrap();
    assert_eq!(shared[0], shared[1], "equal inputs, the same networks and noise: the same bits");
    let own = mlp.predict_batch(&batch, &options.sampler(Sampler::LocalReparam)).unwrap();
    assert_ne!(own[0], own[1], "local reparameterization draws each item's own samples");
}

#[test]
fn an_item_depends_only_on_the_seed_and_its_input() {
    let model = common::bayesian_mlp(4, &[3, 10, 10, 3], Task::Classification { classes: 3, labels: vec![] }, 0.3);
    // 130 items: two chunks of networks (128 inputs each), blocks of 32, 2 and 1 inputs.
    let items = if cfg!(miri) { 35 } else { 130 };
    let inputs: Vec<f32> = (0..3 * items).map(|k| (k as f32 * 0.53).sin()).collect();
    let mut others = inputs.clone();
    let kept = [0, 3, items - 1];
    for (k, v) in others.iter_mut().enumerate() {
        if !kept.contains(&(k / 3)) {
            *v = -*v * 0.5;
        }
    }
    let options = PredictOptions::default().samples(40).seed(11).sampler(Sampler::SharedWeights);
    let (a, b) = (model.predict_batch(&inputs, &options).unwrap(), model.predict_batch(&others, &options).unwrap());
    for i in kept {
        assert_eq!(a[i], b[i], "item {i}");
    }
    assert_ne!(a[1], b[1]);
    // One input: the batch's item 0 (in a block of one input, there in one of 32); and item 0's input as the last
    // item (another chunk, a block of one input).
    assert_eq!(model.predict(&inputs[..3], &options).unwrap(), a[0]);
    let mut moved = inputs.clone();
    moved[3 * (items - 1)..].copy_from_slice(&inputs[..3]);
    assert_eq!(model.predict_batch(&moved, &options).unwrap()[items - 1], a[0]);
    // In a group of 17 inputs (a block of 32 with empty columns).
    assert_eq!(model.predict_batch(&inputs[..3 * 17], &options).unwrap()[0], a[0]);
    // Whatever blocks the thread count cuts the batch into: a sparse MLP's items and a CNN's.
    let images: Vec<f32> = (0..64 * 13).map(|k| ((k as f32) * 0.29).sin().abs()).collect();
    for (m, x) in [(model.sparsified(), &inputs), (common::bayesian_cnn(PoolKind::Avg), &images)] {
        let serial = m.predict_batch(x, &options).unwrap();
        for threads in [2, 3, 5] {
            assert_eq!(m.predict_batch_parallel(x, &options, threads).unwrap(), serial, "{threads} threads");
        }
    }
    let mut raw = Vec::new();
    Predictor::new(&model).sample_outputs(&inputs[..3], Sampler::SharedWeights, 11, 40, &mut raw).unwrap();
    assert_eq!(raw.len(), 40 * 3);
}

#[test]
fn adaptive_counts_and_bad_inputs_are_refused() {
    let model = common::bayesian_mlp(4, &[3, 5, 2], Task::Classification { classes: 2, labels: vec![] }, 0.3);
    let adaptive = PredictOptions::default().adaptive(64, 0.01).sampler(Sampler::SharedWeights);
    let e = model.predict_batch(&[0.1; 6], &adaptive).unwrap_err();
    assert!(matches!(e, PredictError::InvalidOptions(ref m) if m.contains("fixed sample count")), "{e}");
    let options = PredictOptions::default().sampler(Sampler::SharedWeights);
    assert!(matches!(model.predict(&[0.1; 4], &options), Err(PredictError::InputLength { .. })));
    assert!(matches!(model.predict_batch(&[0.1; 5], &options), Err(PredictError::BatchLength { .. })));
    let e = model.predict_batch(&[0.1, 0.2, 0.3, 0.4, f32::NAN, 0.6], &options).unwrap_err();
    assert!(matches!(e, PredictError::NonFiniteInput { index: 1, .. }), "{e}");
    assert!(matches!(model.predict(&[0.1; 3], &options.samples(0)), Err(PredictError::InvalidOptions(_))));
}
