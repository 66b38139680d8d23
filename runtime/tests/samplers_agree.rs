//! Local reparameterization is exact in distribution for a single input, so on a multi-layer ReLU network
//! it must agree with the reference weight sampler: same output means and variances, within tolerances
//! derived from the sample size and the samples' own fourth moments.

mod common;

use bnn_runtime::{NoiseModel, Predictor, Sampler, Task};

const S: usize = 20_000;

fn output_samples(p: &mut Predictor, x: &[f32], sampler: Sampler, seed: u64) -> Vec<f32> {
    let mut out = Vec::new();
    p.sample_outputs(x, sampler, seed, S, &mut out).unwrap();
    out
}

/// Mean, variance, and the standard errors of both.
fn summary(xs: &[f64]) -> (f64, f64, f64, f64) {
    let (m, v) = common::moments(xs.iter().copied());
    let m4 = xs.iter().map(|x| (x - m).powi(4)).sum::<f64>() / xs.len() as f64;
    let n = xs.len() as f64;
    (m, v, (v / n).sqrt(), ((m4 - v * v).max(0.0) / n).sqrt())
}

#[test]
fn local_reparam_and_weight_sampling_agree_in_distribution_on_a_relu_network() {
    let task = Task::Regression { outputs: 2, noise: NoiseModel::Homoscedastic { sigma: 0.1 } };
    let model = common::bayesian_mlp(5, &[4, 16, 8, 2], task, 0.3);
    let x = [0.8f32, -0.4, 1.2, 0.1];
    let mut p = Predictor::new(&model);
    let lrt = output_samples(&mut p, &x, Sampler::LocalReparam, 1);
    let ws = output_samples(&mut p, &x, Sampler::WeightSampling, 2);
    for j in 0..2 {
        let column = |v: &[f32]| v.iter().skip(j).step_by(2).map(|x| *x as f64).collect::<Vec<_>>();
        let (m1, v1, se_m1, se_v1) = summary(&column(&lrt));
        let (m2, v2, se_m2, se_v2) = summary(&column(&ws));
        assert!(v1 > 1e-3, "the test network must be noticeably stochastic");
        let tol_m = 5.0 * (se_m1.powi(2) + se_m2.powi(2)).sqrt();
        let tol_v = 5.0 * (se_v1.powi(2) + se_v2.powi(2)).sqrt();
        assert!((m1 - m2).abs() < tol_m, "output {j}: means {m1} vs {m2} (tol {tol_m})");
        assert!((v1 - v2).abs() < tol_v, "output {j}: variances {v1} vs {v2} (tol {tol_v})");
    }
}

#[test]
fn local_reparam_and_weight_sampling_agree_on_class_probabilities() {
    let model = common::bayesian_mlp(9, &[3, 12, 4], Task::Classification { classes: 4, labels: vec![] }, 0.4);
    let x = [0.5f32, -1.0, 0.7];
    let opts = bnn_runtime::PredictOptions::default().samples(S);
    let a = model.predict(&x, &opts.sampler(Sampler::LocalReparam).seed(3)).unwrap();
    let b = model.predict(&x, &opts.sampler(Sampler::WeightSampling).seed(4)).unwrap();
    let (a, b) = (a.as_classification().unwrap(), b.as_classification().unwrap());
    for (pa, pb) in a.probabilities.iter().zip(&b.probabilities) {
        // A probability's sample standard deviation is at most 1/2, so its mean's standard error is <= 0.5/sqrt(S).
        let tol = 5.0 * (2.0f64).sqrt() * 0.5 / (S as f64).sqrt();
        assert!(((pa - pb) as f64).abs() < tol, "{pa} vs {pb}");
    }
    assert!(a.mutual_information > 0.0 && b.mutual_information > 0.0);
    assert!(((a.mutual_information - b.mutual_information) / a.mutual_information).abs() < 0.1);
}
