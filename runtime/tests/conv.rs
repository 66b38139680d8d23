//! Bayesian convolutions against mathematics. One Bayesian convolution has an exact predictive distribution:
//! output `(o, p)` is Gaussian with mean `mu_o . x_p + mu_bo` and variance `sigma_o^2 . x_p^2 + sigma_bo^2`
//! (`x_p` the input patch of position `p`), and two positions of one channel share the kernel, so their
//! covariance is `sigma_o^2 . (x_p x_q) + sigma_bo^2`. Independent noise per output position (local
//! reparameterization, exact only for dense layers) would give covariance 0: the covariance check fails for it.
//! Then a small CNN: the block sampler and the weight-sampling reference agree on the class probabilities; the
//! model survives the file format; the loader rejects impossible geometries with the layer's index.

mod common;

use bnn_runtime::{
    BayesianConv2d, ConvGeometry, Dense, Layer, Model, ModelError, ModelWriter, NoiseModel, PoolKind, PredictOptions,
    Predictor, Provenance, Sampler, StorageDtype, Task,
};

const S: usize = 20_000;

/// A one-convolution model, its input and its posterior parameters.
struct SingleConv {
    model: Model,
    x: Vec<f32>,
    g: ConvGeometry,
    w_mu: Vec<f32>,
    w_sigma: Vec<f32>,
    b_mu: Vec<f32>,
    b_sigma: Vec<f32>,
}

/// A 2-channel 4x5 image through a 3x3 Bayesian convolution (2 -> 2 channels, padding 1) and an identity dense
/// layer over the 2x4x5 outputs: the head is the convolution's output. `pruned`: every third kernel weight has
/// mu = sigma = 0 (the samplers then draw noise for the others only).
fn single_conv(pruned: bool) -> SingleConv {
    let g = ConvGeometry::new(2, 2, [3, 3]).padding([1, 1]);
    let n = g.weight_count().unwrap();
    let kept = |k: usize, v: f32| if pruned && k % 3 == 1 { 0.0 } else { v };
    let w_mu: Vec<f32> = (0..n).map(|k| kept(k, ((k as f32) * 0.7).sin() * 0.5)).collect();
    let w_sigma: Vec<f32> = (0..n).map(|k| kept(k, 0.05 + 0.1 * ((k % 4) as f32))).collect();
    let (b_mu, b_sigma) = (vec![0.3, -0.2], vec![0.1, 0.2]);
    let x: Vec<f32> = (0..40).map(|k| ((k as f32) * 0.37).cos()).collect();
    let outputs = 2 * 4 * 5;
    let identity: Vec<f32> =
        (0..outputs * outputs).map(|k| if k / outputs == k % outputs { 1.0 } else { 0.0 }).collect();
    let layers = vec![
        Layer::BayesianConv2d(BayesianConv2d::new(g, w_mu.clone(), w_sigma.clone(), b_mu.clone(), b_sigma.clone())),
        Layer::Flatten,
        Layer::Dense(Dense::new(outputs, outputs, identity, vec![0.0; outputs])),
    ];
    let task = Task::Regression { outputs, noise: NoiseModel::Homoscedastic { sigma: 0.1 } };
    let model = Model::new_image(layers, [2, 4, 5], task, None, Provenance::default()).unwrap();
    SingleConv { model, x, g, w_mu, w_sigma, b_mu, b_sigma }
}

