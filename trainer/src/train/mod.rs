//! A training run: data, network, likelihood and optimiser built from a recipe; epochs of minibatch
//! ELBO steps with seeded noise; per-epoch test metrics; checkpoints and resume; export.
//!
//! Here: the [`Run`] and its epochs of steps; `metrics.rs` what an epoch measures, `selection.rs` which epoch is
//! exported (lowest validation NLL) and when patience stops a run, `resume.rs` checkpoints and resuming.

mod metrics;
mod resume;
mod selection;

pub use metrics::{EpochMetrics, TestMetrics};

use crate::data::augment::RandomTranslation;
use crate::data::{self, Dataset, Split, Targets};
use crate::error::{Result, TrainError};
use crate::likelihood::{BatchTargets, Likelihood};
use crate::nn::{step_key, Network, Noise};
use crate::optim::Adam;
use crate::progress::{TrainPlan, TrainProgress};
use crate::recipe::{KlWeighting, LikelihoodSpec, Recipe};
use bnn_runtime::{Model, Normalization, SeededRng};
use candle_core::{Device, Tensor};
use metrics::batch_metric;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

/// Seed offset of the evaluation noise, so evaluation never reuses a training stream.
const EVAL_SEED_KEY: u64 = 0xe7a1_5eed;
/// Mixed into the training seed to draw the validation set.
const VALIDATION_SEED_KEY: u64 = 0x0a11_da7e;
/// Mixed into a step's key to draw its images' translations, apart from the step's weight noise.
const TRANSLATION_SEED_KEY: u64 = 0x5a1f_7ed0;

/// Everything a training run needs, in memory.
pub struct Run {
    pub recipe: Recipe,
    pub split: Split,
    pub normalization: Option<Normalization>,
    pub network: Network,
    pub likelihood: Likelihood,
    pub adam: Adam,
    pub device: Device,
    pub epochs_done: usize,
    pub history: Vec<EpochMetrics>,
    /// The training examples held out for validation (`training.validation`), normalised like the rest.
    pub validation: Option<Dataset>,
    /// The model of [`Run::best_epoch`], exported when that epoch ended.
    best_model: Option<Model>,
    /// The training images' random translations (`training.shift_pixels`), when the recipe asks for them.
    translation: Option<RandomTranslation>,
    /// Text of the recipe file, stored in the exported model's provenance.
    pub recipe_source: Option<String>,
    /// With a checkpoint file, also write one inside an epoch once this much time has passed since the last.
    pub checkpoint_every: Duration,
    /// Where the current epoch stands, when a checkpoint was written (or resumed) inside it.
    partial: Option<PartialEpoch>,
}

/// The progress of an epoch that a checkpoint interrupted: the steps taken and the sums its metrics need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PartialEpoch {
    epoch: usize,
    steps_done: usize,
    nll_sum: f64,
    kl_last: f64,
    loss_sum: f64,
    metric_sum: f64,
    seconds: f64,
}

fn is_classification(d: &Dataset) -> bool {
    matches!(d.targets, Targets::Classes { .. })
}

/// The data a recipe trains on, as loaded (before normalisation): the training and test sets, and the
/// validation set drawn out of the training set (`training.validation`, a draw keyed by the seed — the same
/// examples every time, so that `bnn calibrate` finds the examples training never saw).
pub fn recipe_data(recipe: &Recipe, data_dir: Option<&Path>) -> Result<(Split, Option<Dataset>)> {
    let seed = recipe.training.seed;
    let mut split = data::load(&recipe.data, data_dir, seed)?;
    if recipe.likelihood == LikelihoodSpec::Categorical {
        split = Split { train: split.train.into_classes()?, test: split.test.into_classes()? };
    } else if is_classification(&split.train) {
        return Err(TrainError::Recipe("a Gaussian likelihood needs regression targets, the data has classes".into()));
    }
    let held = recipe.training.validation;
    if held > 0 && held >= split.train.len() {
        return Err(TrainError::Recipe(format!(
            "training.validation = {held} leaves nothing to train on ({} training examples)",
            split.train.len()
        )));
    }
    let validation = (held > 0).then(|| {
        let (rest, held_out) = split.train.hold_out(held, seed ^ VALIDATION_SEED_KEY);
        split.train = rest;
        held_out
    });
    Ok((split, validation))
}

