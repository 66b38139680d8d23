//! Seeded noise handed to candle as tensors: candle's own CPU generator cannot be seeded, so every random
//! number of a training run comes from the runtime's [`SeededRng`], keyed by (seed, epoch, step).

use crate::kernels::posterior::noise_values;
use bnn_runtime::SeededRng;
use candle_core::{Device, Result, Tensor};

/// The key of one optimisation step's random numbers: distinct for every (seed, epoch, step), and the same
/// when a run resumes from a checkpoint inside the epoch.
pub fn step_key(seed: u64, epoch: usize, step: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add((epoch as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9))
        .wrapping_add((step as u64).wrapping_mul(0x94d0_49bb_1331_11eb))
}

/// A stream of standard-normal tensors and dropout masks.
pub struct Noise {
    rng: SeededRng,
    device: Device,
}

impl Noise {
    pub fn new(seed: u64, device: &Device) -> Self {
        Self { rng: SeededRng::new(seed), device: device.clone() }
    }

    /// The stream for one optimisation step (or one evaluation pass): distinct for every (seed, epoch, step).
    pub fn for_step(seed: u64, epoch: usize, step: usize, device: &Device) -> Self {
        Self::new(step_key(seed, epoch, step), device)
    }

    /// Standard-normal draws of the given shape (the runtime's bulk Box–Muller draws).
    pub fn gaussian(&mut self, shape: &[usize]) -> Result<Tensor> {
        let mut v = vec![0.0f32; shape.iter().product()];
        self.fill_gaussian(&mut v);
        Tensor::from_vec(v, shape, &self.device)
    }

    /// The draws of [`Noise::gaussian`], written into `out`.
    pub fn fill_gaussian(&mut self, out: &mut [f32]) {
        self.rng.fill_gaussian(out);
    }

    /// A key for the noise of one parameter tensor (see [`Noise::parameter_gaussian`]).
    pub fn next_key(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// The standard-normal noise of a parameter tensor for `key`, made chunk by chunk exactly as the fused
    /// passes make it (`kernels::posterior::noise_values`), so the two paths sample the same weights.
    pub fn parameter_gaussian(&self, key: u64, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(noise_values(key, shape.iter().product()), shape, &self.device)
    }

    /// An inverted-dropout mask: 0 with probability `p`, else `1 / (1 - p)`.
    pub fn dropout_mask(&mut self, shape: &[usize], p: f32) -> Result<Tensor> {
        let v = self.dropout_values(shape.iter().product(), p);
        Tensor::from_vec(v, shape, &self.device)
    }

    /// The values of [`Noise::dropout_mask`] for `n` elements.
    pub fn dropout_values(&mut self, n: usize, p: f32) -> Vec<f32> {
        let keep = 1.0 / (1.0 - p);
        (0..n).map(|_| if self.rng.uniform() < p { 0.0 } else { keep }).collect()
    }

    /// Independent signs, -1 or +1 with probability 1/2 each (Flipout's sign vectors).
    pub fn signs(&mut self, shape: &[usize]) -> Result<Tensor> {
        let v = self.sign_values(shape.iter().product());
        Tensor::from_vec(v, shape, &self.device)
    }

    /// The values of [`Noise::signs`] for `n` elements.
    pub fn sign_values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| if self.rng.uniform() < 0.5 { -1.0 } else { 1.0 }).collect()
    }

    /// A generator for non-tensor randomness (shuffles, initialisation).
    pub fn rng(&mut self) -> &mut SeededRng {
        &mut self.rng
    }
}
