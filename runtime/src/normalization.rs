//! Input normalisation stored with the model: `(x - mean) / std`, fitted on training data, either one mean and
//! standard deviation per feature or one pair for every feature (a global standardisation, right for pixels).

use crate::prelude::*;
use serde::{Deserialize, Serialize};

/// Standardisation applied to every input before the first layer. `mean` and `std` hold one entry per input
/// feature, or one entry each that applies to every feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// One mean and standard deviation for every feature.
    pub fn global(mean: f32, std: f32) -> Self {
        Self { mean: vec![mean], std: vec![std] }
    }

    /// Whether one mean and standard deviation serve every feature.
    pub fn is_global(&self) -> bool {
        self.mean.len() == 1 && self.std.len() == 1
    }

    /// The same standardisation in its shortest form: per-feature entries that are all equal become one global
    /// pair (what the writer stores; the outputs are bit for bit the same).
    pub fn compacted(&self) -> Self {
        let uniform = |v: &[f32]| v.first().is_some_and(|a| v.iter().all(|b| b.to_bits() == a.to_bits()));
        match (self.mean.first(), self.std.first()) {
            (Some(m), Some(s)) if uniform(&self.mean) && uniform(&self.std) => Self::global(*m, *s),
            _ => self.clone(),
        }
    }

    /// Writes `(x - mean) / std` into `out`.
    // Inlined where `Isa::run` compiles a batch's transpose (x86-64); one copy elsewhere (android/README.md,
    // "Size").
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub(crate) fn apply(&self, x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(x);
        self.apply_in_place(out);
    }

    /// Replaces every value of one input `x` by `(x - mean) / std`.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn apply_in_place(&self, x: &mut [f32]) {
        if self.is_global() {
            let (m, s) = (self.mean[0], self.std[0]);
            x.iter_mut().for_each(|v| *v = (*v - m) / s);
        } else {
            for ((v, m), s) in x.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }

    /// Standardises values of feature `c` alone (that feature of several inputs, side by side): the bits
    /// [`Self::apply_in_place`] gives each of them.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub(crate) fn apply_to_feature(&self, c: usize, values: &mut [f32]) {
        let at = if self.is_global() { 0 } else { c };
        let (m, s) = (self.mean[at], self.std[at]);
        values.iter_mut().for_each(|v| *v = (*v - m) / s);
    }

    pub(crate) fn validate(&self, input_dim: usize) -> Result<(), String> {
        if self.mean.len() != self.std.len() || !(self.mean.len() == input_dim || self.is_global()) {
            return Err(format!(
                "mean has {} and std has {} entries: both need one per input ({input_dim}) or one for all",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some((i, m)) = self.mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(format!("mean[{i}] = {m} is not finite"));
        }
        if let Some((i, s)) = self.std.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
            return Err(format!("std[{i}] = {s} must be finite and > 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_global_pair_standardises_every_feature_with_the_bits_of_the_per_feature_form() {
        let x = [0.0, 0.25, 1.0, -3.5];
        let per_feature = Normalization { mean: vec![0.13; 4], std: vec![0.31; 4] };
        let global = per_feature.compacted();
        assert_eq!(global, Normalization::global(0.13, 0.31));
        let (mut a, mut b) = ([0.0; 4], [0.0; 4]);
        per_feature.apply(&x, &mut a);
        global.apply(&x, &mut b);
        assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
        assert_eq!(b[2], (1.0 - 0.13) / 0.31);
        assert!(global.validate(4).is_ok() && per_feature.validate(4).is_ok());
    }

    #[test]
    fn features_that_differ_stay_per_feature() {
        for n in [
            Normalization { mean: vec![0.0, 1.0], std: vec![1.0, 1.0] },
            Normalization { mean: vec![0.5, 0.5], std: vec![1.0, 2.0] },
            Normalization { mean: vec![0.0, -0.0], std: vec![1.0, 1.0] },
        ] {
            assert_eq!(n.compacted(), n);
        }
    }

    #[test]
    fn lengths_must_match_the_input_or_be_one() {
        assert!(Normalization::global(0.0, 1.0).validate(784).is_ok());
        for (mean, std) in [(vec![0.0; 3], vec![1.0; 3]), (vec![0.0], vec![1.0; 4]), (vec![0.0; 4], vec![1.0])] {
            assert!(Normalization { mean, std }.validate(4).is_err());
        }
    }
}
