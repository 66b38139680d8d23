//! Every validation rule of FORMAT.md, each with a crafted bad file: the loader returns the typed error that
//! names the problem, and no byte string makes it panic.

mod common;

use bnn_runtime::{Model, ModelError, NoiseModel, Task};
use common::{edit_description, rewrite};
use safetensors::tensor::Dtype;
use serde_json::json;

fn valid() -> Vec<u8> {
    let task = Task::Classification { classes: 3, labels: vec![] };
    common::to_bytes(&common::bayesian_mlp(1, &[4, 5, 3], task, 0.2))
}

fn err(bytes: &[u8]) -> ModelError {
    Model::from_bytes(bytes).expect_err("the loader must reject this file")
}

#[test]
fn the_valid_file_loads() {
    let m = Model::from_bytes(&valid()).unwrap();
    assert_eq!((m.input_dim(), m.head_width(), m.layers().len()), (4, 3, 3));
}

#[test]
fn truncated_empty_and_garbage_bytes_are_malformed_files() {
    let v = valid();
    for bytes in [&v[..v.len() - 3], &v[..20], &[][..], b"garbage header that is not safetensors"] {
        assert!(matches!(err(bytes), ModelError::MalformedFile(_)));
    }
    let mut huge = v.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(err(&huge), ModelError::MalformedFile(_)));
}

#[test]
fn a_missing_or_unknown_version_is_rejected() {
    let no_version = rewrite(&valid(), |m, _| {
        m.remove("bnn.format_version");
    });
    assert_eq!(err(&no_version), ModelError::MissingMetadata("bnn.format_version"));
    let v2 = rewrite(&valid(), |m, _| {
        m.insert("bnn.format_version".into(), "2".into());
    });
    assert!(matches!(err(&v2), ModelError::UnsupportedVersion { found, .. } if found == "2"));
}

#[test]
fn a_missing_or_unparsable_description_is_rejected() {
    let none = rewrite(&valid(), |m, _| {
        m.remove("bnn.model");
    });
    assert_eq!(err(&none), ModelError::MissingMetadata("bnn.model"));
    let garbage = rewrite(&valid(), |m, _| {
        m.insert("bnn.model".into(), "{not json".into());
    });
    assert!(matches!(err(&garbage), ModelError::InvalidDescription { .. }));
    let no_layers = edit_description(&valid(), |d| {
        d.as_object_mut().unwrap().remove("layers");
    });
    assert!(matches!(err(&no_layers), ModelError::InvalidDescription { .. }));
}

#[test]
fn an_unknown_layer_kind_names_the_layer() {
    let bytes = edit_description(&valid(), |d| d["layers"][1] = json!({"kind": "conv3d"}));
    assert_eq!(err(&bytes), ModelError::UnknownLayerKind { index: 1, kind: "conv3d".into() });
    // A known kind without its fields.
    let bare = edit_description(&valid(), |d| d["layers"][1] = json!({"kind": "conv2d"}));
    assert!(matches!(err(&bare), ModelError::InvalidLayer { index: 1, .. }), "{:?}", err(&bare));
    let bad_fn = edit_description(&valid(), |d| d["layers"][1] = json!({"kind": "activation", "function": "swish"}));
    assert!(matches!(err(&bad_fn), ModelError::InvalidLayer { index: 1, .. }));
}

#[test]
fn missing_and_extra_tensors_are_named() {
    let missing = rewrite(&valid(), |_, t| t.retain(|t| t.name != "layers.2.bias.sigma"));
    assert_eq!(err(&missing), ModelError::MissingTensor("layers.2.bias.sigma".into()));
    let extra = rewrite(&valid(), |_, t| {
        t.push(common::RawTensor {
            name: "layers.9.weight.mu".into(),
            dtype: Dtype::F32,
            shape: vec![1],
            data: vec![0; 4],
        });
    });
    assert_eq!(err(&extra), ModelError::UnexpectedTensor("layers.9.weight.mu".into()));
}

#[test]
fn a_tensor_of_the_wrong_shape_is_named_with_expected_and_found_shapes() {
    let bytes = rewrite(&valid(), |_, ts| {
        let t = ts.iter_mut().find(|t| t.name == "layers.0.weight.sigma").unwrap();
        t.shape = vec![4, 5];
    });
    assert_eq!(
        err(&bytes),
        ModelError::TensorShape { name: "layers.0.weight.sigma".into(), expected: vec![5, 4], found: vec![4, 5] }
    );
}

