//! Identities of the uncertainty split that hold for every model (fixed cases, and a property test over random
//! architectures, tasks, samplers, sample counts, seeds and inputs): total = aleatoric + epistemic exactly,
//! and with every sigma zero the epistemic part vanishes and every sampler equals `Mean` (bit for bit for
//! weight sampling, which shares `Mean`'s kernels; to float rounding for local reparameterization, whose
//! blocks of samples go through a matrix product that sums in another order).

mod common;

use bnn_runtime::{BayesianDense, Layer, Model, NoiseModel, PredictOptions, Prediction, Provenance, Sampler, Task};
use proptest::prelude::*;

const SAMPLERS: [Sampler; 4] = [Sampler::LocalReparam, Sampler::WeightSampling, Sampler::Mean, Sampler::SharedWeights];

fn tasks() -> Vec<Task> {
    vec![
        Task::Classification { classes: 3, labels: vec![] },
        Task::Regression { outputs: 3, noise: NoiseModel::Homoscedastic { sigma: 0.2 } },
        Task::Regression { outputs: 3, noise: NoiseModel::Heteroscedastic },
    ]
}

fn head(task: &Task) -> usize {
    task.head_width()
}

fn assert_split_is_exact(p: &Prediction) {
    match p {
        Prediction::Classification(c) => {
            assert_eq!(c.predictive_entropy, c.expected_entropy + c.mutual_information);
            assert!(c.mutual_information >= 0.0 && c.expected_entropy >= 0.0);
            assert!((c.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        Prediction::Regression(r) => {
            for k in 0..r.mean.len() {
                assert_eq!(r.total_variance[k], r.aleatoric_variance[k] + r.epistemic_variance[k]);
                assert!(r.lower[k] <= r.mean[k] && r.mean[k] <= r.upper[k]);
            }
        }
    }
}

#[test]
fn total_uncertainty_is_aleatoric_plus_epistemic_exactly() {
    for (seed, task) in tasks().into_iter().enumerate() {
        let h = head(&task);
        let model = common::bayesian_mlp(seed as u64, &[5, 10, h], task, 0.5);
        for sampler in SAMPLERS {
            for s in [1, 2, 17, 200] {
                let p = model
                    .predict(&[0.1, -2.0, 0.5, 1.0, 3.0], &PredictOptions::default().samples(s).sampler(sampler))
                    .unwrap();
                assert_split_is_exact(&p);
            }
        }
    }
}

fn zero_sigma(model: &Model) -> Model {
    let layers = model
        .layers()
        .iter()
        .map(|l| match l {
            Layer::BayesianDense(b) => Layer::BayesianDense(BayesianDense::new(
                b.in_features(),
                b.out_features(),
                b.weight_mu().to_vec(),
                vec![0.0; b.weight_sigma().len()],
                b.bias_mu().to_vec(),
                vec![0.0; b.bias_sigma().len()],
            )),
            other => other.clone(),
        })
        .collect();
    Model::new(layers, model.task().clone(), None, Provenance::default()).unwrap()
}

#[test]
fn with_every_sigma_zero_every_sampler_equals_mean_and_epistemic_is_zero() {
    for (seed, task) in tasks().into_iter().enumerate() {
        let h = head(&task);
        let model = zero_sigma(&common::bayesian_mlp(seed as u64, &[4, 8, 6, h], task, 0.5));
        let x = [1.0, -0.5, 0.25, 2.0];
        let reference = model.predict(&x, &PredictOptions::default().sampler(Sampler::Mean)).unwrap();
        for sampler in [Sampler::LocalReparam, Sampler::WeightSampling, Sampler::SharedWeights] {
            let p = model.predict(&x, &PredictOptions::default().samples(50).sampler(sampler)).unwrap();
            assert_eq!(p.samples_used(), 50);
            let tol = if sampler == Sampler::WeightSampling { 0.0 } else { 1e-5 };
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()));
            match (&p, &reference) {
                (Prediction::Classification(c), Prediction::Classification(m)) => {
                    assert!(close(&c.probabilities, &m.probabilities), "{sampler:?}");
                    assert_eq!(c.mutual_information, 0.0, "{sampler:?} seed {seed}");
                    assert!(close(&[c.expected_entropy], &[m.expected_entropy]));
                }
                (Prediction::Regression(r), Prediction::Regression(m)) => {
                    assert!(close(&r.mean, &m.mean), "{sampler:?}: {:?} vs {:?}", r.mean, m.mean);
                    assert!(r.epistemic_variance.iter().all(|v| *v == 0.0), "{sampler:?}: {:?}", r.epistemic_variance);
                    assert!(close(&r.aleatoric_variance, &m.aleatoric_variance));
                }
                _ => unreachable!(),
            }
        }
    }
}

#[test]
fn heteroscedastic_aleatoric_variance_is_the_mean_predicted_noise_variance() {
    let model = zero_sigma(&common::bayesian_mlp(
        3,
        &[2, 2],
        Task::Regression { outputs: 1, noise: NoiseModel::Heteroscedastic },
        0.0,
    ));
    let x = [0.3, -0.7];
    let mut raw = Vec::new();
    bnn_runtime::Predictor::new(&model).sample_outputs(&x, Sampler::Mean, 0, 1, &mut raw).unwrap();
    let scale = bnn_runtime::heteroscedastic_scale(raw[1]);
    let p = model.predict(&x, &PredictOptions::default().sampler(Sampler::Mean)).unwrap();
    let r = p.as_regression().unwrap();
    assert_eq!(r.mean, vec![raw[0]]);
    assert!((r.aleatoric_variance[0] - scale * scale).abs() < 1e-6 * scale * scale);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_split_is_exact_on_random_models(
        seed in 0u64..10_000,
        hidden in proptest::collection::vec(1usize..20, 0..3),
        inputs in 1usize..12,
        task in 0usize..3,
        head in 1usize..6,
        sampler in 0usize..4,
        samples in 1usize..70,
        sigma_max in 0.0f32..2.0,
    ) {
        let task = match task {
            0 => Task::Classification { classes: head + 1, labels: vec![] },
            1 => Task::Regression { outputs: head, noise: NoiseModel::Homoscedastic { sigma: 0.3 } },
            _ => Task::Regression { outputs: head, noise: NoiseModel::Heteroscedastic },
        };
        let mut sizes = vec![inputs];
        sizes.extend(&hidden);
        sizes.push(task.head_width());
        let model = common::bayesian_mlp(seed, &sizes, task, sigma_max);
        let x: Vec<f32> = (0..inputs).map(|i| ((i as u64 + seed) as f32 * 0.61).sin() * 2.0).collect();
        let options = PredictOptions::default().samples(samples).sampler(SAMPLERS[sampler]).seed(seed);
        assert_split_is_exact(&model.predict(&x, &options).unwrap());
    }
}
