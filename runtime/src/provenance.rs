//! Where a model came from: recipe, seed, tool, and anything later steps (pruning, import) add.

use crate::prelude::*;
use alloc::collections::BTreeMap;
use serde::{Deserialize, Serialize};

/// Free-form provenance with a few well-known fields. Unknown fields are kept as JSON so tools can add
/// their own (for example pruning statistics) without a format change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The recipe the model was trained from (its text or its path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    /// The seed of the training run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The tool and version that wrote the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    /// Everything else, by key.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}