#[test]
fn consecutive_layers_whose_sizes_disagree_are_rejected() {
    // Layer 2 claims 6 inputs (and its tensors agree), but layer 0 gives 5.
    let bytes = rewrite(&edit_description(&valid(), |d| d["layers"][2]["in_features"] = json!(6)), |_, ts| {
        for t in ts.iter_mut().filter(|t| t.name.starts_with("layers.2.weight")) {
            t.shape = vec![3, 6];
            t.data = vec![0; 3 * 6 * 4];
        }
    });
    assert_eq!(err(&bytes), ModelError::LayerSizeMismatch { index: 2, expected: 6, found: 5 });
}

fn set_f32(bytes: &[u8], name: &str, element: usize, value: f32) -> Vec<u8> {
    rewrite(bytes, |_, ts| {
        let t = ts.iter_mut().find(|t| t.name == name).unwrap();
        t.data[element * 4..element * 4 + 4].copy_from_slice(&value.to_le_bytes());
    })
}

#[test]
fn negative_or_non_finite_sigma_and_non_finite_mu_are_rejected() {
    for v in [f32::NAN, -0.1, f32::INFINITY] {
        let e = err(&set_f32(&valid(), "layers.0.weight.sigma", 7, v));
        assert!(
            matches!(e, ModelError::InvalidSigma { ref name, element: 7, .. } if name == "layers.0.weight.sigma"),
            "{e}"
        );
    }
    for v in [f32::NAN, f32::NEG_INFINITY] {
        let e = err(&set_f32(&valid(), "layers.2.bias.mu", 1, v));
        assert!(
            matches!(e, ModelError::NonFiniteValue { ref name, element: 1, .. } if name == "layers.2.bias.mu"),
            "{e}"
        );
    }
}

#[test]
fn an_unsupported_dtype_is_named() {
    let bytes = rewrite(&valid(), |_, ts| {
        let t = ts.iter_mut().find(|t| t.name == "layers.0.bias.mu").unwrap();
        t.dtype = Dtype::I32;
    });
    assert!(matches!(err(&bytes), ModelError::UnsupportedDtype { name, .. } if name == "layers.0.bias.mu"));
}

#[test]
fn a_head_inconsistent_with_the_task_is_rejected() {
    let four_classes = edit_description(&valid(), |d| d["task"] = json!({"kind": "classification", "classes": 4}));
    assert!(matches!(err(&four_classes), ModelError::HeadMismatch(_)));
    let hetero = edit_description(&valid(), |d| {
        d["task"] = json!({"kind": "regression", "outputs": 3, "noise": {"kind": "heteroscedastic"}})
    });
    assert!(matches!(err(&hetero), ModelError::HeadMismatch(_)));
}

#[test]
fn an_invalid_task_is_rejected() {
    for task in [
        json!({"kind": "classification", "classes": 3, "labels": ["a", "b"]}),
        json!({"kind": "regression", "outputs": 3, "noise": {"kind": "homoscedastic", "sigma": -1.0}}),
        json!({"kind": "ranking"}),
    ] {
        let bytes = edit_description(&valid(), |d| d["task"] = task.clone());
        assert!(matches!(err(&bytes), ModelError::InvalidTask(_)), "{task}");
    }
    let one_class =
        common::to_bytes(&common::bayesian_mlp(1, &[2, 3], Task::Classification { classes: 3, labels: vec![] }, 0.1));
    let one_class = edit_description(&one_class, |d| d["task"]["classes"] = json!(1));
    assert!(matches!(err(&one_class), ModelError::InvalidTask(_)));
    let ok = Task::Regression { outputs: 3, noise: NoiseModel::Homoscedastic { sigma: 1.0 } };
    assert!(Model::from_bytes(&common::to_bytes(&common::bayesian_mlp(1, &[2, 3], ok, 0.1))).is_ok());
}

