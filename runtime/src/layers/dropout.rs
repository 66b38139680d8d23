//! MC dropout: inverted dropout that stays active at prediction time, so each sample drops a fresh mask.

use crate::sample::SeededRng;

/// Zeroes each unit with probability `p` and scales the survivors by `1 / (1 - p)`, so the expected output
/// equals the input. Active in every sampler except `Mean`, which skips it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    /// Dropout with rate `p`, which must lie in `[0, 1)`; checked when the layer joins a [`Model`](crate::Model).
    pub fn new(p: f32) -> Self {
        Self { p }
    }

    pub fn p(&self) -> f32 {
        self.p
    }

    /// Applies one random mask in place.
    pub(crate) fn apply_sampled(&self, x: &mut [f32], rng: &mut SeededRng) {
        if self.p == 0.0 {
            return;
        }
        let scale = 1.0 / (1.0 - self.p);
        for v in x.iter_mut() {
            *v = if rng.uniform() < self.p { 0.0 } else { *v * scale };
        }
    }
}
