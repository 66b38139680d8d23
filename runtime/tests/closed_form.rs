//! One Bayesian dense layer with identity output has an exact predictive distribution: for input x, output j
//! is Gaussian with mean x . mu_j + mu_bj and variance sum_i x_i^2 sigma_ij^2 + sigma_bj^2. Both Monte-Carlo
//! samplers must reproduce it within tolerances derived from the sample size.

mod common;

use bnn_runtime::{BayesianDense, Layer, Model, NoiseModel, PredictOptions, Provenance, Sampler, Task};

const S: usize = 20_000;

fn single_layer() -> (Model, Vec<f32>, Vec<f64>, Vec<f64>) {
    let (i, o) = (5, 3);
    let w_mu: Vec<f32> = (0..i * o).map(|k| ((k as f32) * 0.7).sin()).collect();
    let w_sigma: Vec<f32> = (0..i * o).map(|k| 0.05 + 0.1 * ((k % 4) as f32)).collect();
    let b_mu = vec![0.3, -0.2, 1.0];
    let b_sigma = vec![0.1, 0.0, 0.2];
    let x = vec![0.5f32, -1.0, 2.0, 0.0, 1.5];
    let mean: Vec<f64> =
        (0..o).map(|j| b_mu[j] as f64 + (0..i).map(|k| (x[k] * w_mu[j * i + k]) as f64).sum::<f64>()).collect();
    let var: Vec<f64> = (0..o)
        .map(|j| {
            (b_sigma[j] as f64).powi(2) + (0..i).map(|k| ((x[k] * w_sigma[j * i + k]) as f64).powi(2)).sum::<f64>()
        })
        .collect();
    let layer = BayesianDense::new(i, o, w_mu, w_sigma, b_mu, b_sigma);
    let task = Task::Regression { outputs: o, noise: NoiseModel::Homoscedastic { sigma: 0.25 } };
    let model = Model::new(vec![Layer::BayesianDense(layer)], task, None, Provenance::default()).unwrap();
    (model, x, mean, var)
}

fn check_sampler(sampler: Sampler) {
    let (model, x, mean, var) = single_layer();
    let p = model.predict(&x, &PredictOptions::default().samples(S).seed(11).sampler(sampler)).unwrap();
    let r = p.as_regression().unwrap();
    assert_eq!(r.samples_used, S);
    #[allow(clippy::needless_range_loop)] // j indexes four parallel vectors
    for j in 0..mean.len() {
        // Standard error of a sample mean: sqrt(v / S); of a Gaussian sample variance: v sqrt(2 / S).
        let mean_tol = 5.0 * (var[j] / S as f64).sqrt();
        let var_tol = 5.0 * var[j] * (2.0 / S as f64).sqrt();
        assert!(
            (r.mean[j] as f64 - mean[j]).abs() < mean_tol,
            "{sampler:?} output {j}: mean {} vs {}",
            r.mean[j],
            mean[j]
        );
        assert!(
            (r.epistemic_variance[j] as f64 - var[j]).abs() < var_tol,
            "{sampler:?} output {j}: variance {} vs {}",
            r.epistemic_variance[j],
            var[j]
        );
        assert_eq!(r.aleatoric_variance[j], 0.25 * 0.25);
    }
}

#[test]
fn local_reparam_matches_the_exact_predictive_mean_and_variance() {
    check_sampler(Sampler::LocalReparam);
}

#[test]
fn weight_sampling_matches_the_exact_predictive_mean_and_variance() {
    check_sampler(Sampler::WeightSampling);
}

#[test]
fn shared_weights_match_the_exact_predictive_mean_and_variance() {
    check_sampler(Sampler::SharedWeights);
}

#[test]
fn mean_sampler_returns_the_exact_mean_with_zero_epistemic_variance() {
    let (model, x, mean, _) = single_layer();
    let p = model.predict(&x, &PredictOptions::default().sampler(Sampler::Mean)).unwrap();
    let r = p.as_regression().unwrap();
    for (j, m) in mean.iter().enumerate() {
        assert!((r.mean[j] as f64 - m).abs() < 1e-5);
        assert_eq!(r.epistemic_variance[j], 0.0);
    }
    assert_eq!(r.samples_used, 1);
}
