//! [`BnnModel`]: the heap-allocated model behind a C pointer or a Java `long` handle, with the predictors its
//! calls reuse, and the only code that creates, borrows and frees it.
//!
//! A handle is shared, not owned, while predictions run: the runtime's `Model` is `Send + Sync` and each call
//! takes a `Predictor` of its own (one a finished call left, or a new one), so any number of threads may predict
//! through one handle at once. Freeing must not race with those calls; the Java wrapper guarantees it with a
//! read-write lock, C callers by contract.

use crate::c_api::{BNN_TASK_CLASSIFICATION, BNN_TASK_REGRESSION};
use crate::BindingError;
use bnn_runtime::{Model, Predictor, Task};
use self_cell::self_cell;
use std::sync::{Mutex, PoisonError};

/// Predictors a handle keeps between calls: as many as calls have run at once, up to this many.
const KEPT_PREDICTORS: usize = 4;

/// The predictors of a model that no call is using.
type IdlePredictors<'m> = Mutex<Vec<Predictor<'m>>>;

self_cell!(
    /// A model and the idle predictors that borrow it.
    struct ModelAndPredictors {
        owner: Model,
        #[not_covariant]
        dependent: IdlePredictors,
    }
);

/// Opaque to hosts: a loaded, validated model.
pub struct BnnModel {
    /// The model, and the predictors earlier calls left for the next ones: a predictor allocates its buffers when
    /// it is made (a large share of one prediction's time, `android/README.md`, "Speed") and keeps the last
    /// prediction's noise for the next one with the same seed; its results are the bits a new predictor gives.
    cell: ModelAndPredictors,
}

impl BnnModel {
    fn new(model: Model) -> Self {
        Self { cell: ModelAndPredictors::new(model, |_| Mutex::new(Vec::new())) }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BindingError> {
        Ok(Self::new(Model::from_bytes(bytes)?))
    }

    pub fn from_path(path: &str) -> Result<Self, BindingError> {
        Ok(Self::new(Model::load(path)?))
    }

    pub fn model(&self) -> &Model {
        self.cell.borrow_owner()
    }

    /// Runs `predict` with a predictor of this model no other call is using: an idle one if there is one, else a
    /// new one, kept for later calls afterwards (up to four; a panic drops it).
    pub fn with_predictor<R>(&self, predict: impl FnOnce(&mut Predictor<'_>) -> R) -> R {
        self.cell.with_dependent(|model, idle| {
            // A poisoned lock only means a thread panicked while holding it; the list itself is always whole.
            let taken = idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut predictor = taken.unwrap_or_else(|| Predictor::new(model));
            let result = predict(&mut predictor);
            let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < KEPT_PREDICTORS {
                idle.push(predictor);
            }
            result
        })
    }

    /// `BNN_TASK_CLASSIFICATION` or `BNN_TASK_REGRESSION`, which are also the ordinals of Java's `io.bnnedge.Task`.
    pub fn task_code(&self) -> i32 {
        match self.model().task() {
            Task::Classification { .. } => BNN_TASK_CLASSIFICATION,
            Task::Regression { .. } => BNN_TASK_REGRESSION,
        }
    }

    /// Classes of a classifier, or outputs of a regression model.
    pub fn output_dim(&self) -> usize {
        match self.model().task() {
            Task::Classification { classes, .. } => *classes,
            Task::Regression { outputs, .. } => *outputs,
        }
    }

    /// Moves the model to the heap; the pointer stays valid until [`BnnModel::release`].
    pub fn into_raw(self) -> *mut BnnModel {
        Box::into_raw(Box::new(self))
    }

    /// The model behind a handle; a null handle is [`BindingError::Closed`].
    ///
    /// # Safety
    /// `handle` is null or came from [`BnnModel::into_raw`] and has not been released.
    pub unsafe fn borrow<'a>(handle: *const BnnModel) -> Result<&'a BnnModel, BindingError> {
        // SAFETY: by the caller's contract a non-null handle points to a live BnnModel.
        unsafe { handle.as_ref() }.ok_or(BindingError::Closed)
    }

    /// Frees a handle; null is ignored.
    ///
    /// # Safety
    /// `handle` is null or came from [`BnnModel::into_raw`], has not been released, and no call uses it any more.
    pub unsafe fn release(handle: *mut BnnModel) {
        if !handle.is_null() {
            // SAFETY: by the caller's contract we hold the only remaining use of a Box-allocated model.
            drop(unsafe { Box::from_raw(handle) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::pack_prediction;
    use bnn_runtime::{Activation, BayesianDense, Layer, PredictOptions, Provenance, Sampler, SeededRng};

    /// A 6 -> 16 -> 3 ReLU classifier with random posteriors.
    fn model() -> Model {
        let mut rng = SeededRng::new(11);
        let mut dense = |i: usize, o: usize| {
            let mut draw = |n: usize, scale: f32| (0..n).map(|_| rng.gaussian() * scale).collect::<Vec<f32>>();
            let (mu, sigma) = (draw(i * o, 0.6), draw(i * o, 0.3).into_iter().map(f32::abs).collect());
            Layer::BayesianDense(BayesianDense::new(i, o, mu, sigma, draw(o, 0.1), vec![0.05; o]))
        };
        let layers = vec![dense(6, 16), Layer::Activation(Activation::Relu), dense(16, 3)];
        Model::new(layers, Task::Classification { classes: 3, labels: vec![] }, None, Provenance::default()).unwrap()
    }

    fn bits(predictions: &[bnn_runtime::Prediction]) -> Vec<u32> {
        let mut packed = Vec::new();
        predictions.iter().for_each(|p| pack_prediction(p, &mut packed));
        packed.iter().map(|v| v.to_bits()).collect()
    }

    /// Three threads predict through one handle at once, each a sequence that repeats seeds (so a kept predictor
    /// records and replays its noise) and changes seed, sampler, sample count and batch size; every result
    /// must be the bits of `Model::predict_batch`, a new predictor per call. The handle keeps at most
    /// [`KEPT_PREDICTORS`].
    #[test]
    fn kept_predictors_give_the_bits_of_new_ones() {
        let handle = BnnModel::new(model());
        let inputs: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin()).collect();
        let (local, weights) = (Sampler::LocalReparam, Sampler::WeightSampling);
        let calls = [(3, local, 32), (3, local, 32), (3, local, 32), (3, local, 32), (4, local, 32), (4, local, 7)]
            .into_iter()
            .chain([(4, weights, 7), (4, local, 7), (4, local, 7), (4, Sampler::Mean, 1), (3, local, 32)])
            .chain([(3, Sampler::SharedWeights, 32)])
            .collect::<Vec<_>>();
        std::thread::scope(|scope| {
            for thread in 0..3 {
                let (handle, inputs, calls) = (&handle, &inputs, &calls);
                scope.spawn(move || {
                    for (call, &(seed, sampler, samples)) in calls.iter().enumerate() {
                        let options = PredictOptions::default().seed(seed).sampler(sampler).samples(samples);
                        let batch = &inputs[..6 * (1 + (call + thread) % 2)];
                        let got = handle.with_predictor(|p| p.predict_batch(batch, &options)).unwrap();
                        let want = handle.model().predict_batch(batch, &options).unwrap();
                        assert_eq!(bits(&got), bits(&want), "thread {thread}, call {call}");
                    }
                });
            }
        });
        let kept = handle.cell.with_dependent(|_, idle| idle.lock().unwrap().len());
        assert!((1..=KEPT_PREDICTORS).contains(&kept), "{kept} predictors kept");
    }
}
