//! The loader: bytes or a path in, a fully validated [`Model`] out, or a typed error naming the problem.

use super::description::{self, LayerDescription, StorageLayout};
use super::tensor::{decode, decode_indices};
use super::{names, FORMAT_VERSION, MODEL_KEY, VERSION_KEY};
use crate::error::ModelError;
use crate::layers::{
    BayesianConv2d, BayesianDense, Conv2d, CsrPattern, Dense, Dropout, Layer, Pool2d, PoolKind, WeightLayout,
};
use crate::model::Model;
use crate::prelude::*;
use alloc::collections::BTreeSet;
use safetensors::SafeTensors;
#[cfg(feature = "std")]
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
        if let Some(name) = expected.iter().find(|n| file.tensor(n).is_err()) {
            return Err(ModelError::MissingTensor(name.clone()));
        }
        let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
        let mut stored: Vec<&str> = file.names();
        stored.sort_unstable();
        if let Some(extra) = stored.into_iter().find(|n| !expected.contains(n)) {
            return Err(ModelError::UnexpectedTensor(extra.into()));
        }

        let reader = TensorReader { file: &file };
        let mut layers = Vec::with_capacity(description.layers.len());
        for (index, layer) in description.layers.iter().enumerate() {
            layers.push(match *layer {
                LayerDescription::BayesianDense { in_features: i, out_features: o, layout } => {
                    let (layout, shape) = reader.layout(index, i, o, layout)?;
                    Layer::BayesianDense(BayesianDense::with_layout(
                        i,
                        o,
                        layout,
                        reader.values(names::weight_mu(index), &shape)?,
                        reader.values(names::weight_sigma(index), &shape)?,
                        reader.values(names::bias_mu(index), &[o])?,
                        reader.values(names::bias_sigma(index), &[o])?,
                    ))
                }
                LayerDescription::Dense { in_features: i, out_features: o, layout } => {
                    let (layout, shape) = reader.layout(index, i, o, layout)?;
                    Layer::Dense(Dense::with_layout(
                        i,
                        o,
                        layout,
                        reader.values(names::weight_mu(index), &shape)?,
                        reader.values(names::bias_mu(index), &[o])?,
                    ))
                }
                LayerDescription::Dropout { p } => Layer::Dropout(Dropout::new(p)),
                LayerDescription::Activation { function } => Layer::Activation(function),
                LayerDescription::Conv2d(g) => {
                    let shape = conv_shape(index, &g)?;
                    Layer::Conv2d(Conv2d::new(
                        g,
                        reader.values(names::weight_mu(index), &shape)?,
                        reader.values(names::bias_mu(index), &[g.out_channels])?,
                    ))
                }
                LayerDescription::BayesianConv2d(g) => {
                    let shape = conv_shape(index, &g)?;
                    Layer::BayesianConv2d(BayesianConv2d::new(
                        g,
                        reader.values(names::weight_mu(index), &shape)?,
                        reader.values(names::weight_sigma(index), &shape)?,
                        reader.values(names::bias_mu(index), &[g.out_channels])?,
                        reader.values(names::bias_sigma(index), &[g.out_channels])?,
                    ))
                }
                LayerDescription::MaxPool2d(geometry) => Layer::Pool2d(Pool2d { kind: PoolKind::Max, geometry }),
                LayerDescription::AvgPool2d(geometry) => Layer::Pool2d(Pool2d { kind: PoolKind::Avg, geometry }),
                LayerDescription::Flatten => Layer::Flatten,
            });
        }
        let (task, normalization, provenance) = (description.task, description.normalization, description.provenance);
        match description.input_shape {
            Some(shape) => Model::new_image(layers, shape, task, normalization, provenance),
            None => Model::new(layers, task, normalization, provenance),
        }?
        .with_calibration(description.calibration)
    }

    /// Reads and validates a model file. See [`Model::from_bytes`].
    #[cfg(feature = "std")]
    pub fn load(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError::Io { path: path.display().to_string(), message: e.to_string() })?;
        Model::from_bytes(&bytes)
    }
}

struct TensorReader<'a, 'data> {
    file: &'a SafeTensors<'data>,
}

impl TensorReader<'_, '_> {
    fn values(&self, name: String, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let view = self.file.tensor(&name).map_err(|_| ModelError::MissingTensor(name.clone()))?;
        decode(&name, &view, shape)
    }

    fn indices(&self, name: &str, shape: &[usize]) -> Result<Vec<u32>, ModelError> {
        let view = self.file.tensor(name).map_err(|_| ModelError::MissingTensor(name.into()))?;
        decode_indices(name, &view, shape)
    }

    /// The weight layout of layer `index` and the shape of its stored values.
    fn layout(
        &self,
        index: usize,
        inp: usize,
        out: usize,
        layout: StorageLayout,
    ) -> Result<(WeightLayout, Vec<usize>), ModelError> {
        match layout {
            StorageLayout::Dense => Ok((WeightLayout::Dense { rows: out, cols: inp }, vec![out, inp])),
            StorageLayout::Csr => {
                let ptr_name = names::weight_row_ptr(index);
                let row_ptr = self.indices(&ptr_name, &[out + 1])?;
                let nnz = *row_ptr.last().unwrap_or(&0) as usize;
                let idx_name = names::weight_col_idx(index);
                let col_idx = self.indices(&idx_name, &[nnz])?;
                let pattern = CsrPattern::new(out, inp, row_ptr, col_idx)
                    .map_err(|message| ModelError::InvalidSparse { name: ptr_name, message })?;
                Ok((WeightLayout::Csr { cols: inp, pattern }, vec![nnz]))
            }
        }
    }
}

/// The shape of a convolution's weight tensor, after checking its geometry (so that the shape's product is the
/// number of weights and cannot overflow).
fn conv_shape(index: usize, geometry: &crate::layers::ConvGeometry) -> Result<Vec<usize>, ModelError> {
    geometry.validate().map_err(|message| ModelError::InvalidLayer { index, message })?;
    Ok(geometry.weight_shape().to_vec())
}

/// The name of every tensor the description requires, in layer order.
fn expected_tensors(layers: &[LayerDescription]) -> Vec<String> {
    let mut out = Vec::new();
    for (index, layer) in layers.iter().enumerate() {
        let (bayesian, layout) = match *layer {
            LayerDescription::BayesianDense { layout, .. } => (true, layout),
            LayerDescription::Dense { layout, .. } => (false, layout),
            LayerDescription::BayesianConv2d(_) => (true, StorageLayout::Dense),
            LayerDescription::Conv2d(_) => (false, StorageLayout::Dense),
            LayerDescription::Dropout { .. }
            | LayerDescription::Activation { .. }
            | LayerDescription::MaxPool2d(_)
            | LayerDescription::AvgPool2d(_)
            | LayerDescription::Flatten => continue,
        };
        out.push(names::weight_mu(index));
        out.push(names::bias_mu(index));
        if bayesian {
            out.push(names::weight_sigma(index));
            out.push(names::bias_sigma(index));
        }
        if layout == StorageLayout::Csr {
            out.push(names::weight_row_ptr(index));
            out.push(names::weight_col_idx(index));
        }
    }
    out
}
