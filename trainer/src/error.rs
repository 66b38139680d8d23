//! The trainer's typed errors.

use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrainError {
    #[error("invalid recipe: {0}")]
    Recipe(String),
    /// A bad argument of a call (a command-line flag, for the `bnn` tool), not of the recipe.
    #[error("invalid argument: {0}")]
    Argument(String),
    #[error("data: {0}")]
    Data(String),
    #[error("i/o error on `{path}`: {message}")]
    Io { path: String, message: String },
    #[error("the loss became {value} at epoch {epoch}, step {step}; lower the learning rate or check the data")]
    NonFiniteLoss { epoch: usize, step: usize, value: f64 },
    #[error("checkpoint `{path}`: {message}")]
    Checkpoint { path: String, message: String },
    #[error(transparent)]
    Model(#[from] bnn_runtime::ModelError),
    #[error("prediction failed: {0}")]
    Predict(#[from] bnn_runtime::PredictError),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl TrainError {
    pub fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        TrainError::Io { path: path.display().to_string(), message: e.to_string() }
    }
}

pub type Result<T> = std::result::Result<T, TrainError>;
