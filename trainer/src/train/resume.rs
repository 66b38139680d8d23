//! A run saved to a checkpoint (every variable, the optimiser's state, the history, the best model so far and
//! the progress inside an epoch) and resumed from one.

use super::Run;
use crate::checkpoint::{self, CheckpointInfo};
use crate::error::{Result, TrainError};
use crate::recipe::Recipe;
use bnn_runtime::{Model, ModelWriter};
use candle_core::Tensor;
use std::path::Path;

impl Run {
    fn recipe_json(&self) -> String {
        serde_json::to_string(&self.recipe).unwrap_or_default()
    }

    /// Writes every variable, the optimiser state and the progress to `path`, atomically.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> =
            self.adam.vars().iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
        tensors.extend(self.adam.state()?);
        let info = CheckpointInfo {
            epochs_done: self.epochs_done,
            adam_steps: self.adam.t,
            recipe_json: self.recipe_json(),
            history_json: serde_json::to_string(&self.history).unwrap_or_default(),
            partial_epoch_json: self.partial.as_ref().and_then(|p| serde_json::to_string(p).ok()),
            best_model: self.best_model.as_ref().map(|m| ModelWriter::new(m).to_bytes()).transpose()?,
        };
        checkpoint::save(path, &tensors, &info)
    }

    /// Restores a checkpoint written by a run of the same recipe (only `training.epochs` may differ).
    pub fn resume_from(&mut self, path: &Path) -> Result<()> {
        let (tensors, info) = checkpoint::load(path, &self.device)?;
        let mut saved: Recipe = serde_json::from_str(&info.recipe_json)
            .map_err(|e| TrainError::Checkpoint { path: path.display().to_string(), message: e.to_string() })?;
        saved.training.epochs = self.recipe.training.epochs;
        if saved != self.recipe {
            return Err(TrainError::Checkpoint {
                path: path.display().to_string(),
                message: "it was written by a different recipe".into(),
            });
        }
        let bad = |m: String| TrainError::Checkpoint { path: path.display().to_string(), message: m };
        let vars = self.adam.vars().to_vec();
        let mut restored = 0;
        for (name, value) in tensors {
            if let Some((_, var)) = vars.iter().find(|(n, _)| *n == name) {
                if var.as_tensor().dims() != value.dims() {
                    return Err(bad(format!(
                        "`{name}` has shape {:?}, the network needs {:?}",
                        value.dims(),
                        var.as_tensor().dims()
                    )));
                }
                var.set(&value)?;
                restored += 1;
            } else if !self.adam.set_state(&name, value)? {
                return Err(bad(format!("unknown tensor `{name}`")));
            }
        }
        if restored != vars.len() {
            return Err(bad(format!("holds {restored} of the network's {} variables", vars.len())));
        }
        if info.epochs_done > self.recipe.training.epochs {
            return Err(bad(format!(
                "it has {} epochs done, more than the {} asked for; ask for at least that many",
                info.epochs_done, self.recipe.training.epochs
            )));
        }
        self.adam.t = info.adam_steps;
        self.epochs_done = info.epochs_done;
        self.history = serde_json::from_str(&info.history_json).unwrap_or_default();
        self.best_model = match &info.best_model {
            Some(_) if self.best_epoch().is_none() => return Err(bad("a best model but no validation metrics".into())),
            Some(bytes) => Some(Model::from_bytes(bytes).map_err(|e| bad(format!("its best model: {e}")))?),
            None => None,
        };
        self.partial = match &info.partial_epoch_json {
            Some(json) => Some(serde_json::from_str(json).map_err(|e| bad(format!("its epoch progress: {e}")))?),
            None => None,
        };
        Ok(())
    }
}