impl Run {
    /// Loads and normalises the data and builds a freshly initialised network.
    pub fn new(recipe: Recipe, data_dir: Option<&Path>, device: Device) -> Result<Run> {
        recipe.validate()?;
        let seed = recipe.training.seed;
        let (mut split, mut validation) = recipe_data(&recipe, data_dir)?;
        if split.train.is_empty() {
            return Err(TrainError::Data("the training set is empty".into()));
        }
        let normalization = data::fit_normalization(&recipe.data, &split.train);
        if let Some(n) = &normalization {
            data::normalize(&mut split.train, n);
            data::normalize(&mut split.test, n);
            validation.iter_mut().for_each(|v| data::normalize(v, n));
        }
        let shift = recipe.training.shift_pixels;
        let translation = (shift > 0)
            .then(|| {
                let mut blank = [0.0f32];
                normalization.iter().for_each(|n| n.apply_in_place(&mut blank));
                RandomTranslation::new(split.train.dim, shift, blank[0])
            })
            .transpose()?;
        let likelihood = Likelihood::new(recipe.likelihood, &device)?;
        let head = likelihood.head_width(split.train.target_width());
        let network = Network::new(&recipe.model, split.train.dim, head, seed, &device)?;
        let mut vars = network.named_vars();
        vars.extend(likelihood.named_vars());
        let adam = Adam::new(vars)?;
        Ok(Run {
            recipe,
            split,
            normalization,
            network,
            likelihood,
            adam,
            device,
            epochs_done: 0,
            history: vec![],
            validation,
            best_model: None,
            translation,
            recipe_source: None,
            checkpoint_every: Duration::from_secs(300),
            partial: None,
        })
    }

    /// A run that continues training `model` (for example after pruning) with `recipe`: the network starts from
    /// the model's weights and its pruned weights stay absent. The recipe must build the same architecture and
    /// the same input normalisation.
    pub fn from_model(model: &Model, recipe: Recipe, data_dir: Option<&Path>, device: Device) -> Result<Run> {
        let mut run = Run::new(recipe, data_dir, device)?;
        // Compared in their shortest forms: files written before global normalisations were stored as one pair
        // repeat it per feature.
        if run.normalization.as_ref().map(Normalization::compacted)
            != model.normalization().map(Normalization::compacted)
        {
            return Err(TrainError::Recipe("the recipe's data normalisation differs from the model's".into()));
        }
        let device = run.device.clone();
        run.network.load_runtime_layers(model.layers(), &device)?;
        Ok(run)
    }

    fn steps_per_epoch(&self) -> usize {
        self.split.train.len().div_ceil(self.recipe.training.batch_size)
    }

    fn learning_rate(&self, epoch: usize) -> f64 {
        self.recipe.training.learning_rate * self.recipe.training.lr_decay.powi(epoch as i32)
    }

    /// The KL weight per example for step `step` (0-based) of `epoch`, warm-up included.
    pub fn kl_weight(&self, epoch: usize, step: usize, batch: usize) -> f64 {
        let t = &self.recipe.training;
        let m = self.steps_per_epoch();
        let warm = if t.kl_warmup_epochs == 0 {
            1.0
        } else {
            ((epoch as f64 + step as f64 / m as f64) / t.kl_warmup_epochs as f64).min(1.0)
        };
        let per_example = match t.kl_weighting {
            KlWeighting::Uniform => 1.0 / self.split.train.len() as f64,
            // pi_i = 2^(M-i) / (2^M - 1) = 2^-i / (1 - 2^-M), i = step + 1.
            KlWeighting::Blundell => 0.5f64.powi(step as i32 + 1) / (1.0 - 0.5f64.powi(m as i32)) / batch as f64,
        };
        t.kl_scale * warm * per_example
    }

