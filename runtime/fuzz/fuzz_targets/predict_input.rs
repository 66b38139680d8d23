//! Fuzz target: prediction with arbitrary inputs (any f32 bit pattern, any length) and options against a valid
//! model with every layer kind: an MLP (Bayesian dense, pruned-sparse Bayesian dense, dropout, deterministic
//! dense) or, when bit 1 of the third byte is set, a small CNN on 1x4x4 images (Bayesian and deterministic
//! convolutions, max and average pooling, flatten). Must return a prediction or a typed error; a prediction must
//! satisfy the uncertainty identities.
#![no_main]

use bnn_runtime::{
    Activation, BayesianConv2d, BayesianDense, Conv2d, ConvGeometry, Dense, Dropout, Layer, Model, Pool2d,
    PoolGeometry, PoolKind, PredictOptions, Provenance, Sampler, Task,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let values = |n: usize, scale: f32| (0..n).map(|i| scale * ((i * 7919 % 23) as f32 - 11.0) / 11.0).collect::<Vec<_>>();
        let mut sparse_mu = values(8 * 8, 0.8);
        sparse_mu.iter_mut().step_by(3).for_each(|w| *w = 0.0);
        let mut sparse_sigma = vec![0.05; 64];
        sparse_sigma.iter_mut().step_by(3).for_each(|s| *s = 0.0);
        let layers = vec![
            Layer::BayesianDense(BayesianDense::new(5, 8, values(40, 1.0), vec![0.1; 40], vec![0.0; 8], vec![0.01; 8])),
            Layer::Activation(Activation::Relu),
            Layer::Dropout(Dropout::new(0.2)),
            Layer::BayesianDense(BayesianDense::new(8, 8, sparse_mu, sparse_sigma, vec![0.1; 8], vec![0.0; 8]).sparsified()),
            Layer::Activation(Activation::Tanh),
            Layer::Dense(Dense::new(8, 3, values(24, 0.5), vec![0.0; 3])),
        ];
        let task = Task::Classification { classes: 3, labels: vec![] };
        Model::new(layers, task, None, Provenance::default()).expect("valid fuzz model")
    })
}

fn cnn() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let values = |n: usize, scale: f32| (0..n).map(|i| scale * ((i * 7919 % 23) as f32 - 11.0) / 11.0).collect::<Vec<_>>();
        let pool = |kind, geometry| Layer::Pool2d(Pool2d { kind, geometry });
        let layers = vec![
            Layer::BayesianConv2d(BayesianConv2d::new(
                ConvGeometry::new(1, 2, [3, 3]).padding([1, 1]),
                values(18, 1.0),
                vec![0.1; 18],
                vec![0.0; 2],
                vec![0.01; 2],
            )),
            Layer::Activation(Activation::Relu),
            pool(PoolKind::Max, PoolGeometry::new([2, 2])),
            Layer::Conv2d(Conv2d::new(ConvGeometry::new(2, 2, [1, 1]).groups(2), vec![1.0, -0.5], vec![0.0, 0.1])),
            pool(PoolKind::Avg, PoolGeometry::new([2, 2]).stride([1, 1]).padding([1, 1])),
            Layer::Flatten,
            Layer::BayesianDense(BayesianDense::new(18, 3, values(54, 0.5), vec![0.05; 54], vec![0.0; 3], vec![0.01; 3])),
        ];
        let task = Task::Classification { classes: 3, labels: vec![] };
        Model::new_image(layers, [1, 4, 4], task, None, Provenance::default()).expect("valid fuzz CNN")
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let samplers = [Sampler::LocalReparam, Sampler::WeightSampling, Sampler::Mean, Sampler::SharedWeights];
    let sampler = samplers[usize::from(data[0] % 4)];
    let mut options = PredictOptions::default().sampler(sampler).seed(u64::from(data[1]));
    options = if data[2] & 1 == 0 {
        options.samples(usize::from(data[3] % 40))
    } else {
        options.adaptive(usize::from(data[3] % 40), f32::from(data[2]) / 2000.0)
    };
    let input: Vec<f32> = data[4..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let model = if data[2] & 2 == 0 { model() } else { cnn() };
    if let Ok(p) = model.predict(&input, &options) {
        let c = p.as_classification().expect("a classifier classifies");
        let total: f32 = c.probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
        assert!(c.mutual_information >= 0.0 && c.expected_entropy >= 0.0);
        assert_eq!(c.predictive_entropy, c.expected_entropy + c.mutual_information);
    }
    // The same values as a batch (any length: a ragged one is an error, not a panic).
    if let Ok(batch) = model.predict_batch(&input, &options) {
        assert_eq!(batch.len(), input.len() / model.input_dim());
    }
});
