//! The built-in synthetic sets: Blundell et al.'s 1-D curve, a heteroscedastic 1-D set, two moons, and bars (small
//! images for convolutional networks).

use super::{Dataset, Targets};
use crate::recipe::SyntheticSet;
use bnn_runtime::SeededRng;
use std::f32::consts::PI;

/// Standard deviation of the curve's ε: the paper writes ε ~ N(0, 0.02); we read 0.02 as the variance.
pub const CURVE_NOISE_SD: f32 = 0.141_421_36;

/// `n` examples of `set`, fully determined by `seed`.
pub fn generate(set: SyntheticSet, n: usize, seed: u64) -> Dataset {
    let mut rng = SeededRng::new(seed);
    match set {
        SyntheticSet::Curve => {
            let mut xs = Vec::with_capacity(n);
            let mut ys = Vec::with_capacity(n);
            for _ in 0..n {
                let x = 0.5 * rng.uniform();
                let e = CURVE_NOISE_SD * rng.gaussian();
                xs.push(x);
                ys.push(x + 0.3 * (2.0 * PI * (x + e)).sin() + 0.3 * (4.0 * PI * (x + e)).sin() + e);
            }
            Dataset { inputs: xs, dim: 1, targets: Targets::Values { values: ys, outputs: 1 } }
        }
        SyntheticSet::Heteroscedastic => {
            let mut xs = Vec::with_capacity(n);
            let mut ys = Vec::with_capacity(n);
            for _ in 0..n {
                let x = 6.0 * rng.uniform() - 3.0;
                xs.push(x);
                ys.push(x.sin() + heteroscedastic_noise_sd(x) * rng.gaussian());
            }
            Dataset { inputs: xs, dim: 1, targets: Targets::Values { values: ys, outputs: 1 } }
        }
        SyntheticSet::TwoMoons => {
            let mut inputs = Vec::with_capacity(2 * n);
            let mut labels = Vec::with_capacity(n);
            for i in 0..n {
                let t = PI * rng.uniform();
                let class = (i % 2) as u32;
                let (x, y) = if class == 0 { (t.cos(), t.sin()) } else { (1.0 - t.cos(), 0.5 - t.sin()) };
                inputs.push(x + 0.1 * rng.gaussian());
                inputs.push(y + 0.1 * rng.gaussian());
                labels.push(class);
            }
            Dataset { inputs, dim: 2, targets: Targets::Classes { labels, classes: 2 } }
        }
        SyntheticSet::Bars => {
            let side = BARS_SIDE;
            let mut inputs = Vec::with_capacity(side * side * n);
            let mut labels = Vec::with_capacity(n);
            for i in 0..n {
                let class = (i % 2) as u32;
                let at = (rng.uniform() * side as f32) as usize % side;
                for y in 0..side {
                    for x in 0..side {
                        let on = if class == 0 { y == at } else { x == at };
                        inputs.push(on as u8 as f32 + 0.3 * rng.gaussian());
                    }
                }
                labels.push(class);
            }
            Dataset { inputs, dim: side * side, targets: Targets::Classes { labels, classes: 2 } }
        }
    }
}

/// The side of a bars image: one channel of `BARS_SIDE` × `BARS_SIDE` pixels.
pub const BARS_SIDE: usize = 8;

/// E[y | x] of a regression set, in closed form: the best any model's mean can do (`None` for the classification
/// sets). For the curve the noise inside the sines damps them: with ε ~ N(0, s²), E[sin(a(x + ε))] =
/// sin(ax) exp(-a²s²/2), so the mean curve is x + 0.67 · 0.3 sin(2πx) + 0.21 · 0.3 sin(4πx), and y scatters about
/// it with a standard deviation of about 0.30 (not s: the phase noise adds to ε).
pub fn conditional_mean(set: SyntheticSet) -> Option<fn(f64) -> f64> {
    match set {
        SyntheticSet::Curve => Some(|x| {
            use std::f64::consts::PI;
            let damping = |a: f64| (-0.5 * (a * CURVE_NOISE_SD as f64).powi(2)).exp();
            x + 0.3 * damping(2.0 * PI) * (2.0 * PI * x).sin() + 0.3 * damping(4.0 * PI) * (4.0 * PI * x).sin()
        }),
        SyntheticSet::Heteroscedastic => Some(f64::sin),
        SyntheticSet::TwoMoons | SyntheticSet::Bars => None,
    }
}

