//! A training run: data, network, likelihood and optimiser built from a recipe; epochs of minibatch
//! ELBO steps with seeded noise; per-epoch test metrics; checkpoints and resume; export.

use crate::checkpoint::{self, CheckpointInfo};
use crate::data::augment::RandomTranslation;
use crate::data::{self, Dataset, Split, Targets};
use crate::error::{Result, TrainError};
use crate::evaluate::gaussian_nll;
use crate::likelihood::{BatchTargets, Likelihood};
use crate::nn::{step_key, Network, Noise};
use crate::optim::Adam;
use crate::progress::{TrainPlan, TrainProgress};
use crate::recipe::{KlWeighting, LikelihoodSpec, Recipe};
use bnn_runtime::{Model, ModelWriter, Normalization, PredictOptions, Provenance, SeededRng};
use candle_core::{Device, Tensor, D};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

/// Seed offset of the evaluation noise, so evaluation never reuses a training stream.
const EVAL_SEED_KEY: u64 = 0xe7a1_5eed;
/// Mixed into the training seed to draw the validation set.
const VALIDATION_SEED_KEY: u64 = 0x0a11_da7e;
/// Mixed into a step's key to draw its images' translations, apart from the step's weight noise.
const TRANSLATION_SEED_KEY: u64 = 0x5a1f_7ed0;

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

    /// The epoch (1-based, as in [`EpochMetrics::epoch`]) with the lowest validation NLL so far, the first among
    /// equals; `None` without a validation set.
    fn best_epoch(&self) -> Option<usize> {
        let validated = self.history.iter().filter_map(|m| Some((m.epoch, m.validation.as_ref()?.nll)));
        validated
            .fold(None, |best: Option<(usize, f64)>, (e, nll)| match best {
                Some((_, b)) if b <= nll => best,
                _ => Some((e, nll)),
            })
            .map(|(e, _)| e)
    }

    /// Whether `training.patience` epochs have passed since the best validation NLL.
    fn patience_exhausted(&self) -> bool {
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
    fn export_current(&self) -> Result<Model> {
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

/// What one optimisation step reports: the network's outputs for the batch and the loss's parts.
struct StepValues {
    out: Tensor,
    nll: f64,
    kl: f64,
    loss: f64,
}

/// Correct predictions (classification) or the summed squared error of the means (regression) of a batch.
fn batch_metric(out: &Tensor, y: &BatchTargets) -> Result<f64> {
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
