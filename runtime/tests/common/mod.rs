//! Shared builders for the runtime's integration tests: random models and a rewriter for crafting bad files.
#![allow(dead_code)]

use bnn_runtime::{
    Activation, BayesianConv2d, BayesianDense, ConvGeometry, Layer, Model, ModelWriter, Pool2d, PoolGeometry, PoolKind,
    Provenance, SeededRng, Task,
};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;

/// A Bayesian MLP `sizes[0] -> ... -> sizes[last]` with ReLU between layers; means ~ N(0, 1/fan_in),
/// standard deviations uniform in [0, sigma_max].
pub fn bayesian_mlp(seed: u64, sizes: &[usize], task: Task, sigma_max: f32) -> Model {
    let mut rng = SeededRng::new(seed);
    let mut layers = Vec::new();
    for (k, w) in sizes.windows(2).enumerate() {
        let (i, o) = (w[0], w[1]);
        let scale = 1.0 / (i as f32).sqrt();
        let mut draw =
            |n: usize, f: &mut dyn FnMut(&mut SeededRng) -> f32| (0..n).map(|_| f(&mut rng)).collect::<Vec<_>>();
        let w_mu = draw(o * i, &mut |r| r.gaussian() * scale);
        let w_sigma = draw(o * i, &mut |r| r.uniform() * sigma_max);
        let b_mu = draw(o, &mut |r| r.gaussian() * 0.1);
        let b_sigma = draw(o, &mut |r| r.uniform() * sigma_max);
        layers.push(Layer::BayesianDense(BayesianDense::new(i, o, w_mu, w_sigma, b_mu, b_sigma)));
        if k + 2 < sizes.len() {
            layers.push(Layer::Activation(Activation::Relu));
        }
    }
    Model::new(layers, task, None, Provenance::default()).expect("valid test model")
}

/// A 1x8x8 image through a Bayesian 3x3 convolution (4 channels), ReLU, 2x2 max pooling, flatten, a Bayesian
/// dense layer to 3 classes.
pub fn bayesian_cnn(pool: PoolKind) -> Model {
    let g = ConvGeometry::new(1, 4, [3, 3]);
    let n = g.weight_count().unwrap();
    let wave = |k: usize, f: f32| ((k as f32) * f).sin();
    let conv = BayesianConv2d::new(
        g,
        (0..n).map(|k| wave(k, 0.9)).collect(),
        (0..n).map(|k| 0.1 + 0.2 * wave(k, 0.3).abs()).collect(),
        vec![0.1, -0.1, 0.0, 0.2],
        vec![0.05; 4],
    );
    let (i, o) = (4 * 3 * 3, 3);
    let dense = BayesianDense::new(
        i,
        o,
        (0..i * o).map(|k| wave(k, 0.45)).collect(),
        (0..i * o).map(|k| 0.1 + 0.1 * wave(k, 0.17).abs()).collect(),
        vec![0.0, 0.1, -0.1],
        vec![0.05; 3],
    );
    let layers = vec![
        Layer::BayesianConv2d(conv),
        Layer::Activation(Activation::Relu),
        Layer::Pool2d(Pool2d { kind: pool, geometry: PoolGeometry::new([2, 2]) }),
        Layer::Flatten,
        Layer::BayesianDense(dense),
    ];
    let task = Task::Classification { classes: 3, labels: vec![] };
    Model::new_image(layers, [1, 8, 8], task, None, Provenance::default()).unwrap()
}

/// An 8x8 image for [`bayesian_cnn`].
pub fn cnn_image() -> Vec<f32> {
    (0..64).map(|k| ((k as f32) * 0.31).sin().abs()).collect()
}

pub fn to_bytes(model: &Model) -> Vec<u8> {
    ModelWriter::new(model).to_bytes().expect("writable")
}

/// One stored tensor, editable.
pub struct RawTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Decodes a file into metadata and tensors, lets `edit` change them, and re-encodes (without validation).
pub fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut HashMap<String, String>, &mut Vec<RawTensor>)) -> Vec<u8> {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap_or_default();
    let mut tensors: Vec<RawTensor> = file
        .tensors()
        .into_iter()
        .map(|(name, v)| RawTensor { name, dtype: v.dtype(), shape: v.shape().to_vec(), data: v.data().to_vec() })
        .collect();
    edit(&mut meta, &mut tensors);
    let views: Vec<(String, TensorView)> =
        tensors.iter().map(|t| (t.name.clone(), TensorView::new(t.dtype, t.shape.clone(), &t.data).unwrap())).collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

/// Edits the JSON model description of a file.
pub fn edit_description(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    rewrite(bytes, |meta, _| {
        let mut json: serde_json::Value = serde_json::from_str(&meta["bnn.model"]).unwrap();
        edit(&mut json);
        meta.insert("bnn.model".into(), json.to_string());
    })
}

/// Mean and population variance.
pub fn moments(xs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = xs.clone().count() as f64;
    let mean = xs.clone().sum::<f64>() / n;
    let var = xs.map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}
