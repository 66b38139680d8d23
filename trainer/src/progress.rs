//! [`TrainProgress`]: what a training run tells its caller while it works. The library prints nothing; the
//! `bnn` tool draws a progress bar and a line per epoch from these calls, a test passes `&mut ()`.

use crate::train::EpochMetrics;

/// What a run is about to do, given to [`TrainProgress::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainPlan {
    /// Epochs of the whole run.
    pub epochs: usize,
    pub steps_per_epoch: usize,
    /// Steps already taken (by a resumed checkpoint); the run goes on from there.
    pub steps_done: usize,
    /// Whether the metrics are accuracies (classification) or RMSEs (regression).
    pub classification: bool,
}

/// Receives a run's progress. Every method has an empty default, so an implementation takes what it needs.
/// `Send`: the epoch runs on one of rayon's worker threads.
pub trait TrainProgress: Send {
    /// Before the first step.
    fn begin(&mut self, _plan: &TrainPlan) {}
    /// After each minibatch step: the mean loss of the epoch's steps so far.
    fn step(&mut self, _mean_loss: f64) {}
    /// After each epoch, with its training and test metrics.
    fn epoch(&mut self, _metrics: &EpochMetrics) {}
    /// After the last epoch.
    fn end(&mut self) {}
}

/// No reports.
impl TrainProgress for () {}
