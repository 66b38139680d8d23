//! What an epoch measures: the training loss's parts and the Monte-Carlo metrics of the test and validation
//! sets, each predicted by the runtime as a deployed model would be.

use super::{is_classification, Run, EVAL_SEED_KEY};
use crate::data::{Dataset, Targets};
use crate::error::{Result, TrainError};
use crate::evaluate::gaussian_nll;
use crate::likelihood::BatchTargets;
use bnn_runtime::{PredictOptions, Provenance};
use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};

/// What one epoch measured. Losses are per training example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    /// Mean of -(NLL + KL weight * KL) over the epoch's minibatches (the ELBO per example when beta = 1).
    pub elbo: f64,
    pub nll: f64,
    /// The full KL(q || p) in nats (not divided by N).
    pub kl: f64,
    /// Accuracy (classification) or RMSE (regression) of the training minibatches' own samples.
    pub train_metric: f64,
    pub test: TestMetrics,
    /// On the validation set held out of the training set (`training.validation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<TestMetrics>,
    /// Wall-clock seconds of the epoch, test evaluation included.
    pub seconds: f64,
    /// Wall-clock seconds of the optimisation steps alone (what other trainers' epoch times measure).
    #[serde(default)]
    pub train_seconds: f64,
}

/// Test-set metrics of the Monte-Carlo predictive distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMetrics {
    /// Accuracy (classification) or RMSE of the predictive mean (regression).
    pub metric: f64,
    /// Mean negative log predictive probability (classification) or Gaussian NLL with the total variance.
    pub nll: f64,
    pub samples: usize,
}

impl Run {
    /// Monte-Carlo test metrics with `samples` samples per example, predicted by the runtime (local
    /// reparameterization, the same sampler a deployed model uses) on all CPU threads.
    pub fn evaluate(&self, data: &Dataset, samples: usize, epoch: usize) -> Result<TestMetrics> {
        let n = data.len();
        if n == 0 {
            return Ok(TestMetrics { metric: f64::NAN, nll: f64::NAN, samples });
        }
        // The data is normalised already: the model for it has no normalisation of its own.
        let task = self.likelihood.task(self.split.train.target_width())?;
        let model = self.network.to_runtime_model(task, None, Provenance::default())?;
        let seed = (self.recipe.training.seed ^ EVAL_SEED_KEY).wrapping_add((epoch as u64) << 32);
        let options = PredictOptions::default().samples(samples).seed(seed);
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let predictions = model.predict_batch_parallel(&data.inputs, &options, threads)?;
        let (mut metric, mut nll) = (0.0, 0.0);
        for (i, p) in predictions.iter().enumerate() {
            match (&data.targets, p.as_classification(), p.as_regression()) {
                (Targets::Classes { labels, .. }, Some(c), _) => {
                    let y = labels[i] as usize;
                    metric += (c.class == y) as u8 as f64;
                    nll -= (c.probabilities[y] as f64).max(1e-12).ln();
                }
                (Targets::Values { values, outputs }, _, Some(r)) => {
                    for (k, y) in values[i * outputs..(i + 1) * outputs].iter().enumerate() {
                        metric += ((r.mean[k] - y) as f64).powi(2);
                        nll += gaussian_nll(*y as f64, r.mean[k] as f64, r.total_variance[k] as f64);
                    }
                }
                _ => return Err(TrainError::Data("the model's task does not match the test targets".into())),
            }
        }
        let metric = if is_classification(data) { metric / n as f64 } else { (metric / n as f64).sqrt() };
        Ok(TestMetrics { metric, nll: nll / n as f64, samples })
    }
}

/// Correct predictions (classification) or the summed squared error of the means (regression) of a batch.
pub(super) fn batch_metric(out: &Tensor, y: &BatchTargets) -> Result<f64> {
    Ok(match y {
        BatchTargets::Classes(labels) => {
            out.argmax(D::Minus1)?.eq(labels)?.to_dtype(candle_core::DType::F32)?.sum_all()?.to_scalar::<f32>()? as f64
        }
        BatchTargets::Values(v) => {
            let k = v.dim(1)?;
            (out.narrow(1, 0, k)? - v)?.sqr()?.sum_all()?.to_scalar::<f32>()? as f64
        }
    })
}

impl EpochMetrics {
    /// One human-readable line.
    pub fn summary(&self, classification: bool) -> String {
        let (train, test) = if classification {
            (
                format!("train acc {:.2}%", 100.0 * self.train_metric),
                format!("test acc {:.2}% (S={})", 100.0 * self.test.metric, self.test.samples),
            )
        } else {
            (
                format!("train rmse {:.4}", self.train_metric),
                format!("test rmse {:.4} (S={})", self.test.metric, self.test.samples),
            )
        };
        let validation = match &self.validation {
            Some(v) if classification => format!("  val acc {:.2}% nll {:.4}", 100.0 * v.metric, v.nll),
            Some(v) => format!("  val rmse {:.4} nll {:.4}", v.metric, v.nll),
            None => String::new(),
        };
        format!(
            "epoch {:>3}  elbo {:>10.4}  nll {:.4}  kl {:>10.1}  {train}{validation}  {test}  test nll {:.4}  {:.1}s (steps {:.1}s)",
            self.epoch, self.elbo, self.nll, self.kl, self.test.nll, self.seconds, self.train_seconds
        )
    }
}
