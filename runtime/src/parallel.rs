//! Batch prediction on several threads (feature `parallel`, on by default; needs `std`): [`ParallelPredictor`],
//! which keeps its threads and their predictors for the next batch ([`workers`]), and
//! [`Model::predict_batch_parallel`] for one batch. The
//! batch is cut into contiguous chunks, one per thread, each with its own [`Predictor`]; item `i` still uses seed
//! `seed + i` (with shared weights the chunks are cut at whole groups of inputs, and the threads share the samples'
//! networks, [`NetworkSlots`], each network coming from the sample's own stream whoever draws it), so the results
//! are bit-identical to [`Model::predict_batch`] whatever the number of threads.

use crate::kernels::Isa;
use crate::predict::{draw_networks, network_len, networks_fit, DrawnNetworks, SHARED_GROUP};
use crate::prelude::*;
use crate::{Model, PredictError, PredictOptions, Prediction, Predictor, Sampler};
use std::sync::atomic::{AtomicUsize, Ordering};
use workers::{Job, Workers};

mod workers;
use std::sync::{Mutex, OnceLock, PoisonError};

impl Model {
    /// [`Model::predict_batch`] on `threads` threads (0: as many as the machine has). Errors are reported for the
    /// first failing item in batch order, as the serial version does. Each call starts its threads and makes their
    /// predictors; repeated batches keep both in a [`ParallelPredictor`].
    pub fn predict_batch_parallel(
        &self,
        inputs: &[f32],
        options: &PredictOptions,
        threads: usize,
    ) -> Result<Vec<Prediction>, PredictError> {
        ParallelPredictor::new(self, threads).predict_batch(inputs, options)
    }
}

/// [`Model::predict_batch_parallel`] for repeated batches: keeps its worker threads, and each thread's
/// [`Predictor`], from one batch to the next, as a [`Predictor`] kept for single predictions does, where starting
/// the threads and making the predictors cost as much as a small batch (`benches/README.md`, sessions 37 and 38).
/// Between batches a worker spins for 100 µs, then sleeps until the next one; dropping this stops them. The results
/// are the serial batch's bits, whatever the number of threads and whatever came before.
#[derive(Debug)]
pub struct ParallelPredictor<'m> {
    model: &'m Model,
    threads: usize,
    /// One per chunk of the largest batch so far, made as the first batch that needs it runs.
    predictors: Vec<Predictor<'m>>,
    /// The threads that run every chunk but the first, kept for the next batch.
    workers: Workers,
    /// Room for the networks of a shared-weights batch, kept for the next one.
    spare_networks: Mutex<Vec<Vec<f32>>>,
}

impl<'m> ParallelPredictor<'m> {
    /// Batches of `model` on `threads` threads, the calling one and `threads - 1` workers (0: as many as the
    /// machine has); no thread is started and no predictor made yet.
    pub fn new(model: &'m Model, threads: usize) -> Self {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Self { model, threads, predictors: Vec::new(), workers: Workers::default(), spare_networks: Mutex::default() }
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// [`Model::predict_batch`] on the threads: the batch cut into contiguous chunks, one per thread (at whole
    /// groups of inputs with shared weights), the calling thread running the first and a worker each other one.
    pub fn predict_batch(&mut self, inputs: &[f32], options: &PredictOptions) -> Result<Vec<Prediction>, PredictError> {
        let model = self.model;
        let d = model.input_dim();
        if !inputs.len().is_multiple_of(d) {
            return Err(PredictError::BatchLength { input_dim: d, found: inputs.len() });
        }
        let items = inputs.len() / d;
        let threads = self.threads.clamp(1, items.max(1));
        let shared = options.sampler == Sampler::SharedWeights;
        let group = if shared { SHARED_GROUP } else { 1 };
        let per_thread = items.div_ceil(threads).next_multiple_of(group).max(1);
        let chunks = inputs.chunks(per_thread * d);
        let missing = chunks.len().saturating_sub(self.predictors.len());
        self.predictors.extend((0..missing).map(|_| Predictor::new(model)));
        // With shared weights, the threads draw each sample's network once between them where all fit.
        let spare = &self.spare_networks;
        let slots = if shared && threads > 1 { NetworkSlots::new(model, options, spare) } else { None };
        let drawn = slots.as_ref().map(|s| s as &dyn DrawnNetworks);
        let run = |k: usize, chunk: &[f32], predictor: &mut Predictor<'m>| {
            if let Some(slots) = &slots {
                slots.draw_unclaimed(predictor.isa);
            }
            predictor.predict_batch_from(chunk, options, k * per_thread, drawn)
        };
        let mut results: Vec<Option<Result<Vec<Prediction>, PredictError>>> = Vec::new();
        results.resize_with(chunks.len(), || None);
        let run = &run;
        let mut jobs: Vec<_> = (chunks.zip(self.predictors.iter_mut()).enumerate().zip(&mut results))
            .map(|((k, (chunk, p)), out)| move || *out = Some(run(k, chunk, p)))
            .collect();
        let mut jobs: Vec<Job<'_>> = jobs.iter_mut().map(|job| job as Job<'_>).collect();
        self.workers.run(&mut jobs);
        drop(jobs);
        if let Some(slots) = slots {
            slots.recycle();
        }
        let mut out = Vec::with_capacity(items);
        for chunk in results.into_iter().flatten() {
            out.extend(chunk?);
        }
        Ok(out)
    }
}

