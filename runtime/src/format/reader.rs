//! The loader: bytes or a path in, a fully validated [`Model`] out, or a typed error naming the problem.

use super::description::{self, LayerDescription};
use super::tensor::decode;
use super::{names, FORMAT_VERSION, MODEL_KEY, VERSION_KEY};
use crate::error::ModelError;
use crate::layers::{BayesianDense, Dense, Dropout, Layer};
use crate::model::Model;
use safetensors::SafeTensors;
use std::collections::BTreeSet;
use std::path::Path;

impl Model {
    /// Reads a model from the bytes of a `.safetensors` file and checks every rule of `FORMAT.md`.
    /// Never panics, whatever the bytes; memory use is bounded by a small multiple of `bytes.len()`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| ModelError::MalformedFile(e.to_string()))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| ModelError::MalformedFile(e.to_string()))?;
        let metadata = header.metadata().as_ref();
        let version = metadata.and_then(|m| m.get(VERSION_KEY)).ok_or(ModelError::MissingMetadata(VERSION_KEY))?;
        if version.trim().parse::<u32>().ok() != Some(FORMAT_VERSION) {
            return Err(ModelError::UnsupportedVersion { found: version.clone(), supported: FORMAT_VERSION });
        }
        let json = metadata.and_then(|m| m.get(MODEL_KEY)).ok_or(ModelError::MissingMetadata(MODEL_KEY))?;
        let description = description::parse(json)?;

        let expected = expected_tensors(&description.layers);
        for name in expected.iter().map(|(n, _)| n) {
            if file.tensor(name).is_err() {
                return Err(ModelError::MissingTensor(name.clone()));
            }
        }
        let expected_names: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
        let mut stored: Vec<&str> = file.names();
        stored.sort_unstable();
        if let Some(extra) = stored.into_iter().find(|n| !expected_names.contains(n)) {
            return Err(ModelError::UnexpectedTensor(extra.into()));
        }

        let read = |name: String, shape: &[usize]| -> Result<Vec<f32>, ModelError> {
            let view = file.tensor(&name).map_err(|_| ModelError::MissingTensor(name.clone()))?;
            decode(&name, &view, shape)
        };
        let mut layers = Vec::with_capacity(description.layers.len());
        for (index, layer) in description.layers.iter().enumerate() {
            layers.push(match *layer {
                LayerDescription::BayesianDense { in_features: i, out_features: o } => {
                    Layer::BayesianDense(BayesianDense::new(
                        i,
                        o,
                        read(names::weight_mu(index), &[o, i])?,
                        read(names::weight_sigma(index), &[o, i])?,
                        read(names::bias_mu(index), &[o])?,
                        read(names::bias_sigma(index), &[o])?,
                    ))
                }
                LayerDescription::Dense { in_features: i, out_features: o } => Layer::Dense(Dense::new(
                    i,
                    o,
                    read(names::weight_mu(index), &[o, i])?,
                    read(names::bias_mu(index), &[o])?,
                )),
                LayerDescription::Dropout { p } => Layer::Dropout(Dropout::new(p)),
                LayerDescription::Activation { function } => Layer::Activation(function),
            });
        }
        Model::new(layers, description.task, description.normalization, description.provenance)
    }

    /// Reads and validates a model file. See [`Model::from_bytes`].
    pub fn load(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError::Io { path: path.display().to_string(), message: e.to_string() })?;
        Model::from_bytes(&bytes)
    }
}

/// Every tensor the description requires, with its shape, in layer order.
fn expected_tensors(layers: &[LayerDescription]) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for (index, layer) in layers.iter().enumerate() {
        match *layer {
            LayerDescription::BayesianDense { in_features: i, out_features: o } => {
                out.push((names::weight_mu(index), vec![o, i]));
                out.push((names::weight_sigma(index), vec![o, i]));
                out.push((names::bias_mu(index), vec![o]));
                out.push((names::bias_sigma(index), vec![o]));
            }
            LayerDescription::Dense { in_features: i, out_features: o } => {
                out.push((names::weight_mu(index), vec![o, i]));
                out.push((names::bias_mu(index), vec![o]));
            }
            LayerDescription::Dropout { .. } | LayerDescription::Activation { .. } => {}
        }
    }
    out
}
