//! The seeded random source behind every Monte-Carlo draw: xoshiro256++ with ziggurat Gaussians.
//!
//! The trainer uses the same source to make its reparameterization noise, so a seed means the same
//! stream everywhere.

use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A deterministic, seedable stream of uniform and standard-normal `f32` draws.
#[derive(Debug, Clone)]
pub struct SeededRng {
    inner: Xoshiro256PlusPlus,
}

impl SeededRng {
    /// A stream fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { inner: Xoshiro256PlusPlus::seed_from_u64(seed) }
    }

    /// One draw from N(0, 1).
    #[inline]
    pub fn gaussian(&mut self) -> f32 {
        StandardNormal.sample(&mut self.inner)
    }

    /// Fills `out` with independent N(0, 1) draws.
    pub fn fill_gaussian(&mut self, out: &mut [f32]) {
        out.iter_mut().for_each(|v| *v = self.gaussian());
    }

    /// One draw from U[0, 1) with 24 bits of resolution.
    #[inline]
    pub fn uniform(&mut self) -> f32 {
        (self.inner.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// One raw 64-bit draw.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let draw = |seed| {
            let mut r = SeededRng::new(seed);
            (0..16).map(|_| r.gaussian()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn gaussian_draws_have_unit_moments() {
        let n = 200_000;
        let mut r = SeededRng::new(1);
        let xs: Vec<f64> = (0..n).map(|_| r.gaussian() as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: 1/sqrt(n) = 0.0022 for the mean, sqrt(2/n) = 0.0032 for the variance.
        assert!(mean.abs() < 5.0 * 0.0023, "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * 0.0032, "variance {var}");
    }

    #[test]
    fn uniform_draws_lie_in_the_unit_interval_with_mean_one_half() {
        let mut r = SeededRng::new(3);
        let n = 100_000;
        let mut sum = 0.0f64;
        for _ in 0..n {
            let u = r.uniform();
            assert!((0.0..1.0).contains(&u));
            sum += u as f64;
        }
        // sd of the mean: sqrt(1/12 / n) = 0.00091.
        assert!((sum / n as f64 - 0.5).abs() < 5.0 * 0.00092);
    }
}
