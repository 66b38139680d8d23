//! The seeded random source behind every Monte-Carlo draw: xoshiro256++ with ziggurat (one at a time) and
//! Box–Muller (in bulk) Gaussians.
//!
//! The trainer uses the same source to make its reparameterization noise, so a seed means the same
//! stream everywhere.

use super::ziggurat::ZIGGURAT_256;
use crate::kernels::Isa;
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

    /// A stream independent of this one and of every other seed's: this one 2^128 draws ahead.
    pub fn jumped(mut self) -> Self {
        self.inner.jump();
        self
    }

    /// One draw from N(0, 1).
    #[inline]
    pub fn gaussian(&mut self) -> f32 {
        ZIGGURAT_256.sample(|| self.inner.next_u64()) as f32
    }

    /// Fills `out` with independent N(0, 1) draws, many times faster than repeated
    /// [`SeededRng::gaussian`] (a different stream): sixteen generators seeded from this one run side by side
    /// and feed a vectorised Box–Muller transform (see `kernels/portable/gaussian.rs`). The same bits on every
    /// CPU with fused multiply-adds (x86-64 with AVX2 + FMA or AVX-512, aarch64), and on every CPU without (the
    /// two differ in the last bits).
    pub fn fill_gaussian(&mut self, out: &mut [f32]) {
        self.fill_gaussian_on(Isa::detected(), out);
    }

    /// [`SeededRng::fill_gaussian`] on the instruction set `isa`.
    pub(crate) fn fill_gaussian_on(&mut self, isa: Isa, out: &mut [f32]) {
        crate::kernels::fill_gaussian(isa, &mut self.inner, out);
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

    /// `n` draws of each sampler: one at a time, and in bulk (odd lengths, so the last half word is used).
    fn draws(seed: u64, n: usize) -> [Vec<f64>; 2] {
        let mut r = SeededRng::new(seed);
        let one_at_a_time = (0..n).map(|_| r.gaussian() as f64).collect();
        let mut bulk = vec![0.0f32; n];
        for chunk in bulk.chunks_mut(999) {
            r.fill_gaussian(chunk);
        }
        [one_at_a_time, bulk.into_iter().map(f64::from).collect()]
    }

    #[test]
    fn gaussian_draws_have_unit_moments() {
        let n = if cfg!(miri) { 2_000 } else { 200_000 };
        for xs in draws(1, n) {
            unit_moments(&xs);
        }
    }

    fn unit_moments(xs: &[f64]) {
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: 1/sqrt(n) for the mean (0.0022 at n = 200,000), sqrt(2/n) for the variance (0.0032).
        let n = n as f64;
        assert!(mean.abs() < 5.0 / n.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "variance {var}");
    }

    /// Kolmogorov–Smirnov test of 200,000 draws against the standard normal CDF: the statistic's 1% critical
    /// value is 1.63 / sqrt(n) = 0.0036.
    #[test]
    #[cfg_attr(miri, ignore = "200,000 draws and a sort take hours under Miri; the moments test runs there")]
    fn gaussian_draws_pass_a_kolmogorov_smirnov_test() {
        for xs in draws(12, 200_000) {
            kolmogorov_smirnov(xs);
        }
    }

    fn kolmogorov_smirnov(mut xs: Vec<f64>) {
        let n = xs.len();
        xs.sort_by(f64::total_cmp);
        let cdf = |x: f64| 0.5 * libm::erfc(-x / core::f64::consts::SQRT_2);
        let d = xs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let c = cdf(*x);
                (c - i as f64 / n as f64).abs().max(((i + 1) as f64 / n as f64 - c).abs())
            })
            .fold(0.0, f64::max);
        assert!(d < 1.63 / (n as f64).sqrt(), "KS statistic {d}");
        // The tails are populated at the right rate: P(|X| > 3.654) = 2.58e-4, about 52 of 200,000.
        let tail = xs.iter().filter(|x| x.abs() > 3.654_152_885_361_009).count();
        assert!((25..85).contains(&tail), "{tail} draws beyond 3.654");
        // Fourth moment 3 (excess kurtosis 0); its standard error is sqrt(96 / n) = 0.022.
        let m4 = xs.iter().map(|x| x.powi(4)).sum::<f64>() / n as f64;
        assert!((m4 - 3.0).abs() < 5.0 * 0.022, "fourth moment {m4}");
    }

    #[test]
    fn uniform_draws_lie_in_the_unit_interval_with_mean_one_half() {
        let mut r = SeededRng::new(3);
        let n = if cfg!(miri) { 2_000 } else { 100_000 };
        let mut sum = 0.0f64;
        for _ in 0..n {
            let u = r.uniform();
            assert!((0.0..1.0).contains(&u));
            sum += u as f64;
        }
        // sd of the mean: sqrt(1/12 / n) (0.00091 at n = 100,000).
        assert!((sum / n as f64 - 0.5).abs() < 5.0 * (1.0 / 12.0 / n as f64).sqrt());
    }
}
