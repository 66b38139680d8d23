//! Which epoch a run exports: the one of lowest validation NLL (with a validation set), else the network as it
//! stands; and when `training.patience` stops a run.

use super::Run;
use crate::error::Result;
use bnn_runtime::{Model, Provenance};

impl Run {
    /// The epoch (1-based, as in [`EpochMetrics::epoch`]) with the lowest validation NLL so far, the first among
    /// equals; `None` without a validation set.
    pub(super) fn best_epoch(&self) -> Option<usize> {
        let validated = self.history.iter().filter_map(|m| Some((m.epoch, m.validation.as_ref()?.nll)));
        validated
            .fold(None, |best: Option<(usize, f64)>, (e, nll)| match best {
                Some((_, b)) if b <= nll => best,
                _ => Some((e, nll)),
            })
            .map(|(e, _)| e)
    }

    /// Whether `training.patience` epochs have passed since the best validation NLL.
    pub(super) fn patience_exhausted(&self) -> bool {
        let patience = self.recipe.training.patience;
        patience > 0 && self.best_epoch().is_some_and(|b| self.epochs_done >= b + patience)
    }

    /// The model to ship, a validated runtime model with normalisation and provenance: with a validation set the
    /// epoch of lowest validation NLL (its provenance says which, under `selected_epoch`), else the network as
    /// it stands.
    pub fn export(&self) -> Result<Model> {
        let (Some(model), Some(epoch)) = (&self.best_model, self.best_epoch()) else { return self.export_current() };
        let mut provenance = model.provenance().clone();
        provenance.extra.insert("epochs".into(), serde_json::json!(self.epochs_done));
        provenance.extra.insert("selected_epoch".into(), serde_json::json!(epoch));
        provenance.extra.insert("selected_by".into(), serde_json::json!("lowest validation NLL"));
        Ok(model.clone().with_provenance(provenance))
    }

    /// The network as it stands, as a validated runtime model with normalisation and provenance.
    pub(super) fn export_current(&self) -> Result<Model> {
        let task = self.likelihood.task(self.split.train.target_width())?;
        let mut provenance = Provenance {
            recipe: self.recipe_source.clone(),
            seed: Some(self.recipe.training.seed),
            producer: Some(format!("bnn-trainer {}", env!("CARGO_PKG_VERSION"))),
            ..Default::default()
        };
        provenance.extra.insert("epochs".into(), serde_json::json!(self.epochs_done));
        if let Some(last) = self.history.last() {
            provenance.extra.insert("final_epoch_metrics".into(), serde_json::to_value(last).unwrap_or_default());
        }
        self.network.to_runtime_model(task, self.normalization.clone(), provenance)
    }
}
