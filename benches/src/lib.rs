//! Models and inputs for the benchmarks: random Bayesian MLPs of the MNIST shape (784-400-400-10) and a
//! wider one (784-1200-1200-10), dense or pruned to a given sparsity by SNR, and a Bayesian LeNet-5.

use bnn_runtime::{
    Activation, BayesianConv2d, BayesianDense, ConvGeometry, Layer, Model, Pool2d, PoolGeometry, PoolKind, Provenance,
    SeededRng, Task,
};

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

/// A Bayesian LeNet-5 for 1x28x28 images, every layer Bayesian, as `bnn import --arch
/// 1x28x28-conv6k5p2-maxpool2-conv16k5-maxpool2-flatten-120-84-10` builds it; means ~ N(0, 1/fan_in), standard
/// deviations ~ U[0.001, 0.05], seeded.
pub fn lenet5(seed: u64) -> Model {
    let mut rng = SeededRng::new(seed);
    let mut draw = |n: usize, fan_in: usize| -> (Vec<f32>, Vec<f32>) {
        let scale = 1.0 / (fan_in as f32).sqrt();
        let mu = (0..n).map(|_| rng.gaussian() * scale).collect();
        let sigma = (0..n).map(|_| 0.001 + 0.049 * rng.uniform()).collect();
        (mu, sigma)
    };
    let relu = || Layer::Activation(Activation::Relu);
    let pool = || Layer::Pool2d(Pool2d { kind: PoolKind::Max, geometry: PoolGeometry::new([2, 2]) });
    let mut layers = Vec::new();
    for g in [ConvGeometry::new(1, 6, [5, 5]).padding([2, 2]), ConvGeometry::new(6, 16, [5, 5])] {
        let (mu, sigma) = draw(g.weight_count().expect("small"), g.in_channels * 25);
        layers.push(Layer::BayesianConv2d(BayesianConv2d::new(
            g,
            mu,
            sigma,
            vec![0.0; g.out_channels],
            vec![0.01; g.out_channels],
        )));
        layers.extend([relu(), pool()]);
    }
    layers.push(Layer::Flatten);
    for (i, o) in [(400, 120), (120, 84), (84, 10)] {
        let (mu, sigma) = draw(i * o, i);
        layers.push(Layer::BayesianDense(BayesianDense::new(i, o, mu, sigma, vec![0.0; o], vec![0.01; o])));
        if o != 10 {
            layers.push(relu());
        }
    }
    let task = Task::Classification { classes: 10, labels: vec![] };
    Model::new_image(layers, [1, 28, 28], task, None, Provenance::default()).expect("a valid model")
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