/// The input patch of output position `(y, x)` (zeros where padded), in the kernel's weight order.
fn patch(x: &[f32], y: usize, xx: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for c in 0..2 {
        for ky in 0..3 {
            for kx in 0..3 {
                let (iy, ix) = (y as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                let inside = (0..4).contains(&iy) && (0..5).contains(&ix);
                out.push(if inside { x[(c * 4 + iy as usize) * 5 + ix as usize] as f64 } else { 0.0 });
            }
        }
    }
    out
}

#[test]
fn one_bayesian_convolution_has_the_exact_means_variances_and_covariances() {
    for (pruned, sampler) in
        [false, true].into_iter().flat_map(|p| [(p, Sampler::LocalReparam), (p, Sampler::WeightSampling)])
    {
        let SingleConv { model, x, g, w_mu, w_sigma, b_mu, b_sigma } = single_conv(pruned);
        let per_out = g.weight_count().unwrap() / 2;
        let mut draws = Vec::new();
        Predictor::new(&model).sample_outputs(&x, sampler, 3, S, &mut draws).unwrap();
        let head = 40;
        let column = |j: usize| draws.iter().skip(j).step_by(head).map(|v| *v as f64).collect::<Vec<f64>>();
        for o in 0..2 {
            let (mu, sigma) = (&w_mu[o * per_out..(o + 1) * per_out], &w_sigma[o * per_out..(o + 1) * per_out]);
            let positions = [(0usize, 0usize), (1, 2), (3, 4)];
            for (p, &(y, xx)) in positions.iter().enumerate() {
                let xp = patch(&x, y, xx);
                let mean = b_mu[o] as f64 + xp.iter().zip(mu).map(|(a, m)| a * *m as f64).sum::<f64>();
                let var = (b_sigma[o] as f64).powi(2)
                    + xp.iter().zip(sigma).map(|(a, s)| (a * *s as f64).powi(2)).sum::<f64>();
                let samples = column((o * 4 + y) * 5 + xx);
                let (m, v) = common::moments(samples.iter().copied());
                assert!(
                    (m - mean).abs() < 5.0 * (var / S as f64).sqrt(),
                    "{sampler:?} pruned {pruned} ({o},{y},{xx}): {m} vs {mean}"
                );
                assert!(
                    (v - var).abs() < 5.0 * var * (2.0 / S as f64).sqrt(),
                    "{sampler:?} pruned {pruned}: {v} vs {var}"
                );
                // The next position of the same channel shares the kernel.
                let (y2, x2) = positions[(p + 1) % positions.len()];
                let xq = patch(&x, y2, x2);
                let cov = (b_sigma[o] as f64).powi(2)
                    + xp.iter().zip(&xq).zip(sigma).map(|((a, b), s)| a * b * (*s as f64).powi(2)).sum::<f64>();
                let other = column((o * 4 + y2) * 5 + x2);
                let mean_q = common::moments(other.iter().copied()).0;
                let products: Vec<f64> = samples.iter().zip(&other).map(|(a, b)| (a - m) * (b - mean_q)).collect();
                let (c, c_var) = common::moments(products.iter().copied());
                let se = (c_var / S as f64).sqrt();
                assert!((c - cov).abs() < 5.0 * se, "{sampler:?} pruned {pruned} covariance: {c} vs {cov} (se {se})");
                // The check has power: covariance 0 (independent noise per position) lies far outside it.
                assert!(
                    cov.abs() > 10.0 * se,
                    "{sampler:?} pruned {pruned}: covariance {cov} too small to tell (se {se})"
                );
            }
        }
    }
}

fn image() -> Vec<f32> {
    common::cnn_image()
}

#[test]
fn the_block_sampler_and_weight_sampling_agree_on_a_small_cnn() {
    for pool in [PoolKind::Max, PoolKind::Avg] {
        let model = common::bayesian_cnn(pool);
        let mut probs = Vec::new();
        for sampler in [Sampler::LocalReparam, Sampler::WeightSampling] {
            let mut logits = Vec::new();
            Predictor::new(&model).sample_outputs(&image(), sampler, 8, S, &mut logits).unwrap();
            let p: Vec<Vec<f64>> = logits
                .chunks_exact(3)
                .map(|l| {
                    let e: Vec<f64> = l.iter().map(|v| (*v as f64).exp()).collect();
                    e.iter().map(|v| v / e.iter().sum::<f64>()).collect()
                })
                .collect();
            probs.push(p);
        }
        for k in 0..3 {
            let (a, b) = (probs[0].iter().map(|p| p[k]), probs[1].iter().map(|p| p[k]));
            let ((ma, va), (mb, vb)) = (common::moments(a), common::moments(b));
            let se = ((va + vb) / S as f64).sqrt();
            assert!((ma - mb).abs() < 5.0 * se, "{pool:?} class {k}: {ma} vs {mb} (se {se})");
            assert!(va > 1e-4, "{pool:?} class {k}: the probabilities should vary ({va})");
        }
    }
}

#[test]
fn a_cnn_survives_the_file_format_bit_for_bit() {
    let model = common::bayesian_cnn(PoolKind::Max);
    let options = PredictOptions::default().samples(40).seed(5);
    let want = model.predict(&image(), &options).unwrap();
    let bytes = ModelWriter::new(&model).to_bytes().unwrap();
    let loaded = Model::from_bytes(&bytes).unwrap();
    assert_eq!(loaded, model);
    assert_eq!(loaded.input_shape(), bnn_runtime::Shape::Image([1, 8, 8]));
    assert_eq!(loaded.predict(&image(), &options).unwrap(), want);
    // f16 storage: the same model up to rounding of its parameters.
    let half = Model::from_bytes(&ModelWriter::new(&model).dtype(StorageDtype::F16).to_bytes().unwrap()).unwrap();
    let p = half.predict(&image(), &options).unwrap();
    let (a, b) = (p.as_classification().unwrap(), want.as_classification().unwrap());
    for (x, y) in a.probabilities.iter().zip(&b.probabilities) {
        assert!((x - y).abs() < 0.02, "{x} vs {y}");
    }
}

#[test]
fn impossible_geometries_are_rejected_with_the_layer_index() {
    let bytes = ModelWriter::new(&common::bayesian_cnn(PoolKind::Max)).to_bytes().unwrap();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|d| d["layers"][0]["groups"] = 3.into()), "layer 0: groups"),
        (Box::new(|d| d["input_shape"] = serde_json::json!([1, 2, 8])), "layer 0: a [3, 3] kernel"),
        (Box::new(|d| d["layers"][0]["kernel"] = serde_json::json!([9, 3])), "expected shape [4, 1, 9, 3]"),
        (Box::new(|d| d["layers"][0]["stride"] = serde_json::json!([0, 1])), "layer 0: every"),
        (Box::new(|d| d["layers"][2]["padding"] = serde_json::json!([2, 0])), "layer 2: pooling padding"),
        (Box::new(|d| d["input_shape"] = serde_json::json!([2, 8, 8])), "layer 0: expects 1 inputs"),
        (Box::new(|d| d["input_shape"] = serde_json::json!([1, 0, 8])), "input shape"),
        (Box::new(|d| d["input_shape"] = serde_json::json!([1, usize::MAX / 2, 8])), "invalid input shape"),
        (
            Box::new(|d| d.as_object_mut().unwrap().remove("input_shape").map(drop).unwrap_or(())),
            "layer 0: convolution",
        ),
        (
            Box::new(|d| d["layers"][3] = serde_json::json!({"kind": "activation", "function": "identity"})),
            "layer 4: a dense layer needs a flat input",
        ),
        (Box::new(|d| d["layers"][0]["kind"] = "max_pool2d".into()), "unexpected tensor `layers.0."),
    ];
    for (edit, want) in cases {
        let err = Model::from_bytes(&common::edit_description(&bytes, edit)).unwrap_err();
        assert!(err.to_string().contains(want), "{err} (wanted `{want}`)");
        assert!(!matches!(err, ModelError::MalformedFile(_)), "{err}");
    }
}

#[test]
fn no_single_bit_flip_or_truncation_of_a_cnn_file_makes_the_runtime_panic() {
    let bytes = ModelWriter::new(&common::bayesian_cnn(PoolKind::Avg)).dtype(StorageDtype::F16).to_bytes().unwrap();
    let step = if cfg!(miri) { 97 } else { 1 };
    let (mut loaded, mut predicted) = (0, 0);
    for i in (0..bytes.len()).step_by(step) {
        for bit in [0, 2, 5] {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            // A file that still loads (a flipped weight, an input shape the layers still fit) must predict.
            if let Ok(model) = Model::from_bytes(&b) {
                loaded += 1;
                let input = vec![0.5; model.input_dim()];
                for options in [PredictOptions::default().sampler(Sampler::Mean), PredictOptions::default().samples(4)]
                {
                    predicted += usize::from(model.predict(&input, &options).is_ok());
                }
            }
        }
        let _ = Model::from_bytes(&bytes[..i]);
    }
    assert!(loaded > 0 && predicted > 0, "{loaded} {predicted}");
}
