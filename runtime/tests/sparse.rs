//! Pruned weights are absent, not zero: the writer stores a pruned layer as CSR when that is smaller, the
//! loader validates the pattern, and sparse execution equals dense execution of the same pruned weights —
//! bit for bit for `Mean` and local reparameterization, in distribution for weight sampling.

mod common;

use bnn_runtime::{
    BayesianDense, Layer, Model, ModelError, ModelWriter, NoiseModel, PredictOptions, Predictor, Provenance, Sampler,
    StorageDtype, Task, WeightLayout,
};
use common::{moments, rewrite};
use proptest::prelude::*;
use safetensors::tensor::Dtype;

/// `model` with each Bayesian weight pruned (mu = sigma = 0) with probability `sparsity`.
fn pruned(model: &Model, sparsity: f32, seed: u64) -> Model {
    let mut rng = bnn_runtime::SeededRng::new(seed);
    let layers = model
        .layers()
        .iter()
        .map(|l| match l {
            Layer::BayesianDense(b) => {
                let keep: Vec<bool> = (0..b.weight_mu().len()).map(|_| rng.uniform() >= sparsity).collect();
                let mask = |v: &[f32]| v.iter().zip(&keep).map(|(x, k)| if *k { *x } else { 0.0 }).collect();
                Layer::BayesianDense(BayesianDense::new(
                    b.in_features(),
                    b.out_features(),
                    mask(b.weight_mu()),
                    mask(b.weight_sigma()),
                    b.bias_mu().to_vec(),
                    b.bias_sigma().to_vec(),
                ))
            }
            other => other.clone(),
        })
        .collect();
    Model::new(layers, model.task().clone(), None, Provenance::default()).unwrap()
}

fn classifier(seed: u64, sizes: &[usize]) -> Model {
    let task = Task::Classification { classes: *sizes.last().unwrap(), labels: vec![] };
    common::bayesian_mlp(seed, sizes, task, 0.3)
}

fn is_csr(layer: &Layer) -> bool {
    matches!(layer, Layer::BayesianDense(b) if matches!(b.layout(), WeightLayout::Csr { .. }))
}

#[test]
fn a_pruned_layer_is_stored_as_csr_and_the_file_shrinks() {
    let dense = classifier(1, &[256, 128, 4]);
    let sparse = pruned(&dense, 0.9, 2);
    let dense_len = ModelWriter::new(&dense).to_bytes().unwrap().len();
    let bytes = ModelWriter::new(&sparse).dtype(StorageDtype::F16).to_bytes().unwrap();
    let loaded = Model::from_bytes(&bytes).unwrap();
    assert!(is_csr(&loaded.layers()[0]));
    assert!(bytes.len() * 8 < dense_len, "sparse f16 {} vs dense f32 {dense_len}", bytes.len());
    // An unpruned layer stays dense.
    let back = Model::from_bytes(&ModelWriter::new(&dense).to_bytes().unwrap()).unwrap();
    assert!(!is_csr(&back.layers()[0]));
}

#[test]
fn weight_sampling_on_sparse_storage_agrees_in_distribution_with_dense() {
    let dense = pruned(&classifier(3, &[6, 12, 3]), 0.7, 4);
    let sparse = dense.sparsified();
    let x = [0.5f32, -0.2, 1.0, 0.3, -1.5, 0.8];
    let s = 20_000;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    Predictor::new(&dense).sample_outputs(&x, Sampler::WeightSampling, 1, s, &mut a).unwrap();
    Predictor::new(&sparse).sample_outputs(&x, Sampler::WeightSampling, 2, s, &mut b).unwrap();
    for k in 0..3 {
        let col = |v: &[f32]| v.iter().skip(k).step_by(3).map(|x| *x as f64).collect::<Vec<_>>();
        let ((ma, va), (mb, vb)) = (moments(col(&a).into_iter()), moments(col(&b).into_iter()));
        let tol = 5.0 * ((va + vb) / s as f64).sqrt();
        assert!((ma - mb).abs() < tol, "logit {k}: {ma} vs {mb}");
        assert!((va - vb).abs() < 0.1 * va.max(vb), "logit {k}: variance {va} vs {vb}");
    }
}