    /// Gathers training examples `idx` into the tensors of step `step` of epoch `epoch`, each image moved by
    /// its translation when the recipe asks for them.
    fn training_batch(&self, idx: &[usize], epoch: usize, step: usize) -> Result<(Tensor, BatchTargets)> {
        let data = &self.split.train;
        let d = data.dim;
        let mut x = Vec::with_capacity(idx.len() * d);
        idx.iter().for_each(|&i| x.extend_from_slice(data.input(i)));
        if let Some(t) = &self.translation {
            let key = step_key(self.recipe.training.seed, epoch, step) ^ TRANSLATION_SEED_KEY;
            t.apply(&mut x, &mut SeededRng::new(key));
        }
        let x = Tensor::from_vec(x, (idx.len(), d), &self.device)?;
        let y = match &data.targets {
            Targets::Classes { labels, .. } => BatchTargets::Classes(Tensor::from_vec(
                idx.iter().map(|&i| labels[i]).collect::<Vec<u32>>(),
                idx.len(),
                &self.device,
            )?),
            Targets::Values { values, outputs } => {
                let mut v = Vec::with_capacity(idx.len() * outputs);
                idx.iter().for_each(|&i| v.extend_from_slice(&values[i * outputs..(i + 1) * outputs]));
                BatchTargets::Values(Tensor::from_vec(v, (idx.len(), *outputs), &self.device)?)
            }
        };
        Ok((x, y))
    }

    /// Runs the remaining epochs, reporting each step and epoch to `progress` and, when `checkpoint` is given,
    /// writing a checkpoint after each epoch and inside an epoch every [`Run::checkpoint_every`].
    pub fn train(&mut self, checkpoint: Option<&Path>, progress: &mut dyn TrainProgress) -> Result<()> {
        let epochs = self.recipe.training.epochs;
        let resumed_steps = self.partial.as_ref().map_or(0, |p| p.steps_done);
        progress.begin(&TrainPlan {
            epochs,
            steps_per_epoch: self.steps_per_epoch(),
            steps_done: self.epochs_done * self.steps_per_epoch() + resumed_steps,
            classification: is_classification(&self.split.train),
        });
        while self.epochs_done < epochs && !self.patience_exhausted() {
            let epoch = self.epochs_done;
            // The epoch runs on one of rayon's worker threads: the step's parallel products and passes then
            // hand work to the other workers directly, instead of each being injected from outside the pool
            // while this thread sleeps until it is done (that cost a third of a step on 2 cores;
            // benches/README.md, session 10).
            let m = rayon::scope(|_| self.train_epoch(epoch, &mut *progress, checkpoint))?;
            progress.epoch(&m);
            self.history.push(m);
            self.epochs_done += 1;
            if self.best_epoch() == Some(self.epochs_done) {
                self.best_model = Some(self.export_current()?);
            }
            if let Some(path) = checkpoint {
                self.save_checkpoint(path)?;
            }
        }
        progress.end();
        Ok(())
    }

    /// One epoch of minibatch steps (from where a resumed checkpoint left it), then the test metrics; with
    /// `checkpoint`, a checkpoint inside the epoch every [`Run::checkpoint_every`].
    pub fn train_epoch(
        &mut self,
        epoch: usize,
        progress: &mut dyn TrainProgress,
        checkpoint: Option<&Path>,
    ) -> Result<EpochMetrics> {
        let start = Instant::now();
        let mut last_checkpoint = start;
        let t = self.recipe.training.clone();
        let n = self.split.train.len();
        let mut order: Vec<usize> = (0..n).collect();
        data::shuffle(&mut order, t.seed.wrapping_mul(31).wrapping_add(epoch as u64));
        let lr = self.learning_rate(epoch);
        let mut p =
            self.partial.take().filter(|p| p.epoch == epoch).unwrap_or(PartialEpoch { epoch, ..Default::default() });
        let steps = self.steps_per_epoch();
        for (step, idx) in order.chunks(t.batch_size).enumerate().skip(p.steps_done) {
            let (x, y) = self.training_batch(idx, epoch, step)?;
            let mut noise = Noise::for_step(t.seed, epoch, step, &self.device);
            let kl_weight = self.kl_weight(epoch, step, idx.len());
            let s = if self.device.is_cpu() {
                self.fused_step(&x, &y, &mut noise, kl_weight, lr)
            } else {
                self.composed_step(&x, &y, &mut noise, kl_weight, lr)
            }
            .map_err(|e| match e {
                TrainError::NonFiniteLoss { value, .. } => TrainError::NonFiniteLoss { epoch, step, value },
                e => e,
            })?;
            p.nll_sum += s.nll;
            p.kl_last = s.kl;
            p.loss_sum += s.loss;
            p.metric_sum += batch_metric(&s.out, &y)?;
            p.steps_done = step + 1;
            progress.step(p.loss_sum / p.steps_done as f64);
            if let Some(path) = checkpoint.filter(|_| last_checkpoint.elapsed() >= self.checkpoint_every) {
                if p.steps_done < steps {
                    let now = p.seconds + start.elapsed().as_secs_f64();
                    self.partial = Some(PartialEpoch { seconds: now, ..p.clone() });
                    self.save_checkpoint(path)?;
                    self.partial = None;
                    last_checkpoint = Instant::now();
                }
            }
        }
        let (nll_sum, kl_last, loss_sum, metric_sum) = (p.nll_sum, p.kl_last, p.loss_sum, p.metric_sum);
        let train_metric = match self.split.train.targets {
            Targets::Classes { .. } => metric_sum / n as f64,
            Targets::Values { .. } => (metric_sum / n as f64).sqrt(),
        };
        let train_seconds = p.seconds + start.elapsed().as_secs_f64();
        let test = self.evaluate(&self.split.test, t.eval_samples, epoch)?;
        let validation = self.validation.as_ref().map(|v| self.evaluate(v, t.eval_samples, epoch)).transpose()?;
        Ok(EpochMetrics {
            epoch: epoch + 1,
            elbo: -loss_sum / steps as f64,
            nll: nll_sum / steps as f64,
            kl: kl_last,
            train_metric,
            test,
            validation,
            seconds: p.seconds + start.elapsed().as_secs_f64(),
            train_seconds,
        })
    }

