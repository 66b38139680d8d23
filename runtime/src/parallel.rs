//! Batch prediction on several threads (feature `parallel`, on by default; needs `std`). The batch is cut into
//! contiguous chunks, one per thread, each with its own [`Predictor`]; item `i` still uses seed `seed + i` (with
//! shared weights, every thread draws the batch's networks and the chunks are cut at whole groups of inputs), so
//! the results are bit-identical to [`Model::predict_batch`] whatever the number of threads.

use crate::predict::SHARED_GROUP;
use crate::prelude::*;
use crate::{Model, PredictError, PredictOptions, Prediction, Predictor, Sampler};

impl Model {
    /// [`Model::predict_batch`] on `threads` scoped threads (0: as many as the machine has). Errors are reported
    /// for the first failing item in batch order, as the serial version does.
    pub fn predict_batch_parallel(
        &self,
        inputs: &[f32],
        options: &PredictOptions,
        threads: usize,
    ) -> Result<Vec<Prediction>, PredictError> {
        let d = self.input_dim();
        if !inputs.len().is_multiple_of(d) {
            return Err(PredictError::BatchLength { input_dim: d, found: inputs.len() });
        }
        let items = inputs.len() / d;
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
        .clamp(1, items.max(1));
        let group = if options.sampler == Sampler::SharedWeights { SHARED_GROUP } else { 1 };
        let per_thread = items.div_ceil(threads).next_multiple_of(group).max(1);
        let chunks: Vec<Result<Vec<Prediction>, PredictError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = inputs
                .chunks(per_thread * d)
                .enumerate()
                .map(|(k, chunk)| {
                    scope.spawn(move || Predictor::new(self).predict_batch_from(chunk, options, k * per_thread))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        });
        let mut out = Vec::with_capacity(items);
        for chunk in chunks {
            out.extend(chunk?);
        }
        Ok(out)
    }
}
