//! Import of PyTorch Bayesian networks: a `state_dict` saved as safetensors by bayesian-torch, blitz or
//! torchbnn (see [`Source`]) becomes a bnn-edge model the runtime can run on a phone.
//!
//! The state dict holds parameters, not the architecture: the caller gives the layer sizes, the activation
//! between layers and the task. Modules are taken in natural name order (`fc2` before `fc10`, `layers.2` before
//! `layers.10`) unless [`ImportSpec::layers`] names them, and each must have the shape the sizes call for.

mod error;
mod module;
mod source;
mod state;

pub use error::ImportError;
pub use source::Source;

use bnn_runtime::{Activation, Layer, Model, Provenance, Task};
use module::Module;

/// What the state dict cannot say about the network.
#[derive(Debug, Clone)]
pub struct ImportSpec {
    pub source: Source,
    /// Layer sizes, input first: `[784, 400, 400, 10]`.
    pub arch: Vec<usize>,
    /// Applied after every layer but the last.
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
    if spec.arch.len() < 2 {
        return Err(ImportError::Architecture(format!(
            "needs at least an input and an output size, got {:?}",
            spec.arch
        )));
    }
    let modules = module::group_modules(spec.source, state::read_state(bytes)?)?;
    let modules = ordered(modules, spec.layers.as_deref())?;
    if modules.len() != spec.arch.len() - 1 {
        let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
        return Err(ImportError::Architecture(format!(
            "{:?} has {} layers but the state dict has {} linear modules: {names:?}",
            spec.arch,
            spec.arch.len() - 1,
            modules.len()
        )));
    }
    let mut notes = vec![];
    let mut layers = vec![];
    for (i, module) in modules.iter().enumerate() {
        let expected = (spec.arch[i + 1], spec.arch[i]);
        let found = module.shape()?;
        if found != expected {
            return Err(ImportError::Architecture(format!(
                "layer {i} (module `{}`) is {} -> {} but the architecture says {} -> {}",
                module.name, found.1, found.0, expected.1, expected.0
            )));
        }
        layers.push(module.to_layer(spec.source, &mut notes)?);
        if i + 2 < spec.arch.len() {
            layers.push(Layer::Activation(spec.activation));
        }
    }
    let mut provenance =
        Provenance { producer: Some(format!("bnn import --from {}", spec.source)), ..Default::default() };
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    provenance.extra.insert("imported_modules".into(), serde_json::json!(names));
    let model = Model::new(layers, spec.task.clone(), None, provenance)?;
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
