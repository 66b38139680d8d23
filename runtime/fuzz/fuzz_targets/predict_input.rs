//! Fuzz target: prediction with arbitrary inputs (any f32 bit pattern, any length) and options against a valid
//! model with every layer kind (Bayesian dense, pruned-sparse Bayesian dense, dropout, deterministic dense).
//! Must return a prediction or a typed error; a prediction must satisfy the uncertainty identities.
#![no_main]

use bnn_runtime::{Activation, BayesianDense, Dense, Dropout, Layer, Model, PredictOptions, Provenance, Sampler, Task};
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

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let sampler = [Sampler::LocalReparam, Sampler::WeightSampling, Sampler::Mean][usize::from(data[0] % 3)];
    let mut options = PredictOptions::default().sampler(sampler).seed(u64::from(data[1]));
    options = if data[2] & 1 == 0 {
        options.samples(usize::from(data[3] % 40))
    } else {
        options.adaptive(usize::from(data[3] % 40), f32::from(data[2]) / 2000.0)
    };
    let input: Vec<f32> = data[4..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Ok(p) = model().predict(&input, &options) {
        let c = p.as_classification().expect("a classifier classifies");
        let total: f32 = c.probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
        assert!(c.mutual_information >= 0.0 && c.expected_entropy >= 0.0);
        assert_eq!(c.predictive_entropy, c.expected_entropy + c.mutual_information);
    }
});
