//! The options of a prediction: how many Monte-Carlo samples (fixed or adaptive), the seed, the sampler and
//! the regression interval's level.

use crate::error::PredictError;
use crate::prelude::*;
use crate::sample::Sampler;

/// Fewest samples an adaptive prediction draws before it may stop.
pub const ADAPTIVE_MIN_SAMPLES: usize = 8;

/// How many Monte-Carlo samples to draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleCount {
    /// Exactly this many (at least 1).
    Fixed(usize),
    /// Draw until the Monte-Carlo standard error of every entry of the predictive mean is at most
    /// `tolerance` (after at least [`ADAPTIVE_MIN_SAMPLES`]), or until `max` samples.
    Adaptive { max: usize, tolerance: f32 },
}

/// Options of one prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    pub samples: SampleCount,
    /// Seed of the random stream; the same seed gives bit-identical results.
    pub seed: u64,
    pub sampler: Sampler,
    /// Probability mass of the regression interval, in (0, 1).
    pub interval_level: f32,
}

impl Default for PredictOptions {
    /// 32 local-reparameterization samples, seed 0, 95% intervals.
    fn default() -> Self {
        Self { samples: SampleCount::Fixed(32), seed: 0, sampler: Sampler::LocalReparam, interval_level: 0.95 }
    }
}

impl PredictOptions {
    pub fn samples(mut self, n: usize) -> Self {
        self.samples = SampleCount::Fixed(n);
        self
    }
    pub fn adaptive(mut self, max: usize, tolerance: f32) -> Self {
        self.samples = SampleCount::Adaptive { max, tolerance };
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }
    pub fn interval_level(mut self, level: f32) -> Self {
        self.interval_level = level;
        self
    }

    pub(super) fn validate(&self) -> Result<(), PredictError> {
        let bad = |m: String| Err(PredictError::InvalidOptions(m));
        match self.samples {
            SampleCount::Fixed(0) | SampleCount::Adaptive { max: 0, .. } => return bad("zero samples requested".into()),
            SampleCount::Adaptive { tolerance, .. } if !(tolerance.is_finite() && tolerance > 0.0) => {
                return bad(format!("adaptive tolerance must be finite and > 0, found {tolerance}"))
            }
            _ => {}
        }
        if !(self.interval_level > 0.0 && self.interval_level < 1.0) {
            return bad(format!("interval level must lie in (0, 1), found {}", self.interval_level));
        }
        Ok(())
    }
}
