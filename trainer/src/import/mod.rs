//! Import of PyTorch Bayesian networks: a `state_dict` saved as safetensors by bayesian-torch, blitz or
//! torchbnn (see [`Source`]) becomes a bnn-edge model the runtime can run on a phone.
//!
//! The state dict holds parameters, not the architecture: the caller gives it ([`Architecture`]: layer sizes,
//! convolutions, pooling, flatten), the activation between layers and the task. Modules are taken in natural name
//! order (`fc2` before `fc10`, `layers.2` before `layers.10`) unless [`ImportSpec::layers`] names them, one per
//! dense or convolution stage, and each must have the shape its stage calls for.

mod error;
mod module;
mod source;
mod state;

pub use crate::arch::{Architecture, Stage};
pub use error::ImportError;
pub use source::Source;

use bnn_runtime::{Activation, Layer, Model, Pool2d, Provenance, Task};
use module::{Module, Target};

/// What the state dict cannot say about the network.
#[derive(Debug, Clone)]
pub struct ImportSpec {
    pub source: Source,
    /// The input and the stages: `Architecture::mlp(&[784, 400, 400, 10])`, or parsed from `--arch` text.
    pub arch: Architecture,
    /// Applied after every dense and convolution stage but the last.
    pub activation: Activation,
    pub task: Task,
    /// Module names in forward order; `None` takes them in natural name order.
    pub layers: Option<Vec<String>>,
}

/// An imported model and what the importer noticed on the way (e.g. blitz's diverged parameter copies).
#[derive(Debug)]
pub struct Imported {
    pub model: Model,
    pub notes: Vec<String>,
}

/// Imports the bytes of a safetensors state dict.
pub fn import_state(bytes: &[u8], spec: &ImportSpec) -> Result<Imported, ImportError> {
    let weighted = spec.arch.weighted();
    if weighted == 0 {
        return Err(ImportError::Architecture(format!("{:?} has no dense or convolution stage", spec.arch)));
    }
    let modules = module::group_modules(spec.source, state::read_state(bytes)?)?;
    let modules = ordered(modules, spec.layers.as_deref())?;
    if modules.len() != weighted {
        let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
        return Err(ImportError::Architecture(format!(
            "the architecture has {weighted} dense and convolution stages but the state dict has {} modules: {names:?}",
            modules.len()
        )));
    }
    let mut notes = vec![];
    let mut layers = vec![];
    let mut modules_left = modules.iter();
    // The shape each stage receives (the runtime checks the model again).
    let inputs = spec.arch.stage_inputs().map_err(ImportError::Architecture)?;
    let mut done = 0;
    for (stage, shape) in spec.arch.stages.iter().zip(inputs) {
        let target = match *stage {
            Stage::Dense(out) => Target::Dense { out, inp: shape.len() },
            Stage::Conv(g) => Target::Conv(g),
            Stage::Pool(kind, geometry) => {
                layers.push(Layer::Pool2d(Pool2d { kind, geometry }));
                continue;
            }
            Stage::Flatten => {
                layers.push(Layer::Flatten);
                continue;
            }
        };
        let Some(module) = modules_left.next() else { break };
        let (found, expected) = (module.shape()?, target.weight_shape());
        if found != expected {
            return Err(ImportError::Architecture(format!(
                "stage {done} (module `{}`) has a weight of shape {found:?} but the architecture says {expected:?}",
                module.name
            )));
        }
        layers.push(module.to_layer(spec.source, target, &mut notes)?);
        done += 1;
        if done < weighted {
            layers.push(Layer::Activation(spec.activation));
        }
    }
    let mut provenance =
        Provenance { producer: Some(format!("bnn import --from {}", spec.source)), ..Default::default() };
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    provenance.extra.insert("imported_modules".into(), serde_json::json!(names));
    let model = Model::with_input(layers, spec.arch.input, spec.task.clone(), None, provenance)?;
    Ok(Imported { model, notes })
}

/// The modules in forward order: as `layers` names them (all of them, each once), or in natural name order.
fn ordered(mut modules: Vec<Module>, layers: Option<&[String]>) -> Result<Vec<Module>, ImportError> {
    let Some(layers) = layers else {
        modules.sort_by_cached_key(|m| natural_key(&m.name));
        return Ok(modules);
    };
    let mut out = Vec::with_capacity(layers.len());
    for name in layers {
        let at = modules.iter().position(|m| &m.name == name).ok_or_else(|| {
            let known: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
            ImportError::LayerOrder(format!("no module `{name}` (left: {known:?})"))
        })?;
        out.push(modules.swap_remove(at));
    }
    if !modules.is_empty() {
        let left: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
        return Err(ImportError::LayerOrder(format!("modules not listed: {left:?}")));
    }
    Ok(out)
}

/// Sort key that orders digit runs by value: `fc2` < `fc10`, `net.2` < `net.10`.
fn natural_key(name: &str) -> Vec<(u64, String)> {
    let mut key = vec![];
    let mut rest = name;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            key.push((0, rest[..text].to_string()));
            rest = &rest[text..];
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_puts_fc2_before_fc10() {
        let mut names = vec!["fc10", "fc2", "fc1", "net.10.x", "net.2.x"];
        names.sort_by_cached_key(|n| natural_key(n));
        assert_eq!(names, ["fc1", "fc2", "fc10", "net.2.x", "net.10.x"]);
    }
}
