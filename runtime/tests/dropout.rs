//! MC dropout: a model whose only randomness is dropout is deterministic at p = 0, and at p > 0 its
//! Monte-Carlo mean equals the deterministic (scaled) pass when the network is linear.

use bnn_runtime::{Dense, Dropout, Layer, Model, NoiseModel, PredictOptions, Provenance, Sampler, Task};

fn linear_dropout_model(p: f32) -> Model {
    let layers = vec![
        Layer::Dense(Dense::new(3, 4, (0..12).map(|k| (k as f32 * 0.9).cos()).collect(), vec![0.1, 0.2, -0.3, 0.0])),
        Layer::Dropout(Dropout::new(p)),
        Layer::Dense(Dense::new(4, 1, vec![0.5, -1.0, 2.0, 0.7], vec![0.05])),
    ];
    let task = Task::Regression { outputs: 1, noise: NoiseModel::Homoscedastic { sigma: 0.1 } };
    Model::new(layers, task, None, Provenance::default()).unwrap()
}

#[test]
fn dropout_with_rate_zero_is_deterministic() {
    let model = linear_dropout_model(0.0);
    let x = [1.0, 2.0, -1.0];
    let mean = model.predict(&x, &PredictOptions::default().sampler(Sampler::Mean)).unwrap();
    for sampler in [Sampler::LocalReparam, Sampler::WeightSampling] {
        let p = model.predict(&x, &PredictOptions::default().samples(64).sampler(sampler)).unwrap();
        let (r, m) = (p.as_regression().unwrap(), mean.as_regression().unwrap());
        assert_eq!(r.mean, m.mean);
        assert_eq!(r.epistemic_variance, vec![0.0]);
    }
}

#[test]
fn mc_dropout_mean_matches_the_deterministic_pass_of_a_linear_model() {
    let model = linear_dropout_model(0.3);
    let x = [1.0, 2.0, -1.0];
    let det = model.predict(&x, &PredictOptions::default().sampler(Sampler::Mean)).unwrap();
    let det = det.as_regression().unwrap().mean[0] as f64;
    let s = if cfg!(miri) { 400 } else { 40_000 };
    let p = model.predict(&x, &PredictOptions::default().samples(s).seed(5)).unwrap();
    let r = p.as_regression().unwrap();
    let var = r.epistemic_variance[0] as f64;
    assert!(var > 0.01, "dropout must make the output random (variance {var})");
    let tol = 5.0 * (var / s as f64).sqrt();
    assert!((r.mean[0] as f64 - det).abs() < tol, "MC mean {} vs deterministic {det} (tol {tol})", r.mean[0]);
}

#[test]
fn dropout_zeroes_a_fraction_p_of_units() {
    // Dense identity into dropout into a sum: each sample's output is (number kept) / (1 - p).
    let layers = vec![
        Layer::Dense(Dense::new(1, 100, vec![1.0; 100], vec![0.0; 100])),
        Layer::Dropout(Dropout::new(0.25)),
        Layer::Dense(Dense::new(100, 1, vec![1.0; 100], vec![0.0])),
    ];
    let task = Task::Regression { outputs: 1, noise: NoiseModel::Homoscedastic { sigma: 1.0 } };
    let model = Model::new(layers, task, None, Provenance::default()).unwrap();
    let mut out = Vec::new();
    let n = if cfg!(miri) { 100 } else { 2000 };
    bnn_runtime::Predictor::new(&model).sample_outputs(&[1.0], Sampler::LocalReparam, 9, n, &mut out).unwrap();
    let kept: Vec<f64> = out.iter().map(|y| (*y as f64) * 0.75).collect();
    assert!(kept.iter().all(|k| (k - k.round()).abs() < 1e-3), "outputs are whole numbers of kept units / (1 - p)");
    let mean_kept = kept.iter().sum::<f64>() / kept.len() as f64;
    // Binomial(100, 0.75): mean 75, sd 4.33; sd of the mean over n samples: 4.33 / sqrt(n) (0.097 at 2000).
    assert!((mean_kept - 75.0).abs() < 5.0 * 4.33 / (n as f64).sqrt(), "mean kept {mean_kept}");
}