    /// The data term of a step's loss: the likelihood's NLL per example, plus weight decay of deterministic
    /// layers.
    fn data_loss(&self, out: &Tensor, y: &BatchTargets) -> Result<(Tensor, Tensor)> {
        let nll = self.likelihood.nll(out, y)?;
        let mut loss = nll.clone();
        let decay = self.recipe.training.weight_decay;
        if decay > 0.0 {
            let n = self.split.train.len() as f64;
            loss = (loss + (self.network.deterministic_squared_norm(&self.device)? * (decay / n))?)?;
        }
        Ok((nll, loss))
    }

    /// One optimisation step on the CPU: the hand-written forward and backward passes of `nn::fused_step`
    /// (the Bayesian layers' KL terms and their gradients included), candle's autograd for the likelihood.
    fn fused_step(
        &mut self,
        x: &Tensor,
        y: &BatchTargets,
        noise: &mut Noise,
        kl_weight: f64,
        lr: f64,
    ) -> Result<StepValues> {
        let t = &self.recipe.training;
        let (out, pass) = self.network.forward_fused(x, t.estimator, &self.recipe.prior, noise)?;
        let (nll, loss) = self.data_loss(&out, y)?;
        let data = loss.to_scalar::<f32>()? as f64;
        if !data.is_finite() {
            return Err(TrainError::NonFiniteLoss { epoch: 0, step: 0, value: data });
        }
        let grads = loss.backward()?;
        let kl =
            self.network.update_fused(&grads, &pass, t.estimator, &self.recipe.prior, kl_weight, &mut self.adam, lr)?;
        let value = data + kl_weight * kl;
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss { epoch: 0, step: 0, value });
        }
        Ok(StepValues { out, nll: nll.to_scalar::<f32>()? as f64, kl, loss: value })
    }

    /// One optimisation step composed of candle ops (the reference of the fused step, and the path on
    /// devices other than the CPU).
    fn composed_step(
        &mut self,
        x: &Tensor,
        y: &BatchTargets,
        noise: &mut Noise,
        kl_weight: f64,
        lr: f64,
    ) -> Result<StepValues> {
        let t = &self.recipe.training;
        let (out, kl) = self.network.forward_train(x, t.estimator, &self.recipe.prior, noise)?;
        let (nll, data) = self.data_loss(&out, y)?;
        let loss = (data + (&kl * kl_weight)?)?;
        let value = loss.to_scalar::<f32>()? as f64;
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss { epoch: 0, step: 0, value });
        }
        self.adam.step(&loss.backward()?, lr)?;
        Ok(StepValues { out, nll: nll.to_scalar::<f32>()? as f64, kl: kl.to_scalar::<f32>()? as f64, loss: value })
    }
}

/// What one optimisation step reports: the network's outputs for the batch and the loss's parts.
struct StepValues {
    out: Tensor,
    nll: f64,
    kl: f64,
    loss: f64,
}
