//! Models and inputs for the benchmarks: random Bayesian MLPs of the MNIST shape (784-400-400-10) and a
//! wider one (784-1200-1200-10), dense or pruned to a given sparsity by SNR.

use bnn_runtime::{Activation, BayesianDense, Layer, Model, Provenance, SeededRng, Task};

/// The MNIST shape of Blundell et al.'s Table 1.
pub const MNIST: [usize; 4] = [784, 400, 400, 10];
/// The wider MNIST shape.
pub const WIDE: [usize; 4] = [784, 1200, 1200, 10];

/// A classifier with means ~ N(0, 1/fan_in) and standard deviations ~ U[0.001, 0.05], seeded.
pub fn random_model(sizes: &[usize], seed: u64) -> Model {
    let mut rng = SeededRng::new(seed);
    let mut layers = Vec::new();
    for (k, w) in sizes.windows(2).enumerate() {
        let (i, o) = (w[0], w[1]);
        let scale = 1.0 / (i as f32).sqrt();
        let mu: Vec<f32> = (0..i * o).map(|_| rng.gaussian() * scale).collect();
        let sigma: Vec<f32> = (0..i * o).map(|_| 0.001 + 0.049 * rng.uniform()).collect();
        layers.push(Layer::BayesianDense(BayesianDense::new(i, o, mu, sigma, vec![0.0; o], vec![0.01; o])));
        if k + 2 < sizes.len() {
            layers.push(Layer::Activation(Activation::Relu));
        }
    }
    let task = Task::Classification { classes: *sizes.last().expect("sizes"), labels: vec![] };
    Model::new(layers, task, None, Provenance::default()).expect("a valid model")
}

/// `model` with the `sparsity` fraction of weights of lowest SNR removed, stored sparsely.
pub fn pruned(model: &Model, sparsity: f64) -> Model {
    bnn_trainer::prune::prune(model, sparsity, bnn_trainer::prune::Criterion::Snr, 0).expect("prunable").0
}

/// A deterministic input in [0, 1), like a normalised image.
pub fn input(dim: usize) -> Vec<f32> {
    let mut rng = SeededRng::new(99);
    (0..dim).map(|_| rng.uniform()).collect()
}
