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
}
