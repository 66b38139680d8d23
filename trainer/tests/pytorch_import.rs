//! `bnn import` against fixtures made by PyTorch with bayesian-torch, blitz and torchbnn
//! (`tests/fixtures/pytorch/make_fixtures.py`): the imported model's mean-weight prediction equals the library's
//! mean-weight forward pass within 1e-5, and its Monte-Carlo mean and variance agree with the library's own
//! sampled forward passes within 5 standard errors (from both sides' sample sizes and the fourth moment).
//! Malformed state dicts give errors that name the parameter or module.

use bnn_runtime::{Activation, Model, NoiseModel, PredictOptions, Sampler, Task};
use bnn_trainer::import::{import_state, Architecture, ImportError, ImportSpec, Source};
use safetensors::{serialize, tensor::TensorView, Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch").join(name)
}

fn spec(source: Source) -> ImportSpec {
    ImportSpec {
        source,
        arch: Architecture::mlp(&[4, 16, 16, 3]),
        activation: Activation::Relu,
        // Regression with negligible noise: the outputs are the network's raw outputs, as in PyTorch.
        task: Task::Regression { outputs: 3, noise: NoiseModel::Homoscedastic { sigma: 1e-6 } },
        layers: None,
    }
}

fn reference(lib: &str) -> HashMap<String, Vec<f32>> {
    let bytes = std::fs::read(fixture(&format!("{lib}_reference.safetensors"))).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name, values)
        })
        .collect()
}

fn import_fixture(lib: &str, spec: &ImportSpec) -> (Model, Vec<String>) {
    let bytes = std::fs::read(fixture(&format!("{lib}_state.safetensors"))).unwrap();
    let imported = import_state(&bytes, spec).unwrap();
    (imported.model, imported.notes)
}

fn check_library(lib: &str, source: Source) -> Vec<String> {
    check_fixture(lib, &spec(source))
}

/// The CNN of the fixtures: `1x6x6-conv3k3p1-maxpool2-conv4k3p1-flatten-3`.
fn cnn_spec(source: Source) -> ImportSpec {
    ImportSpec { arch: Architecture::parse("1x6x6-conv3k3p1-maxpool2-conv4k3p1-flatten-3").unwrap(), ..spec(source) }
}

/// Imports fixture `lib` (files `{lib}_state`, `{lib}_reference`) with `spec` and compares it with PyTorch.
fn check_fixture(lib: &str, spec: &ImportSpec) -> Vec<String> {
    let (model, notes) = import_fixture(lib, spec);
    let r = reference(lib);
    let inputs = r["inputs"].chunks(model.input_dim());
    let torch_samples = f64::from(r["mc_samples"][0]);
    let samples = 20_000usize;
    let (mut worst_mean_pass, mut worst_z) = (0.0f32, 0.0f64);
    for (i, x) in inputs.enumerate() {
        let mean = model.predict(x, &PredictOptions::default().sampler(Sampler::Mean)).unwrap();
        for (k, (&ours, &torch)) in
            mean.as_regression().unwrap().mean.iter().zip(&r["mean_output"][3 * i..]).enumerate()
        {
            assert!(
                (ours - torch).abs() <= 1e-5 * (1.0 + torch.abs()),
                "{lib} input {i} output {k}: mean pass {ours} vs PyTorch {torch}"
            );
            worst_mean_pass = worst_mean_pass.max((ours - torch).abs());
        }
        for sampler in [Sampler::LocalReparam, Sampler::WeightSampling] {
            let options = PredictOptions::default().samples(samples).seed(100 + i as u64).sampler(sampler);
            let p = model.predict(x, &options).unwrap();
            let p = p.as_regression().unwrap();
            for k in 0..3 {
                let at = 3 * i + k;
                let (m_t, v_t, m4_t) =
                    (f64::from(r["mc_mean"][at]), f64::from(r["mc_var"][at]), f64::from(r["mc_m4"][at]));
                let (m, v) = (f64::from(p.mean[k]), f64::from(p.epistemic_variance[k]));
                let mean_se = (v / samples as f64 + v_t / torch_samples).sqrt();
                assert!(
                    (m - m_t).abs() <= 5.0 * mean_se,
                    "{lib} {sampler:?} input {i} output {k}: MC mean {m} vs {m_t} (se {mean_se:.2e})"
                );
                let var_se = ((m4_t - v_t * v_t).max(0.0) * (1.0 / samples as f64 + 1.0 / torch_samples)).sqrt();
                assert!(
                    (v - v_t).abs() <= 5.0 * var_se,
                    "{lib} {sampler:?} input {i} output {k}: MC variance {v} vs {v_t} (se {var_se:.2e})"
                );
                worst_z = worst_z.max((m - m_t).abs() / mean_se).max((v - v_t).abs() / var_se);
            }
        }
    }
    eprintln!(
        "{lib}: largest mean-pass difference {worst_mean_pass:.2e}; largest MC moment gap {worst_z:.2} standard errors"
    );
    notes
}

