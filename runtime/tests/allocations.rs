//! No allocation per Monte-Carlo sample: with a reused `Predictor`, a prediction with 200 samples (several
//! blocks of local reparameterization) makes exactly as many heap allocations as one with a single sample
//! (only the returned result allocates).

mod common;

use bnn_runtime::{NoiseModel, PredictOptions, Predictor, Sampler, Task};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    /// Allocations made by this thread (the test harness's own threads allocate concurrently).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter has no effect on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_of(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn allocations_do_not_grow_with_the_number_of_samples() {
    let tasks = [
        Task::Classification { classes: 4, labels: vec![] },
        Task::Regression { outputs: 2, noise: NoiseModel::Heteroscedastic },
    ];
    for task in tasks {
        let head = task.head_width();
        for model in [common::bayesian_mlp(1, &[16, 32, 32, head], task.clone(), 0.2)] {
            let sparse = model.sparsified();
            for m in [&model, &sparse] {
                let x: Vec<f32> = (0..16).map(|i| i as f32 / 16.0).collect();
                let mut p = Predictor::new(m);
                for sampler in [Sampler::WeightSampling, Sampler::LocalReparam] {
                    let many = 200;
                    let opts = PredictOptions::default().sampler(sampler);
                    p.predict(&x, &opts.samples(1)).unwrap();
                    let one = allocations_of(|| drop(p.predict(&x, &opts.samples(1)).unwrap()));
                    let more = allocations_of(|| drop(p.predict(&x, &opts.samples(many)).unwrap()));
                    assert_eq!(one, more, "{sampler:?}: {one} allocations for 1 sample, {more} for {many}");
                }
            }
        }
    }
}
