//! Training checkpoints: every variable and the optimiser state in one safetensors file, with the epoch,
//! the step count and the recipe in its metadata, and the model file of the best validation epoch so far as a
//! byte tensor. Written atomically, so a crash leaves the previous one.

use crate::error::{Result, TrainError};
use bnn_runtime::format::write_atomically;
use candle_core::{Device, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;

/// What a checkpoint holds besides its tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointInfo {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub adam_steps: u64,
    /// The recipe, as JSON, that produced it.
    pub recipe_json: String,
    /// Per-epoch metrics so far, as JSON.
    pub history_json: String,
    /// The progress of an epoch interrupted by this checkpoint, as JSON (`None`: written between epochs).
    pub partial_epoch_json: Option<String>,
    /// The model file (runtime format) of the epoch with the lowest validation NLL so far, if any.
    pub best_model: Option<Vec<u8>>,
}

/// The name of the byte tensor holding [`CheckpointInfo::best_model`].
const BEST_MODEL: &str = "bnn.checkpoint.best_model";

/// Writes `tensors` (f32) and `info` to `path` atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)], info: &CheckpointInfo) -> Result<()> {
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        data.push((name.clone(), t.dims().to_vec(), values.iter().flat_map(|v| v.to_le_bytes()).collect()));
    }
    let views = data
        .iter()
        .map(|(n, shape, bytes)| {
            Ok((n.as_str(), TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(|e| err(path, e))?))
        })
        .chain(info.best_model.as_ref().map(|bytes| {
            let view = TensorView::new(Dtype::U8, vec![bytes.len()], bytes).map_err(|e| err(path, e))?;
            Ok((BEST_MODEL, view))
        }))
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::from([
        ("bnn.checkpoint.epochs_done".to_string(), info.epochs_done.to_string()),
        ("bnn.checkpoint.adam_steps".to_string(), info.adam_steps.to_string()),
        ("bnn.checkpoint.recipe".to_string(), info.recipe_json.clone()),
        ("bnn.checkpoint.history".to_string(), info.history_json.clone()),
    ]);
    if let Some(partial) = &info.partial_epoch_json {
        meta.insert("bnn.checkpoint.partial_epoch".to_string(), partial.clone());
    }
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| err(path, e))?;
    write_atomically(path, &bytes)?;
    Ok(())
}

/// Reads a checkpoint's tensors and info.
pub fn load(path: &Path, device: &Device) -> Result<(Vec<(String, Tensor)>, CheckpointInfo)> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| err(path, e))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| err(path, e))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |k: &str| meta.get(k).cloned().ok_or_else(|| err(path, format!("missing metadata `{k}`")));
    let mut info = CheckpointInfo {
        epochs_done: get("bnn.checkpoint.epochs_done")?.parse().map_err(|e| err(path, e))?,
        adam_steps: get("bnn.checkpoint.adam_steps")?.parse().map_err(|e| err(path, e))?,
        recipe_json: get("bnn.checkpoint.recipe")?,
        history_json: get("bnn.checkpoint.history")?,
        partial_epoch_json: meta.get("bnn.checkpoint.partial_epoch").cloned(),
        best_model: None,
    };
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        if name == BEST_MODEL && view.dtype() == Dtype::U8 {
            info.best_model = Some(view.data().to_vec());
            continue;
        }
        if view.dtype() != Dtype::F32 {
            return Err(err(path, format!("tensor `{name}` is not f32")));
        }
        let values: Vec<f32> =
            view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        tensors.push((name, Tensor::from_vec(values, view.shape(), device)?));
    }
    Ok((tensors, info))
}

fn err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint { path: path.display().to_string(), message: e.to_string() }
}
