//! Heap use. No allocation per Monte-Carlo sample: with a reused `Predictor`, a prediction with 200 samples
//! (several blocks of local reparameterization) makes exactly as many heap allocations as one with a single
//! sample (only the returned result allocates). And the loader's memory is bounded by the file's real size:
//! headers that claim 10^12 elements are rejected before any large allocation.

mod common;

use bnn_runtime::{Model, NoiseModel, PoolKind, PredictOptions, Predictor, Sampler, Task};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    /// Allocations made by this thread (the test harness's own threads allocate concurrently).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// The largest single allocation this thread requested, in bytes.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter has no effect on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        LARGEST.with(|c| c.set(c.get().max(layout.size())));
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
                for sampler in [Sampler::WeightSampling, Sampler::LocalReparam, Sampler::SharedWeights] {
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
    // A CNN: the per-sample kernels of its Bayesian convolution are drawn into the predictor's buffers.
    let cnn = common::bayesian_cnn(PoolKind::Max);
    let mut p = Predictor::new(&cnn);
    for sampler in [Sampler::WeightSampling, Sampler::LocalReparam, Sampler::SharedWeights] {
        let opts = PredictOptions::default().sampler(sampler);
        p.predict(&common::cnn_image(), &opts.samples(1)).unwrap();
        let one = allocations_of(|| drop(p.predict(&common::cnn_image(), &opts.samples(1)).unwrap()));
        let more = allocations_of(|| drop(p.predict(&common::cnn_image(), &opts.samples(200)).unwrap()));
        assert_eq!(one, more, "CNN, {sampler:?}: {one} allocations for 1 sample, {more} for 200");
    }
}

fn largest_allocation_of(f: impl FnOnce()) -> usize {
    LARGEST.with(|c| c.set(0));
    f();
    LARGEST.with(Cell::get)
}

#[test]
fn headers_claiming_huge_tensors_are_rejected_before_allocating() {
    let task = Task::Classification { classes: 3, labels: vec![] };
    let valid = common::to_bytes(&common::bayesian_mlp(1, &[4, 5, 3], task, 0.2));
    let bound = 4 * valid.len() + 64 * 1024;

    // The safetensors header claims a 10^6 x 10^6 tensor (10^12 elements, 4 TB) that the file does not hold.
    let header_len = u64::from_le_bytes(valid[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&valid[8..8 + header_len]).unwrap();
    let tensor = header.as_object_mut().unwrap().iter_mut().find(|(k, _)| *k != "__metadata__").unwrap().1;
    tensor["shape"] = serde_json::json!([1_000_000u64, 1_000_000u64]);
    tensor["data_offsets"] = serde_json::json!([0u64, 4_000_000_000_000u64]);
    let header = serde_json::to_vec(&header).unwrap();
    let mut huge_tensor = (header.len() as u64).to_le_bytes().to_vec();
    huge_tensor.extend_from_slice(&header);
    huge_tensor.extend_from_slice(&valid[8 + header_len..]);
    // The model description claims a 10^6 x 10^6 layer while the tensors stay small.
    let huge_layer = common::edit_description(&valid, |d| {
        d["layers"][0]["in_features"] = 1_000_000.into();
        d["layers"][0]["out_features"] = 1_000_000.into();
    });
    for (what, bytes) in [("tensor", huge_tensor), ("layer", huge_layer)] {
        let largest = largest_allocation_of(|| assert!(Model::from_bytes(&bytes).is_err(), "huge {what} accepted"));
        assert!(
            largest <= bound,
            "huge {what}: the loader allocated {largest} bytes at once (file {} bytes)",
            bytes.len()
        );
    }
}
