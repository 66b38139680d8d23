//! Batch prediction on several threads (feature `parallel`, on by default; needs `std`). The batch is cut into
//! contiguous chunks, one per thread, each with its own [`Predictor`]; item `i` still uses seed `seed + i` (with
//! shared weights the chunks are cut at whole groups of inputs, and each thread draws every sample's network for its
//! own inputs, from the sample's own stream), so the results are bit-identical to [`Model::predict_batch`] whatever
//! the number of threads.

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
        let shared = options.sampler == Sampler::SharedWeights;
        let group = if shared { SHARED_GROUP } else { 1 };
        let per_thread = items.div_ceil(threads).next_multiple_of(group).max(1);
        let run = |k: usize, chunk: &[f32]| Predictor::new(self).predict_batch_from(chunk, options, k * per_thread);
        // The calling thread runs the first chunk while the others run theirs on scoped threads.
        let chunks: Vec<Result<Vec<Prediction>, PredictError>> = std::thread::scope(|scope| {
            let mut chunks = inputs.chunks(per_thread * d).enumerate();
            let first = chunks.next();
            let handles: Vec<_> = chunks.map(|(k, chunk)| scope.spawn(move || run(k, chunk))).collect();
            let first = first.map(|(k, chunk)| run(k, chunk));
            first.into_iter().chain(handles.into_iter().map(join)).collect()
        });
        let mut out = Vec::with_capacity(items);
        for chunk in chunks {
            out.extend(chunk?);
        }
        Ok(out)
    }
}

/// A scoped thread's result, its panic carried on to the caller.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
