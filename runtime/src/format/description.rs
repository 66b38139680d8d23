//! The JSON model description stored under the `bnn.model` metadata key, and its typed parsing.

use super::MODEL_KEY;
use crate::calibration::Calibration;
use crate::error::ModelError;
use crate::layers::{Activation, ConvGeometry, Layer, PoolGeometry, PoolKind, WeightLayout};
use crate::normalization::Normalization;
use crate::prelude::*;
use crate::provenance::Provenance;
use crate::task::Task;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One entry of the `layers` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum LayerDescription {
    BayesianDense {
        in_features: usize,
        out_features: usize,
        #[serde(default, skip_serializing_if = "StorageLayout::is_dense")]
        layout: StorageLayout,
    },
    Dense {
        in_features: usize,
        out_features: usize,
        #[serde(default, skip_serializing_if = "StorageLayout::is_dense")]
        layout: StorageLayout,
    },
    Dropout {
        p: f32,
    },
    Activation {
        function: Activation,
    },
    Conv2d(ConvGeometry),
    BayesianConv2d(ConvGeometry),
    MaxPool2d(PoolGeometry),
    AvgPool2d(PoolGeometry),
    Flatten,
}

/// How a layer's weight matrix is stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StorageLayout {
    #[default]
    Dense,
    Csr,
}

impl StorageLayout {
    fn is_dense(&self) -> bool {
        *self == StorageLayout::Dense
    }
    fn of(layout: &WeightLayout) -> Self {
        match layout {
            WeightLayout::Dense { .. } => StorageLayout::Dense,
            WeightLayout::Csr { .. } => StorageLayout::Csr,
        }
    }
}

const LAYER_KINDS: [&str; 9] = [
    "bayesian_dense",
    "dense",
    "dropout",
    "activation",
    "conv2d",
    "bayesian_conv2d",
    "max_pool2d",
    "avg_pool2d",
    "flatten",
];

impl LayerDescription {
    pub(crate) fn of(layer: &Layer) -> Self {
        match layer {
            Layer::BayesianDense(l) => LayerDescription::BayesianDense {
                in_features: l.in_features(),
                out_features: l.out_features(),
                layout: StorageLayout::of(l.layout()),
            },
            Layer::Dense(l) => LayerDescription::Dense {
                in_features: l.in_features(),
                out_features: l.out_features(),
                layout: StorageLayout::of(l.layout()),
            },
            Layer::Dropout(d) => LayerDescription::Dropout { p: d.p() },
            Layer::Activation(a) => LayerDescription::Activation { function: *a },
            Layer::Conv2d(l) => LayerDescription::Conv2d(*l.geometry()),
            Layer::BayesianConv2d(l) => LayerDescription::BayesianConv2d(*l.geometry()),
            Layer::Pool2d(p) => match p.kind {
                PoolKind::Max => LayerDescription::MaxPool2d(p.geometry),
                PoolKind::Avg => LayerDescription::AvgPool2d(p.geometry),
            },
            Layer::Flatten => LayerDescription::Flatten,
        }
    }
}

/// The whole description, as written.
#[derive(Serialize)]
pub(crate) struct DescriptionOut<'a> {
    /// `[channels, height, width]` of an image input; absent for flat inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<[usize; 3]>,
    pub layers: Vec<LayerDescription>,
    pub task: &'a Task,
    /// In its shortest form ([`Normalization::compacted`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalization>,
    pub provenance: &'a Provenance,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<&'a Calibration>,
}

/// The whole description, as read.
pub(crate) struct Description {
    pub input_shape: Option<[usize; 3]>,
    pub layers: Vec<LayerDescription>,
    pub task: Task,
    pub normalization: Option<Normalization>,
    pub provenance: Provenance,
    pub calibration: Option<Calibration>,
}

fn invalid(message: impl Into<String>) -> ModelError {
    ModelError::InvalidDescription { key: MODEL_KEY, message: message.into() }
}

/// Parses the description, naming the layer index for problems with a layer.
pub(crate) fn parse(json: &str) -> Result<Description, ModelError> {
    let root: Value = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
    let root = root.as_object().ok_or_else(|| invalid("the description is not a JSON object"))?;
    let raw_layers = root.get("layers").and_then(Value::as_array).ok_or_else(|| invalid("missing `layers` array"))?;
    let mut layers = Vec::with_capacity(raw_layers.len());
    for (index, raw) in raw_layers.iter().enumerate() {
        let kind = raw
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| ModelError::InvalidLayer { index, message: "missing `kind` string".into() })?;
        if !LAYER_KINDS.contains(&kind) {
            return Err(ModelError::UnknownLayerKind { index, kind: kind.into() });
        }
        let layer = LayerDescription::deserialize(raw)
            .map_err(|e| ModelError::InvalidLayer { index, message: e.to_string() })?;
        layers.push(layer);
    }
    let input_shape = match root.get("input_shape") {
        None | Some(Value::Null) => None,
        Some(v) => Some(<[usize; 3]>::deserialize(v).map_err(|e| ModelError::InvalidInputShape(e.to_string()))?),
    };
    let task = root.get("task").ok_or_else(|| invalid("missing `task`"))?;
    let task = Task::deserialize(task).map_err(|e| ModelError::InvalidTask(e.to_string()))?;
    let normalization = match root.get("normalization") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Normalization::deserialize(v).map_err(|e| ModelError::InvalidNormalization(e.to_string()))?),
    };
    let provenance = match root.get("provenance") {
        None | Some(Value::Null) => Provenance::default(),
        Some(v) => Provenance::deserialize(v).map_err(|e| invalid(format!("provenance: {e}")))?,
    };
    let calibration = match root.get("calibration") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Calibration::deserialize(v).map_err(|e| ModelError::InvalidCalibration(e.to_string()))?),
    };
    Ok(Description { input_shape, layers, task, normalization, provenance, calibration })
}
