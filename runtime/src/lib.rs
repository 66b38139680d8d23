//! # bnn-runtime
//!
//! The lean on-device half of bnn-edge: loads Bayesian neural networks from validated `.safetensors` files
//! (see `FORMAT.md`) and predicts with Monte-Carlo uncertainty — the predictive mean and its split into
//! aleatoric (data noise) and epistemic (model) parts.
//!
//! ```
//! use bnn_runtime::{BayesianDense, Layer, Model, ModelWriter, NoiseModel, PredictOptions, Provenance, Task};
//! // y = 2 x + 1 with uncertain weights.
//! let layer = BayesianDense::new(1, 1, vec![2.0], vec![0.3], vec![1.0], vec![0.1]);
//! let task = Task::Regression { outputs: 1, noise: NoiseModel::Homoscedastic { sigma: 0.2 } };
//! let model = Model::new(vec![Layer::BayesianDense(layer)], task, None, Provenance::default())?;
//! let model = Model::from_bytes(&ModelWriter::new(&model).to_bytes()?)?;
//! let p = model.predict(&[1.0], &PredictOptions::default().samples(1000).seed(7))?;
//! let r = p.as_regression().unwrap();
//! assert!((r.mean[0] - 3.0).abs() < 0.1);
//! assert_eq!(r.total_variance[0], r.aleatoric_variance[0] + r.epistemic_variance[0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Features: `std` (default) adds loading from and writing to paths; without it the crate is `no_std` + `alloc`
//! (models load from bytes and predict). `parallel` (default, needs `std`) adds
//! [`Model::predict_batch_parallel`] and [`ParallelPredictor`] (its threads and their predictors kept for the next
//! batch), whose results never depend on the thread count.

#![cfg_attr(not(feature = "std"), no_std)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod aligned;
mod calibration;
mod error;
pub mod format;
mod kernels;
mod layers;
mod math;
mod model;
mod names;
mod normalization;
#[cfg(feature = "parallel")]
mod parallel;
mod predict;
mod prelude;
mod provenance;
mod quantile;
mod sample;
mod task;
mod uncertainty;

pub use calibration::{
    aps_score, aps_set, confidence, temperature_scaled, tie_breaker, Calibration, CalibrationSplit, ConformalLevel,
    Decision,
};
pub use error::{ModelError, PredictError};
pub use format::{ModelWriter, StorageDtype};
pub use kernels::SAMPLE_BLOCK;
pub use layers::{
    Activation, BayesianConv2d, BayesianDense, Conv2d, ConvGeometry, CsrPattern, Dense, Dropout, Layer, Pool2d,
    PoolGeometry, PoolKind, WeightLayout,
};
pub use model::{Model, Shape};
pub use names::{Named, UnknownName};
pub use normalization::Normalization;
#[cfg(feature = "parallel")]
pub use parallel::ParallelPredictor;
pub use predict::{PredictOptions, Predictor, SampleCount, ADAPTIVE_MIN_SAMPLES};
pub use provenance::Provenance;
pub use quantile::normal_quantile;
pub use sample::{Sampler, SeededRng};
pub use task::{heteroscedastic_scale, softplus, NoiseModel, Task, HETEROSCEDASTIC_MIN_SCALE};
pub use uncertainty::{ClassificationPrediction, Prediction, RegressionPrediction};