#[test]
fn bayesian_torch_import_reproduces_pytorch() {
    assert!(check_library("bayesian_torch", Source::BayesianTorch).is_empty());
}

#[test]
fn blitz_import_reads_the_samplers_copy_and_reproduces_pytorch() {
    let notes = check_library("blitz", Source::Blitz);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("fc1.weight_mu") && notes[0].contains("fc1.weight_sampler.mu"), "{notes:?}");
}

#[test]
fn torchbnn_import_reproduces_pytorch() {
    assert!(check_library("torchbnn", Source::Torchbnn).is_empty());
}

#[test]
fn bayesian_convolutions_of_every_library_reproduce_pytorch() {
    for (lib, source) in
        [("bayesian_torch", Source::BayesianTorch), ("blitz", Source::Blitz), ("torchbnn", Source::Torchbnn)]
    {
        let notes = check_fixture(&format!("{lib}_cnn"), &cnn_spec(source));
        assert!(notes.is_empty(), "{lib}: {notes:?}");
    }
    let (model, _) = import_fixture("torchbnn_cnn", &cnn_spec(Source::Torchbnn));
    let kinds: Vec<&str> = model
        .layers()
        .iter()
        .map(|l| match l {
            bnn_runtime::Layer::BayesianConv2d(_) => "bayes conv",
            bnn_runtime::Layer::Conv2d(_) => "conv",
            bnn_runtime::Layer::Pool2d(_) => "pool",
            bnn_runtime::Layer::Flatten => "flatten",
            bnn_runtime::Layer::BayesianDense(_) => "bayes dense",
            bnn_runtime::Layer::Activation(_) => "act",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["bayes conv", "act", "pool", "conv", "act", "flatten", "bayes dense"]);
}

#[test]
fn plain_linear_layers_become_deterministic_layers() {
    let (model, _) = import_fixture("torchbnn", &spec(Source::Torchbnn));
    let kinds: Vec<&str> = model
        .layers()
        .iter()
        .map(|l| match l {
            bnn_runtime::Layer::BayesianDense(_) => "bayes",
            bnn_runtime::Layer::Dense(_) => "dense",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["bayes", "other", "dense", "other", "bayes"]);
}

/// A state dict from (name, shape) pairs, every value 0.1.
fn state(tensors: &[(&str, &[usize])]) -> Vec<u8> {
    let data: Vec<Vec<u8>> =
        tensors.iter().map(|(_, shape)| 0.1f32.to_le_bytes().repeat(shape.iter().product::<usize>())).collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&data)
        .map(|((name, shape), bytes)| (name.to_string(), TensorView::new(Dtype::F32, shape.to_vec(), bytes).unwrap()))
        .collect();
    serialize(views, None).unwrap()
}

/// A one-layer 3 -> 2 regression.
fn small_spec(source: Source) -> ImportSpec {
    let task = Task::Regression { outputs: 2, noise: NoiseModel::Homoscedastic { sigma: 0.1 } };
    ImportSpec { arch: Architecture::mlp(&[3, 2]), task, ..spec(source) }
}

fn error(bytes: &[u8], spec: &ImportSpec) -> String {
    let e: ImportError = import_state(bytes, spec).unwrap_err();
    e.to_string()
}

#[test]
fn bad_state_dicts_name_what_is_wrong() {
    let bt = small_spec(Source::BayesianTorch);
    let ok: [(&str, &[usize]); 4] =
        [("fc.mu_weight", &[2, 3]), ("fc.rho_weight", &[2, 3]), ("fc.mu_bias", &[2]), ("fc.rho_bias", &[2])];
    assert!(import_state(&state(&ok), &bt).is_ok());
    let no_bias = import_state(&state(&ok[..2]), &bt).unwrap();
    assert!(no_bias.model.predict(&[1.0, 2.0, 3.0], &PredictOptions::default()).is_ok(), "bias=False layers import");

    let unknown = error(&state(&[ok[0], ok[1], ("bn.running_mean", &[2])]), &bt);
    assert!(unknown.contains("`bn.running_mean`"), "{unknown}");
    let missing = error(&state(&[ok[0], ok[2], ok[3]]), &bt);
    assert!(missing.contains("missing parameter `fc.rho_weight`"), "{missing}");
    let half_bias = error(&state(&[ok[0], ok[1], ok[2]]), &bt);
    assert!(half_bias.contains("`fc.rho_bias`"), "{half_bias}");
    let shape = error(&state(&[ok[0], ("fc.rho_weight", &[3, 2]), ok[2], ok[3]]), &bt);
    assert!(shape.contains("`fc.rho_weight`") && shape.contains("[2, 3]"), "{shape}");
    let flat = error(&state(&[("fc.mu_weight", &[6]), ("fc.rho_weight", &[6])]), &bt);
    assert!(flat.contains("`fc.mu_weight`") && flat.contains("must be a matrix"), "{flat}");
    let arch = error(&state(&ok), &ImportSpec { arch: Architecture::mlp(&[4, 2]), ..bt.clone() });
    assert!(arch.contains("module `fc`") && arch.contains("[2, 3]") && arch.contains("[2, 4]"), "{arch}");
    let count = error(&state(&ok), &ImportSpec { arch: Architecture::mlp(&[3, 2, 2]), ..bt.clone() });
    assert!(count.contains("2 dense and convolution stages") && count.contains("1 modules"), "{count}");
    let wrong_library = error(&state(&ok), &small_spec(Source::Torchbnn));
    assert!(wrong_library.contains("`fc.mu_bias`") && wrong_library.contains("torchbnn"), "{wrong_library}");
    let mixed = error(&state(&[ok[0], ok[1], ("fc.weight", &[2, 3])]), &bt);
    assert!(mixed.contains("module `fc`"), "{mixed}");
    let order = error(&state(&ok), &ImportSpec { layers: Some(vec!["fc".into(), "head".into()]), ..bt.clone() });
    assert!(order.contains("no module `head`"), "{order}");
    assert!(error(b"not a safetensors file", &bt).contains("not a readable"));
}

#[test]
fn explicit_layer_order_overrides_name_order() {
    // Modules named so that name order is the wrong forward order: `b` is 3 -> 4, `a` is 4 -> 2.
    let tensors: [(&str, &[usize]); 4] =
        [("b.weight", &[4, 3]), ("b.bias", &[4]), ("a.weight", &[2, 4]), ("a.bias", &[2])];
    let spec = ImportSpec { arch: Architecture::mlp(&[3, 4, 2]), ..small_spec(Source::Blitz) };
    assert!(error(&state(&tensors), &spec).contains("module `a`"));
    let spec = ImportSpec { layers: Some(vec!["b".into(), "a".into()]), ..spec };
    assert!(import_state(&state(&tensors), &spec).is_ok());
}

#[test]
fn cli_imports_a_bayesian_torch_checkpoint() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("imported-bayesian-torch.safetensors");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_bnn"))
        .args(["import", "--from", "bayesian-torch", "--arch", "4-16-16-3", "--task", "classification:3"])
        .arg("--state")
        .arg(fixture("bayesian_torch_state.safetensors"))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let model = Model::load(&out).unwrap();
    let p = model.predict(&[0.1, -0.2, 0.3, 0.4], &PredictOptions::default().samples(64)).unwrap();
    let c = p.as_classification().unwrap();
    assert!((c.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert_eq!(model.provenance().producer.as_deref(), Some("bnn import --from bayesian-torch"));
}