/// The networks of a parallel shared-weights batch, drawn once between the threads before their samples run:
/// each thread claims the next undrawn network and draws it into its slot until every one is claimed (so the
/// threads share the draws whenever they start), then reads them there. A thread that needs a network claimed but
/// not yet drawn draws its own copy (the same bits: a network comes from its own stream) rather than wait, so no
/// thread ever waits on another.
struct NetworkSlots<'m> {
    model: &'m Model,
    seed: u64,
    /// Values per network.
    len: usize,
    /// The first network no thread has claimed.
    next: AtomicUsize,
    slots: Vec<OnceLock<Vec<f32>>>,
    /// Room to draw networks in (left by earlier batches), and where the slots' go back when the batch is done.
    spare: &'m Mutex<Vec<Vec<f32>>>,
}

impl<'m> NetworkSlots<'m> {
    /// Empty slots for every sample's network of `options` on `model`, where all of them fit in memory together,
    /// drawn in `spare` room where there is some.
    fn new(model: &'m Model, options: &PredictOptions, spare: &'m Mutex<Vec<Vec<f32>>>) -> Option<Self> {
        let samples = networks_fit(model, options)?;
        Some(Self {
            model,
            seed: options.seed,
            len: network_len(model),
            next: AtomicUsize::new(0),
            slots: (0..samples).map(|_| OnceLock::new()).collect(),
            spare,
        })
    }

    /// Draws network `t` into `room`, on `isa`.
    fn draw(&self, t: usize, isa: Isa, room: &mut [f32]) {
        draw_networks(self.model, isa, self.seed, t..t + 1, room)
    }

    /// Claims the next undrawn network and draws it into its slot, on `isa`, until no network is left unclaimed.
    fn draw_unclaimed(&self, isa: Isa) {
        loop {
            let t = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = self.slots.get(t) else { return };
            let room = lock(self.spare).pop().filter(|room| room.len() == self.len);
            let mut network = room.unwrap_or_else(|| vec![0.0; self.len]);
            self.draw(t, isa, &mut network);
            slot.get_or_init(|| network);
        }
    }

    /// Gives the drawn networks' room back for the next batch.
    fn recycle(self) {
        lock(self.spare).extend(self.slots.into_iter().filter_map(OnceLock::into_inner));
    }
}

/// A mutex's contents; a poisoned one is still used (what they guard here is whole whatever panicked: room to draw
/// in, a job handed over in one assignment).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DrawnNetworks for NetworkSlots<'_> {
    fn network<'a>(&'a self, t: usize, isa: Isa, own: &'a mut [f32]) -> &'a [f32] {
        if let Some(network) = self.slots.get(t).and_then(OnceLock::get) {
            return network;
        }
        self.draw(t, isa, own);
        own
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Activation, BayesianDense, Layer};
    use crate::{Provenance, SeededRng, Task};

    /// A Bayesian MLP 3 -> 6 -> 2 with random posteriors.
    fn mlp() -> Model {
        let mut rng = SeededRng::new(9);
        let mut draw = |n: usize| (0..n).map(|_| rng.gaussian().abs() * 0.3).collect::<Vec<f32>>();
        let layers = vec![
            Layer::BayesianDense(BayesianDense::new(3, 6, draw(18), draw(18), draw(6), draw(6))),
            Layer::Activation(Activation::Relu),
            Layer::BayesianDense(BayesianDense::new(6, 2, draw(12), draw(12), draw(2), draw(2))),
        ];
        Model::new(layers, Task::Classification { classes: 2, labels: vec![] }, None, Provenance::default()).unwrap()
    }

    #[test]
    fn every_way_to_a_network_gives_its_own_bits() {
        let model = mlp();
        let options = PredictOptions::default().sampler(Sampler::SharedWeights).samples(4).seed(21);
        let spare = Mutex::default();
        let slots = NetworkSlots::new(&model, &options, &spare).unwrap();
        let isa = Isa::detected();
        let len = slots.slots.len();
        assert_eq!(len, 4);
        // A network: the first layer's noise (6 values), the second layer's weights and biases (12 + 2).
        let own = |t: usize| {
            let mut network = vec![0.0; 6 + 12 + 2];
            draw_networks(&model, isa, options.seed, t..t + 1, &mut network);
            network
        };
        let mut room = vec![0.0; own(0).len()];
        // Claimed by a thread that has not drawn it yet: drawn in `room`, the slot left to its claimer.
        slots.next.store(3, Ordering::Relaxed);
        assert_eq!(slots.network(2, isa, &mut room), own(2));
        assert!(slots.slots.iter().all(|s| s.get().is_none()));
        // The unclaimed one drawn into its slot; past the slots, drawn in `room`.
        slots.draw_unclaimed(isa);
        assert!(slots.slots[..3].iter().all(|s| s.get().is_none()));
        assert_eq!(slots.slots[3].get().unwrap(), &own(3));
        assert_eq!(slots.network(3, isa, &mut room), own(3));
        assert_eq!(slots.network(7, isa, &mut room), own(7));
        // Every one drawn into its slot by whoever claims it.
        let slots = NetworkSlots::new(&model, &options, &spare).unwrap();
        std::thread::scope(|scope| {
            scope.spawn(|| slots.draw_unclaimed(isa));
            slots.draw_unclaimed(isa);
        });
        for t in 0..len {
            assert_eq!(slots.slots[t].get().unwrap(), &own(t));
        }
        // The next batch's slots are drawn in the room this one's leave (overwritten here), with the same bits.
        slots.recycle();
        assert_eq!(lock(&spare).len(), len);
        lock(&spare).iter_mut().for_each(|room| room.fill(f32::NAN));
        let slots = NetworkSlots::new(&model, &options, &spare).unwrap();
        slots.draw_unclaimed(isa);
        assert!(lock(&spare).is_empty());
        for t in 0..len {
            assert_eq!(slots.slots[t].get().unwrap(), &own(t));
        }
        assert_ne!(own(0), own(1));
    }
}
