//! # bnn-trainer
//!
//! Bayes by Backprop (Blundell et al. 2015) on candle: Bayesian dense and convolutional layers with a
//! factorised Gaussian posterior (sigma = softplus(rho)), Gaussian or scale-mixture priors, the minibatch ELBO
//! with uniform or Blundell KL weighting, local reparameterization (Flipout for convolutions) or weight
//! sampling, deterministic and MC-dropout networks for comparison, recipes, checkpoints with resume, and export
//! through bnn-runtime's writer.

pub mod arch;
pub mod calibrate;
pub mod checkpoint;
pub mod data;
mod error;
pub mod evaluate;
pub mod import;
pub mod kernels;
pub mod likelihood;
pub mod nn;
pub mod optim;
pub mod paired;
pub mod plot;
pub mod progress;
pub mod prune;
pub mod recipe;
pub mod train;

pub use error::{Result, TrainError};
pub use progress::{TrainPlan, TrainProgress};
pub use recipe::Recipe;
pub use train::{EpochMetrics, Run, TestMetrics};
