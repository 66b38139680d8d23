//! [`ModelWriter`]: serialises a [`Model`] to a `.safetensors` file in a chosen storage dtype.

use super::description::{DescriptionOut, LayerDescription};
use super::tensor::{EncodedTensor, StorageDtype};
#[cfg(feature = "std")]
use super::write_atomically;
use super::{names, FORMAT_VERSION, MODEL_KEY, VERSION_KEY};
use crate::error::ModelError;
use crate::layers::{BayesianDense, Dense, Layer, WeightLayout};
use crate::model::{Model, Shape};
use crate::normalization::Normalization;
use crate::prelude::*;
#[cfg(feature = "std")]
use std::path::Path;

/// Writes a model in the format `Model::from_bytes` reads. The bytes it produces are loaded back and
/// validated before they are returned, so a writer can never emit a file the loader rejects (for example
/// a mean that overflows f16).
///
/// ```
/// use bnn_runtime::{Activation, BayesianDense, Layer, Model, ModelWriter, NoiseModel, Provenance, StorageDtype, Task};
/// let layer = BayesianDense::new(2, 1, vec![0.5, -1.0], vec![0.1, 0.2], vec![0.0], vec![0.05]);
/// let task = Task::Regression { outputs: 1, noise: NoiseModel::Homoscedastic { sigma: 0.1 } };
/// let model = Model::new(vec![Layer::BayesianDense(layer)], task, None, Provenance::default()).unwrap();
/// let bytes = ModelWriter::new(&model).dtype(StorageDtype::F16).to_bytes().unwrap();
/// let back = Model::from_bytes(&bytes).unwrap();
/// assert_eq!(back.input_dim(), 2);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ModelWriter<'a> {
    model: &'a Model,
    dtype: StorageDtype,
}

impl<'a> ModelWriter<'a> {
    /// A writer storing f32.
    pub fn new(model: &'a Model) -> Self {
        Self { model, dtype: StorageDtype::F32 }
    }

    /// Stores every tensor in `dtype`.
    pub fn dtype(mut self, dtype: StorageDtype) -> Self {
        self.dtype = dtype;
        self
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let model = self.model;
        let value_bytes = match self.dtype {
            StorageDtype::F32 => 4,
            StorageDtype::F16 | StorageDtype::Bf16 => 2,
        };
        let layers: Vec<Layer> = model.layers().iter().map(|l| smaller_layout(l, value_bytes)).collect();
        let input_shape = match model.input_shape() {
            Shape::Image(shape) => Some(shape),
            Shape::Flat(_) => None,
        };
        let description = DescriptionOut {
            input_shape,
            layers: layers.iter().map(LayerDescription::of).collect(),
            task: model.task(),
            normalization: model.normalization().map(Normalization::compacted),
            provenance: model.provenance(),
            calibration: model.calibration(),
        };
        let json = serde_json::to_string(&description)
            .map_err(|e| ModelError::InvalidDescription { key: MODEL_KEY, message: e.to_string() })?;
        let metadata = [(VERSION_KEY.to_string(), FORMAT_VERSION.to_string()), (MODEL_KEY.to_string(), json)]
            .into_iter()
            .collect();

        let mut tensors: Vec<(String, EncodedTensor)> = Vec::new();
        let d = self.dtype;
        for (index, layer) in layers.iter().enumerate() {
            let (layout, cols) = match layer {
                Layer::BayesianDense(l) => {
                    tensors
                        .push((names::weight_mu(index), EncodedTensor::new(l.weight_mu(), value_shape(l.layout()), d)));
                    tensors.push((
                        names::weight_sigma(index),
                        EncodedTensor::new(l.weight_sigma(), value_shape(l.layout()), d),
                    ));
                    tensors.push((names::bias_mu(index), EncodedTensor::new(l.bias_mu(), vec![l.out_features()], d)));
                    tensors.push((
                        names::bias_sigma(index),
                        EncodedTensor::new(l.bias_sigma(), vec![l.out_features()], d),
                    ));
                    (l.layout(), l.in_features())
                }
                Layer::Dense(l) => {
                    tensors.push((names::weight_mu(index), EncodedTensor::new(l.weight(), value_shape(l.layout()), d)));
                    tensors.push((names::bias_mu(index), EncodedTensor::new(l.bias(), vec![l.out_features()], d)));
                    (l.layout(), l.in_features())
                }
                Layer::Conv2d(l) => {
                    let (shape, o) = (l.geometry().weight_shape().to_vec(), l.geometry().out_channels);
                    tensors.push((names::weight_mu(index), EncodedTensor::new(l.weight(), shape, d)));
                    tensors.push((names::bias_mu(index), EncodedTensor::new(l.bias(), vec![o], d)));
                    continue;
                }
                Layer::BayesianConv2d(l) => {
                    let (shape, o) = (l.geometry().weight_shape().to_vec(), l.geometry().out_channels);
                    tensors.push((names::weight_mu(index), EncodedTensor::new(l.weight_mu(), shape.clone(), d)));
                    tensors.push((names::weight_sigma(index), EncodedTensor::new(l.weight_sigma(), shape, d)));
                    tensors.push((names::bias_mu(index), EncodedTensor::new(l.bias_mu(), vec![o], d)));
                    tensors.push((names::bias_sigma(index), EncodedTensor::new(l.bias_sigma(), vec![o], d)));
                    continue;
                }
                Layer::Dropout(_) | Layer::Activation(_) | Layer::Pool2d(_) | Layer::Flatten => continue,
            };
            if let WeightLayout::Csr { pattern, .. } = layout {
                tensors.push((names::weight_row_ptr(index), EncodedTensor::indices(pattern.row_ptr(), false)));
                tensors.push((
                    names::weight_col_idx(index),
                    EncodedTensor::indices(pattern.col_idx(), narrow_indices(cols)),
                ));
            }
        }
        let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
            .map_err(|e| ModelError::MalformedFile(e.to_string()))?;
        let bytes = with_sorted_header(&bytes)?;
        Model::from_bytes(&bytes)?;
        Ok(bytes)
    }

