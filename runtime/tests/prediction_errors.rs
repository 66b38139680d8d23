//! Bad prediction requests are typed errors, never panics.

mod common;

use bnn_runtime::{PredictError, PredictOptions, Task};

#[test]
fn bad_inputs_and_options_are_rejected_with_clear_errors() {
    let m = common::bayesian_mlp(1, &[3, 4, 2], Task::Classification { classes: 2, labels: vec![] }, 0.1);
    let ok = PredictOptions::default();
    assert_eq!(m.predict(&[1.0, 2.0], &ok), Err(PredictError::InputLength { expected: 3, found: 2 }));
    assert!(matches!(m.predict(&[1.0, f32::NAN, 0.0], &ok), Err(PredictError::NonFiniteInput { index: 1, .. })));
    assert!(matches!(m.predict(&[f32::INFINITY, 0.0, 0.0], &ok), Err(PredictError::NonFiniteInput { index: 0, .. })));
    assert!(matches!(m.predict(&[1.0; 3], &ok.samples(0)), Err(PredictError::InvalidOptions(_))));
    assert!(matches!(m.predict(&[1.0; 3], &ok.adaptive(0, 0.1)), Err(PredictError::InvalidOptions(_))));
    assert!(matches!(m.predict(&[1.0; 3], &ok.adaptive(10, 0.0)), Err(PredictError::InvalidOptions(_))));
    assert!(matches!(m.predict(&[1.0; 3], &ok.adaptive(10, f32::NAN)), Err(PredictError::InvalidOptions(_))));
    assert!(matches!(m.predict(&[1.0; 3], &ok.interval_level(1.0)), Err(PredictError::InvalidOptions(_))));
    assert_eq!(m.predict_batch(&[1.0; 4], &ok), Err(PredictError::BatchLength { input_dim: 3, found: 4 }));
    assert_eq!(m.predict_batch(&[], &ok), Ok(vec![]));
}

#[test]
fn an_overflowing_network_reports_a_non_finite_output() {
    use bnn_runtime::{Dense, Layer, Model, NoiseModel, Provenance};
    let layer = Layer::Dense(Dense::new(1, 1, vec![10.0], vec![0.0]));
    let task = Task::Regression { outputs: 1, noise: NoiseModel::Homoscedastic { sigma: 1.0 } };
    let m = Model::new(vec![layer], task, None, Provenance::default()).unwrap();
    assert_eq!(m.predict(&[3.0e38], &PredictOptions::default()), Err(PredictError::NonFiniteOutput));
}

#[test]
fn huge_finite_inputs_overflow_into_an_error_not_a_confident_answer() {
    // A 1-16-16-1 Bayesian MLP. Local reparameterization overflows f32 at 1e22 (its variance products
    // x^2 sigma^2), weight sampling near f32::MAX (x w); ReLU would turn the resulting -inf and NaN into 0 and
    // a confident prediction. Both must refuse instead, in the single-sample, block and batch paths alike; a
    // large but representable input still predicts.
    use bnn_runtime::{NoiseModel, Sampler};
    let task = Task::Regression { outputs: 1, noise: NoiseModel::Homoscedastic { sigma: 0.1 } };
    let m = common::bayesian_mlp(3, &[1, 16, 16, 1], task, 0.2);
    for (sampler, huge) in [(Sampler::LocalReparam, [1.0e22, -1.0e30]), (Sampler::WeightSampling, [3.0e38, -3.0e38])] {
        for samples in [1, 32, 100] {
            let o = PredictOptions::default().sampler(sampler).samples(samples);
            for x in huge {
                assert_eq!(m.predict(&[x], &o), Err(PredictError::NonFiniteOutput), "{sampler:?}, S = {samples}, {x}");
            }
            assert!(m.predict(&[1.0e3], &o).is_ok(), "{sampler:?}, S = {samples}");
            assert_eq!(m.predict_batch(&[0.5, huge[0]], &o).err(), Some(PredictError::NonFiniteOutput));
        }
    }
}

#[test]
fn an_overflowing_convolution_is_an_error_in_every_sampler() {
    // One Bayesian 1x1 kernel of mean -10 on a 4x4 image, a ReLU, 2x2 max pooling and a dense head: one pixel of
    // 3e38 gives -inf at one position, which a ReLU turns into 0 and pooling then hides among the other zeros —
    // a confident answer. (The block sampler pools before it applies that ReLU.) Every sampler must refuse.
    use bnn_runtime::{
        Activation, BayesianConv2d, ConvGeometry, Dense, Layer, Model, Pool2d, PoolGeometry, PoolKind, Provenance,
        Sampler,
    };
    let conv = BayesianConv2d::new(ConvGeometry::new(1, 1, [1, 1]), vec![-10.0], vec![0.01], vec![0.0], vec![0.01]);
    let layers = vec![
        Layer::BayesianConv2d(conv),
        Layer::Activation(Activation::Relu),
        Layer::Pool2d(Pool2d { kind: PoolKind::Max, geometry: PoolGeometry::new([2, 2]) }),
        Layer::Flatten,
        Layer::Dense(Dense::new(4, 2, vec![1.0, -1.0, 0.5, 0.0, 0.0, 1.0, -0.5, 2.0], vec![0.1, -0.1])),
    ];
    let task = Task::Classification { classes: 2, labels: vec![] };
    let m = Model::new_image(layers, [1, 4, 4], task, None, Provenance::default()).unwrap();
    let mut image = vec![0.5f32; 16];
    for sampler in [Sampler::Mean, Sampler::LocalReparam, Sampler::WeightSampling, Sampler::SharedWeights] {
        let o = PredictOptions::default().sampler(sampler).samples(32);
        image[5] = 0.5;
        assert!(m.predict(&image, &o).is_ok(), "{sampler:?}");
        image[5] = 3.0e38;
        assert_eq!(m.predict(&image, &o), Err(PredictError::NonFiniteOutput), "{sampler:?}");
        let batch: Vec<f32> = [0.5; 16].into_iter().chain(image.iter().copied()).collect();
        assert_eq!(m.predict_batch(&batch, &o).err(), Some(PredictError::NonFiniteOutput), "{sampler:?}");
    }
}