/// The heteroscedastic set's true noise standard deviation at `x`.
pub fn heteroscedastic_noise_sd(x: f32) -> f32 {
    0.05 + 0.1 * x.abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_seeded_and_have_their_shapes() {
        for set in [SyntheticSet::Curve, SyntheticSet::Heteroscedastic, SyntheticSet::TwoMoons, SyntheticSet::Bars] {
            assert_eq!(generate(set, 50, 1), generate(set, 50, 1));
            assert_ne!(generate(set, 50, 1), generate(set, 50, 2));
            assert_eq!(generate(set, 50, 1).len(), 50);
        }
        let curve = generate(SyntheticSet::Curve, 1000, 4);
        assert!(curve.inputs.iter().all(|x| (0.0..0.5).contains(x)));
    }

    #[test]
    fn curve_residuals_have_the_stated_noise_level() {
        // Without noise the curve is x + 0.3 sin(2πx) + 0.3 sin(4πx); the residual's sd must be near 0.14 (not 0.02).
        let d = generate(SyntheticSet::Curve, 20_000, 9);
        let Targets::Values { values, .. } = &d.targets else { unreachable!() };
        let resid: Vec<f64> = d
            .inputs
            .iter()
            .zip(values)
            .map(|(x, y)| (*y - (x + 0.3 * (2.0 * PI * x).sin() + 0.3 * (4.0 * PI * x).sin())) as f64)
            .collect();
        let sd = (resid.iter().map(|r| r * r).sum::<f64>() / resid.len() as f64).sqrt();
        assert!(sd > 0.1 && sd < 0.5, "residual sd {sd}");
    }

    /// Bins of 0.025 in x: the closed-form E[y | x] lies within 4 standard errors of each bin's sample mean, and
    /// the scatter about it (the RMSE of the best possible mean, the data's noise floor) is 0.29-0.30.
    #[test]
    fn the_curve_scatters_about_its_closed_form_mean() {
        let mean = conditional_mean(SyntheticSet::Curve).unwrap();
        let d = generate(SyntheticSet::Curve, 200_000, 11);
        let Targets::Values { values, .. } = &d.targets else { unreachable!() };
        const BINS: usize = 20;
        let (mut n, mut sum, mut sq) = ([0usize; BINS], [0.0f64; BINS], [0.0f64; BINS]);
        let mut floor = 0.0;
        for (x, y) in d.inputs.iter().zip(values) {
            let (x, y) = (*x as f64, *y as f64);
            let b = ((x / 0.5 * BINS as f64) as usize).min(BINS - 1);
            let r = y - mean(x);
            (n[b], sum[b], sq[b]) = (n[b] + 1, sum[b] + r, sq[b] + r * r);
            floor += r * r;
        }
        for b in 0..BINS {
            let m = sum[b] / n[b] as f64;
            let se = ((sq[b] / n[b] as f64 - m * m) / n[b] as f64).sqrt();
            assert!(m.abs() < 4.0 * se, "bin {b}: mean residual {m}, standard error {se}");
        }
        let floor = (floor / values.len() as f64).sqrt();
        assert!((0.29..0.30).contains(&floor), "noise floor {floor}");
        assert_eq!(conditional_mean(SyntheticSet::Heteroscedastic).unwrap()(1.0), 1f64.sin());
        assert!(conditional_mean(SyntheticSet::Bars).is_none());
    }
}
