//! The trainer and the runtime compute the same network: the runtime's `Mean` prediction equals the
//! trainer's mean-weight forward pass within 1e-5, and their Monte-Carlo predictive means agree within
//! tolerances derived from the sample sizes — for classification, heteroscedastic regression and a Bayesian CNN
//! (whose trainer samples convolutions by Flipout and the runtime by drawing each kernel once per sample).

use bnn_runtime::{Model, ModelWriter, PredictOptions, Sampler};
use bnn_trainer::nn::Noise;
use bnn_trainer::{Recipe, Run};
use candle_core::{Device, Tensor};

fn trained(recipe: &str) -> (Run, Model) {
    let mut run = Run::new(Recipe::from_toml(recipe).unwrap(), None, Device::Cpu).unwrap();
    run.train(None, &mut ()).unwrap();
    let model = run.export().unwrap();
    let model = Model::from_bytes(&ModelWriter::new(&model).to_bytes().unwrap()).unwrap();
    (run, model)
}

const MOONS: &str = r#"
[data]
source = "synthetic"
name = "two_moons"
train_points = 200
test_points = 50
[model]
hidden = [16, 16]
activation = "tanh"
rho_init = -3.0
[training]
epochs = 3
batch_size = 50
learning_rate = 0.01
"#;

const HETERO: &str = r#"
[data]
source = "synthetic"
name = "heteroscedastic"
train_points = 200
test_points = 50
[model]
hidden = [16]
activation = "gelu"
rho_init = -3.0
[likelihood]
kind = "heteroscedastic"
[training]
epochs = 3
batch_size = 50
learning_rate = 0.01
"#;

const BARS_CNN: &str = r#"
[data]
source = "synthetic"
name = "bars"
train_points = 200
test_points = 50
[model]
arch = "1x8x8-conv3k3p1-maxpool2-flatten-8"
rho_init = -3.0
[training]
epochs = 3
batch_size = 50
learning_rate = 0.01
"#;

/// Raw (unnormalised) inputs of the test set, and the same inputs as the trainer sees them.
fn inputs(run: &Run, n: usize) -> Vec<Vec<f32>> {
    let norm = run.normalization.as_ref().unwrap();
    // One entry per feature, or one for all (a global normalisation).
    let entry = |v: &[f32], j: usize| v[j.min(v.len() - 1)];
    (0..n)
        .map(|i| {
            let x = run.split.test.input(i).iter().enumerate();
            x.map(|(j, v)| v * entry(&norm.std, j) + entry(&norm.mean, j)).collect()
        })
        .collect()
}

#[test]
fn runtime_mean_prediction_equals_the_trainer_mean_forward_pass() {
    for recipe in [MOONS, HETERO, BARS_CNN] {
        let (run, model) = trained(recipe);
        for (i, raw) in inputs(&run, 10).iter().enumerate() {
            let x = Tensor::from_slice(run.split.test.input(i), (1, run.split.test.dim), &Device::Cpu).unwrap();
            let trainer: Vec<f32> = run.network.forward_mean(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let mut runtime = Vec::new();
            bnn_runtime::Predictor::new(&model).sample_outputs(raw, Sampler::Mean, 0, 1, &mut runtime).unwrap();
            for (a, b) in trainer.iter().zip(&runtime) {
                assert!((a - b).abs() < 1e-5, "trainer {a} vs runtime {b}");
            }
        }
    }
}

#[test]
fn runtime_and_trainer_monte_carlo_means_agree() {
    for recipe in [MOONS, BARS_CNN] {
        monte_carlo_means_agree(recipe);
    }
}

fn monte_carlo_means_agree(recipe: &str) {
    let (run, model) = trained(recipe);
    let s = 4000;
    for (i, raw) in inputs(&run, 5).iter().enumerate() {
        let x = Tensor::from_slice(run.split.test.input(i), (1, run.split.test.dim), &Device::Cpu).unwrap();
        let mut noise = Noise::new(99, &Device::Cpu);
        let mut mean = [0.0f64; 2];
        for _ in 0..s {
            let logits = run.network.forward_sample(&x, &mut noise).unwrap();
            let p: Vec<f32> =
                candle_nn::ops::softmax_last_dim(&logits).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            mean.iter_mut().zip(&p).for_each(|(m, v)| *m += *v as f64 / s as f64);
        }
        let p = model.predict(raw, &PredictOptions::default().samples(s).seed(5)).unwrap();
        let c = p.as_classification().unwrap();
        // Each estimate's standard error is at most 0.5 / sqrt(S).
        let tol = 5.0 * 2f64.sqrt() * 0.5 / (s as f64).sqrt();
        for (p, m) in c.probabilities.iter().zip(mean) {
            assert!((*p as f64 - m).abs() < tol, "{p} vs {m}");
        }
    }
}
