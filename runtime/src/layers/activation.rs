//! Element-wise activation functions, applied in place.

use crate::math::{any_non_finite, non_finite_bit};
use serde::{Deserialize, Serialize};

/// A non-linearity applied element-wise between dense layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// The exact GELU, `x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))` (PyTorch's default, candle's `gelu_erf`).
    Gelu,
    /// `x`.
    Identity,
}

impl Activation {
    /// Applies the function to every element of `x`. If any element is not finite (an overflow, or NaN, in
    /// the layer before), every element becomes NaN whatever the function: ReLU would turn `-inf` and NaN into
    /// 0 and tanh would turn `inf` into 1, and the overflow would come out of the network as a confident
    /// answer. NaN reaches the output instead, where the prediction fails with
    /// [`crate::PredictError::NonFiniteOutput`]. (A slice holds one input's samples, which fail together.)
    /// Always inlined, so that a block of samples is processed with the vectors of the predictor's instruction set.
    #[inline(always)]
    pub fn apply(self, x: &mut [f32]) {
        let non_finite = match self {
            // One pass: ReLU reads each value once for both the test and the function.
            Activation::Relu => {
                let bad = x.iter_mut().fold(0, |acc, v| {
                    let bad = non_finite_bit(*v);
                    *v = v.max(0.0);
                    acc | bad
                });
                bad != 0
            }
            f => {
                let bad = any_non_finite(x);
                match f {
                    Activation::Tanh => x.iter_mut().for_each(|v| *v = crate::math::tanhf(*v)),
                    Activation::Sigmoid => x.iter_mut().for_each(|v| *v = sigmoid(*v)),
                    Activation::Gelu => x
                        .iter_mut()
                        .for_each(|v| *v = 0.5 * *v * (1.0 + libm::erff(*v * core::f32::consts::FRAC_1_SQRT_2))),
                    Activation::Relu | Activation::Identity => {}
                }
                bad
            }
        };
        if non_finite {
            x.fill(f32::NAN);
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + crate::math::expf(-x))
    } else {
        let e = crate::math::expf(x);
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_match_their_definitions() {
        let xs = [-3.0f32, -0.5, 0.0, 0.7, 4.0];
        let run = |a: Activation| {
            let mut v = xs;
            a.apply(&mut v);
            v
        };
        assert_eq!(run(Activation::Relu), [0.0, 0.0, 0.0, 0.7, 4.0]);
        assert_eq!(run(Activation::Identity), xs);
        for (y, x) in run(Activation::Tanh).iter().zip(xs) {
            assert!((y - x.tanh()).abs() < 1e-7);
        }
        for (y, x) in run(Activation::Sigmoid).iter().zip(xs) {
            assert!((y - 1.0 / (1.0 + (-x).exp())).abs() < 1e-7);
        }
        // GELU(x) = x Phi(x): Phi(0) = 1/2, Phi(1.0) = 0.841344746.
        let mut g = [0.0f32, 1.0, -1.0];
        Activation::Gelu.apply(&mut g);
        assert_eq!(g[0], 0.0);
        assert!((g[1] - 0.841_344_7).abs() < 1e-6);
        assert!((g[2] + (1.0 - 0.841_344_7)).abs() < 1e-6);
    }

    #[test]
    fn non_finite_inputs_stay_visible_as_nan() {
        for a in [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Gelu, Activation::Identity] {
            for bad in [f32::NEG_INFINITY, f32::INFINITY, f32::NAN] {
                let mut v = [-1.0, bad, 2.0];
                a.apply(&mut v);
                assert!(v.iter().all(|x| x.is_nan()), "{a:?}: {v:?}");
            }
            let mut v = [-1.0f32, f32::MAX, 0.5];
            a.apply(&mut v);
            assert!(v.iter().all(|x| x.is_finite()), "{a:?}: finite stays finite, {v:?}");
        }
    }

    #[test]
    fn sigmoid_does_not_overflow() {
        let mut v = [-1000.0f32, 1000.0];
        Activation::Sigmoid.apply(&mut v);
        assert_eq!(v, [0.0, 1.0]);
    }
}