fn set_index(bytes: &[u8], name: &str, element: usize, value: u32) -> Vec<u8> {
    rewrite(bytes, |_, ts| {
        let t = ts.iter_mut().find(|t| t.name == name).unwrap();
        match t.dtype {
            Dtype::U16 => t.data[element * 2..element * 2 + 2].copy_from_slice(&(value as u16).to_le_bytes()),
            _ => t.data[element * 4..element * 4 + 4].copy_from_slice(&value.to_le_bytes()),
        }
    })
}

#[test]
fn a_corrupt_sparse_pattern_is_rejected_with_a_typed_error() {
    let bytes = ModelWriter::new(&pruned(&classifier(5, &[20, 10, 2]), 0.9, 6)).to_bytes().unwrap();
    assert!(Model::from_bytes(&bytes).is_ok());
    let bad_ptr = set_index(&bytes, "layers.0.weight.row_ptr", 3, 0);
    assert!(matches!(
        Model::from_bytes(&bad_ptr),
        Err(ModelError::InvalidSparse { .. }) | Err(ModelError::TensorShape { .. })
    ));
    let bad_col = set_index(&bytes, "layers.0.weight.col_idx", 0, 20);
    assert!(
        matches!(Model::from_bytes(&bad_col), Err(ModelError::InvalidSparse { message, .. }) if message.contains("out of range"))
    );
    let wrong_dtype = rewrite(&bytes, |_, ts| {
        let t = ts.iter_mut().find(|t| t.name == "layers.0.weight.col_idx").unwrap();
        t.dtype = Dtype::I16;
    });
    assert!(matches!(Model::from_bytes(&wrong_dtype), Err(ModelError::UnsupportedDtype { .. })));
    let missing = rewrite(&bytes, |_, ts| ts.retain(|t| t.name != "layers.0.weight.col_idx"));
    assert_eq!(Model::from_bytes(&missing), Err(ModelError::MissingTensor("layers.0.weight.col_idx".into())));
}

fn regression_task(outputs: usize, hetero: bool) -> Task {
    if hetero {
        Task::Regression { outputs: outputs / 2, noise: NoiseModel::Heteroscedastic }
    } else {
        Task::Regression { outputs, noise: NoiseModel::Homoscedastic { sigma: 0.3 } }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random architectures, sparsities and dtypes: what the writer stores loads back, re-writes to the same
    /// bytes, and predicts exactly like the in-memory model (f32) for `Mean` and local reparameterization.
    #[test]
    fn format_round_trips_and_sparse_execution_equals_dense(
        seed in 0u64..1000,
        sizes in proptest::collection::vec(1usize..24, 2..5),
        sparsity in prop_oneof![Just(0.0f32), Just(0.5), 0.0f32..1.0, Just(0.99)],
        dtype in prop_oneof![Just(StorageDtype::F32), Just(StorageDtype::F16), Just(StorageDtype::Bf16)],
        hetero in any::<bool>(),
    ) {
        let mut sizes = sizes;
        let last = sizes.len() - 1;
        sizes[last] = 2 * sizes[last].div_ceil(2);
        let task = regression_task(sizes[last], hetero);
        let model = pruned(&common::bayesian_mlp(seed, &sizes, task, 0.5), sparsity, seed + 1);
        let bytes = ModelWriter::new(&model).dtype(dtype).to_bytes().unwrap();
        let loaded = Model::from_bytes(&bytes).unwrap();
        prop_assert_eq!(ModelWriter::new(&loaded).dtype(dtype).to_bytes().unwrap(), bytes);
        let x: Vec<f32> = (0..sizes[0]).map(|i| (i as f32 * 0.7).sin()).collect();
        if dtype == StorageDtype::F32 {
            for sampler in [Sampler::Mean, Sampler::LocalReparam] {
                let opts = PredictOptions::default().samples(4).sampler(sampler).seed(seed);
                prop_assert_eq!(loaded.predict(&x, &opts).unwrap(), model.predict(&x, &opts).unwrap());
                prop_assert_eq!(model.sparsified().predict(&x, &opts).unwrap(), model.predict(&x, &opts).unwrap());
            }
        }
    }
}