    /// Writes the file atomically (temporary file, sync, rename): a crash leaves the old file or the new one.
    #[cfg(feature = "std")]
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        write_atomically(path.as_ref(), &self.to_bytes()?)
    }
}

/// Column indices are stored as u16 when every column fits.
fn narrow_indices(cols: usize) -> bool {
    cols <= u16::MAX as usize + 1
}

fn value_shape(layout: &WeightLayout) -> Vec<usize> {
    match layout {
        WeightLayout::Dense { rows, cols } => vec![*rows, *cols],
        WeightLayout::Csr { pattern, .. } => vec![pattern.nnz()],
    }
}

/// The layer in whichever layout takes fewer bytes: dense, or CSR over its unpruned weights (an entry is
/// pruned when its mean and standard deviation are both 0).
fn smaller_layout(layer: &Layer, value_bytes: usize) -> Layer {
    let (inp, out, values_per_weight) = match layer {
        Layer::BayesianDense(l) => (l.in_features(), l.out_features(), 2),
        Layer::Dense(l) => (l.in_features(), l.out_features(), 1),
        _ => return layer.clone(),
    };
    let sparse = layer.sparsified();
    let nnz = match &sparse {
        Layer::BayesianDense(l) => l.weight_mu().len(),
        Layer::Dense(l) => l.weight().len(),
        _ => unreachable!("only dense layers reach here"),
    };
    let index_bytes = if narrow_indices(inp) { 2 } else { 4 };
    let dense_bytes = inp * out * values_per_weight * value_bytes;
    let csr_bytes = nnz * (values_per_weight * value_bytes + index_bytes) + (out + 1) * 4;
    if csr_bytes < dense_bytes {
        return sparse;
    }
    match layer {
        Layer::BayesianDense(l) => Layer::BayesianDense(BayesianDense::new(
            inp,
            out,
            l.dense_weight_mu(),
            l.dense_weight_sigma(),
            l.bias_mu().to_vec(),
            l.bias_sigma().to_vec(),
        )),
        Layer::Dense(l) => Layer::Dense(Dense::new(inp, out, l.dense_weight(), l.bias().to_vec())),
        _ => unreachable!("only dense layers reach here"),
    }
}

/// Rewrites a safetensors file's JSON header with its keys sorted. `safetensors::serialize` writes the
/// metadata map in hash order, which differs between runs; sorting makes the same model give the same bytes.
fn with_sorted_header(bytes: &[u8]) -> Result<Vec<u8>, ModelError> {
    let malformed = |m: String| ModelError::MalformedFile(m);
    let n = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| malformed("short file".into()))?) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(bytes[8..8 + n].trim_ascii_end()).map_err(|e| malformed(e.to_string()))?;
    // serde_json's map is ordered by key unless its `preserve_order` feature is on.
    let mut text = serde_json::to_string(&header).map_err(|e| malformed(e.to_string()))?.into_bytes();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}
