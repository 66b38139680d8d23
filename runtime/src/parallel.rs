//! Batch prediction on several threads (feature `parallel`, on by default; needs `std`). The batch is cut into
//! contiguous chunks, one per thread, each with its own [`Predictor`]; item `i` still uses seed `seed + i` (with
//! shared weights the chunks are cut at whole groups of inputs, and the threads first draw every sample's network
//! together, each a share of them, where they fit in memory; else each thread draws them for its own inputs), so
//! the results are bit-identical to [`Model::predict_batch`] whatever the number of threads.

use crate::kernels::Isa;
use crate::predict::{draw_networks, network_len, networks_in_memory, SHARED_GROUP};
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
        let networks = if shared { self.shared_networks(options, threads) } else { None };
        let chunks: Vec<Result<Vec<Prediction>, PredictError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = inputs
                .chunks(per_thread * d)
                .enumerate()
                .map(|(k, chunk)| {
                    let first = k * per_thread;
                    let drawn = networks.as_deref();
                    scope.spawn(move || match drawn {
                        Some(drawn) => Predictor::new(self).predict_shared(chunk, options, first, Some(drawn)),
                        None => Predictor::new(self).predict_batch_from(chunk, options, first),
                    })
                })
                .collect();
            handles.into_iter().map(join).collect()
        });
        let mut out = Vec::with_capacity(items);
        for chunk in chunks {
            out.extend(chunk?);
        }
        Ok(out)
    }

    /// Every sample's shared-weights network, drawn on `threads` threads (each a contiguous share of the samples),
    /// where they fit in memory; `None` otherwise.
    fn shared_networks(&self, options: &PredictOptions, threads: usize) -> Option<Vec<f32>> {
        let total = networks_in_memory(self, options)?;
        let len = network_len(self);
        let mut networks = vec![0.0; total];
        let (isa, per_thread) = (Isa::detected(), (total / len).div_ceil(threads));
        std::thread::scope(|scope| {
            let handles: Vec<_> = networks
                .chunks_mut(per_thread * len)
                .enumerate()
                .map(|(k, part)| {
                    let first = k * per_thread;
                    let samples = first..first + part.len() / len;
                    scope.spawn(move || draw_networks(self, isa, options.seed, samples, part))
                })
                .collect();
            handles.into_iter().for_each(join);
        });
        Some(networks)
    }
}

/// A scoped thread's result, its panic carried on to the caller.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
