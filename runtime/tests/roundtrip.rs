//! The writer and loader agree: f32 round-trips exactly; f16 and bf16 round-trip to the nearest
//! representable value; everything in the description (task, labels, normalisation, provenance) survives.

mod common;

use bnn_runtime::{
    Activation, Dense, Dropout, Layer, Model, ModelError, ModelWriter, Normalization, PredictOptions, Provenance,
    Sampler, StorageDtype, Task,
};
use half::{bf16, f16};

fn rich_model() -> Model {
    let head6 = Task::Regression { outputs: 3, noise: bnn_runtime::NoiseModel::Heteroscedastic };
    let base = common::bayesian_mlp(4, &[3, 6], head6, 0.3);
    let mut layers = vec![Layer::Dropout(Dropout::new(0.1))];
    layers.extend(base.layers().iter().cloned());
    layers.push(Layer::Activation(Activation::Gelu));
    layers.push(Layer::Dense(Dense::new(6, 2, (0..12).map(|k| k as f32 * 0.1 - 0.5).collect(), vec![0.25, -0.125])));
    let task = Task::Classification { classes: 2, labels: vec!["cat".into(), "dog".into()] };
    let normalization = Normalization { mean: vec![0.5, 1.0, -1.0], std: vec![2.0, 0.5, 1.0] };
    let mut provenance = Provenance { recipe: Some("recipe.toml".into()), seed: Some(17), ..Default::default() };
    provenance.extra.insert("pruning".into(), serde_json::json!({"criterion": "snr"}));
    Model::new(layers, task, Some(normalization), provenance).unwrap()
}

#[test]
fn f32_round_trips_exactly() {
    let m = rich_model();
    assert_eq!(Model::from_bytes(&ModelWriter::new(&m).to_bytes().unwrap()).unwrap(), m);
}

fn all_params(m: &Model) -> Vec<f32> {
    m.layers()
        .iter()
        .flat_map(|l| match l {
            Layer::BayesianDense(b) => [b.weight_mu(), b.weight_sigma(), b.bias_mu(), b.bias_sigma()].concat(),
            Layer::Dense(d) => [d.weight(), d.bias()].concat(),
            _ => vec![],
        })
        .collect()
}

#[test]
fn f16_and_bf16_round_trip_to_the_nearest_representable_value() {
    let m = rich_model();
    let original = all_params(&m);
    for dtype in [StorageDtype::F16, StorageDtype::Bf16] {
        let bytes = ModelWriter::new(&m).dtype(dtype).to_bytes().unwrap();
        let back = Model::from_bytes(&bytes).unwrap();
        let expected: Vec<f32> = original
            .iter()
            .map(|v| match dtype {
                StorageDtype::F16 => f16::from_f32(*v).to_f32(),
                _ => bf16::from_f32(*v).to_f32(),
            })
            .collect();
        assert_eq!(all_params(&back), expected, "{dtype:?}");
        assert_eq!(back.task(), m.task());
        assert_eq!(back.normalization(), m.normalization());
        assert_eq!(back.provenance(), m.provenance());
        let x = [0.2, -0.4, 1.1];
        let opts = PredictOptions::default().sampler(Sampler::Mean);
        let (a, b) = (m.predict(&x, &opts).unwrap(), back.predict(&x, &opts).unwrap());
        let (a, b) = (a.as_classification().unwrap(), b.as_classification().unwrap());
        assert!((a.probabilities[0] - b.probabilities[0]).abs() < 0.02);
    }
    let f32_len = ModelWriter::new(&m).to_bytes().unwrap().len();
    let f16_len = ModelWriter::new(&m).dtype(StorageDtype::F16).to_bytes().unwrap().len();
    assert!(f16_len < f32_len);
}

#[test]
fn a_normalisation_shared_by_every_feature_is_stored_once_and_predicts_the_same_bits() {
    let m = rich_model();
    let repeated = Normalization { mean: vec![0.1307; 3], std: vec![0.3081; 3] };
    let m = Model::new(m.layers().to_vec(), m.task().clone(), Some(repeated), m.provenance().clone()).unwrap();
    let bytes = ModelWriter::new(&m).to_bytes().unwrap();
    let back = Model::from_bytes(&bytes).unwrap();
    assert_eq!(back.normalization(), Some(&Normalization::global(0.1307, 0.3081)));
    let per_feature = ModelWriter::new(&rich_model()).to_bytes().unwrap();
    assert_eq!(Model::from_bytes(&per_feature).unwrap().normalization(), rich_model().normalization());
    let x = [0.2, -0.4, 3.0];
    for sampler in [Sampler::Mean, Sampler::LocalReparam, Sampler::WeightSampling] {
        let opts = PredictOptions::default().sampler(sampler).samples(8).seed(5);
        let (a, b) = (m.predict(&x, &opts).unwrap(), back.predict(&x, &opts).unwrap());
        let (a, b) = (a.as_classification().unwrap(), b.as_classification().unwrap());
        assert_eq!(a.probabilities, b.probabilities, "{sampler:?}");
    }
}

#[test]
fn a_mean_that_overflows_f16_cannot_be_written() {
    let layer = Layer::Dense(Dense::new(1, 2, vec![1.0e6, 1.0], vec![0.0, 0.0]));
    let m = Model::new(vec![layer], Task::Classification { classes: 2, labels: vec![] }, None, Provenance::default())
        .unwrap();
    let e = ModelWriter::new(&m).dtype(StorageDtype::F16).to_bytes().unwrap_err();
    assert!(
        matches!(e, ModelError::NonFiniteValue { ref name, element: 0, .. } if name == "layers.0.weight.mu"),
        "{e}"
    );
}

#[test]
fn write_and_load_through_a_file() {
    let m = rich_model();
    let path = std::env::temp_dir().join(format!("bnn-roundtrip-{}.safetensors", std::process::id()));
    ModelWriter::new(&m).write(&path).unwrap();
    assert_eq!(Model::load(&path).unwrap(), m);
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(Model::load(&path), Err(ModelError::Io { .. })));
}

#[test]
fn the_same_model_always_gives_the_same_bytes() {
    let m = rich_model();
    let first = ModelWriter::new(&m).to_bytes().unwrap();
    for _ in 0..8 {
        assert_eq!(ModelWriter::new(&m.clone()).to_bytes().unwrap(), first);
    }
}
