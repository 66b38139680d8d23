//! [`TrainBar`]: how `bnn` shows a training run on stderr — a progress bar over all steps and one line of
//! metrics per reported epoch (and the last).

use bnn_trainer::{EpochMetrics, TrainPlan, TrainProgress};
use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar with the epoch's mean loss, and epoch summaries printed above it.
pub struct TrainBar {
    bar: ProgressBar,
    /// Print every n-th epoch's metrics (and the last epoch's).
    report_every: usize,
    plan: Option<TrainPlan>,
}

impl TrainBar {
    /// A bar drawn with indicatif's `template` (steps, rate, loss), reporting every `report_every`-th epoch.
    pub fn new(template: &str, report_every: usize) -> anyhow::Result<TrainBar> {
        let bar = ProgressBar::new(0).with_style(ProgressStyle::with_template(template)?.progress_chars("=> "));
        Ok(TrainBar { bar, report_every: report_every.max(1), plan: None })
    }

    /// Every epoch's metrics line and a bar that shows steps, rate, loss and time left.
    pub fn standard() -> anyhow::Result<TrainBar> {
        TrainBar::new("{spinner} [{bar:40}] {pos}/{len} steps, {per_sec}, {msg}, eta {eta}", 1)
    }
}

impl TrainProgress for TrainBar {
    fn begin(&mut self, plan: &TrainPlan) {
        self.bar.set_length((plan.epochs * plan.steps_per_epoch) as u64);
        self.bar.set_position(plan.steps_done as u64);
        self.plan = Some(*plan);
    }

    fn step(&mut self, mean_loss: f64) {
        self.bar.inc(1);
        self.bar.set_message(format!("loss {mean_loss:.4}"));
    }

    fn epoch(&mut self, m: &EpochMetrics) {
        let Some(plan) = self.plan else { return };
        if m.epoch.is_multiple_of(self.report_every) || m.epoch == plan.epochs {
            self.bar.suspend(|| eprintln!("{}", m.summary(plan.classification)));
        }
    }

    fn end(&mut self) {
        self.bar.finish_and_clear();
    }
}