#[test]
fn an_invalid_dropout_rate_names_the_layer() {
    for p in [1.0, -0.1, 2.0] {
        let bytes = edit_description(&valid(), |d| d["layers"][1] = json!({"kind": "dropout", "p": p}));
        assert!(matches!(err(&bytes), ModelError::InvalidLayer { index: 1, .. }), "p = {p}");
    }
}

#[test]
fn an_invalid_normalization_is_rejected() {
    for n in [
        json!({"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}),
        json!({"mean": [0.0, 0.0, 0.0, 0.0], "std": [1.0, 0.0, 1.0, 1.0]}),
        json!({"mean": "nope"}),
    ] {
        let bytes = edit_description(&valid(), |d| d["normalization"] = n.clone());
        assert!(matches!(err(&bytes), ModelError::InvalidNormalization(_)), "{n}");
    }
}

#[test]
fn an_invalid_calibration_is_rejected_and_a_valid_one_round_trips() {
    let good = json!({
        "temperature": 1.5,
        "sets": [{"level": 0.9, "threshold": 0.8}, {"level": 0.99, "threshold": 0.97}],
        "abstain_below": 0.7,
        "split": {"examples": 100, "seed": 3, "source": "held out"}
    });
    let calibrated = edit_description(&valid(), |d| d["calibration"] = good.clone());
    let m = Model::from_bytes(&calibrated).unwrap();
    assert_eq!(m.calibration().map(|c| (c.temperature, c.sets.len())), Some((1.5, 2)));
    assert_eq!(Model::from_bytes(&common::to_bytes(&m)).unwrap(), m, "written back, read again: the same model");
    let with = |key: &str, value: serde_json::Value| {
        let mut c = good.clone();
        c[key] = value;
        edit_description(&valid(), |d| d["calibration"] = c.clone())
    };
    for bad in [
        with("temperature", json!(0.0)),
        with("temperature", json!(-1.0)),
        with("abstain_below", json!(1.5)),
        with("sets", json!([{"level": 1.0, "threshold": 0.9}])),
        with("sets", json!([{"level": 0.9, "threshold": 0.95}, {"level": 0.95, "threshold": 0.9}])),
        with("sets", json!([{"level": 0.95, "threshold": 0.9}, {"level": 0.9, "threshold": 0.95}])),
        with("surprise", json!(1)),
        edit_description(&valid(), |d| d["calibration"] = json!({"temperature": 1.0})),
    ] {
        assert!(matches!(err(&bad), ModelError::InvalidCalibration(_)), "{:?}", err(&bad));
    }
    // A regression model's calibration holds intervals only, and a classifier's none.
    let task = Task::Regression { outputs: 1, noise: NoiseModel::Homoscedastic { sigma: 0.1 } };
    let regression = common::to_bytes(&common::bayesian_mlp(1, &[4, 5, 1], task, 0.2));
    let bad = edit_description(&regression, |d| d["calibration"] = good.clone());
    assert!(matches!(err(&bad), ModelError::InvalidCalibration(m) if m.contains("intervals only")));
    let intervals = json!({"temperature": 1.0, "intervals": [{"level": 0.9, "threshold": 1.7}],
                           "split": {"examples": 50, "seed": 1, "source": "held out"}});
    let ok = edit_description(&regression, |d| d["calibration"] = intervals.clone());
    assert_eq!(Model::from_bytes(&ok).unwrap().calibration().map(|c| c.intervals.len()), Some(1));
    let bad = edit_description(&valid(), |d| d["calibration"] = intervals.clone());
    assert!(matches!(err(&bad), ModelError::InvalidCalibration(m) if m.contains("no intervals")));
}

#[test]
fn a_model_without_a_dense_layer_is_rejected() {
    let bytes = rewrite(
        &edit_description(&valid(), |d| d["layers"] = json!([{"kind": "activation", "function": "relu"}])),
        |_, ts| ts.clear(),
    );
    assert_eq!(err(&bytes), ModelError::NoDenseLayer);
}

#[test]
fn no_single_bit_flip_or_truncation_makes_the_loader_panic() {
    let v = valid();
    for i in 0..v.len() {
        for bit in [0, 3, 7] {
            let mut b = v.clone();
            b[i] ^= 1 << bit;
            let _ = Model::from_bytes(&b);
        }
        let _ = Model::from_bytes(&v[..i]);
    }
}
