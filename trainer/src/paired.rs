//! Paired comparison of two classifiers on the same test images: how many images each gets right that the
//! other gets wrong, and the exact McNemar test of whether that split could be chance. Two pruned models
//! whose errors differ by a few images out of 10,000 are usually tied; this says when.

/// The discordant images of two classifiers `a` and `b` scored on the same examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairedComparison {
    /// Images `a` gets right and `b` gets wrong.
    pub only_a_right: usize,
    /// Images `b` gets right and `a` gets wrong.
    pub only_b_right: usize,
}

impl PairedComparison {
    /// Counts the discordant examples of two per-example correctness lists (compared over their common
    /// length).
    pub fn new(a_correct: &[bool], b_correct: &[bool]) -> Self {
        let (mut only_a_right, mut only_b_right) = (0, 0);
        for (a, b) in a_correct.iter().zip(b_correct) {
            match (a, b) {
                (true, false) => only_a_right += 1,
                (false, true) => only_b_right += 1,
                _ => {}
            }
        }
        Self { only_a_right, only_b_right }
    }

    /// Two-sided exact McNemar p-value: the probability, if each discordant image were equally likely to
    /// favour either classifier, of a split at least this uneven (`2 P(X <= min)` for `X ~ Bin(n, 1/2)`,
    /// capped at 1; 1 without discordant images).
    pub fn p_value(&self) -> f64 {
        let n = self.only_a_right + self.only_b_right;
        let k = self.only_a_right.min(self.only_b_right);
        // ln P(X = i) by the ratio P(i + 1) / P(i) = (n - i) / (i + 1), in logs so large n cannot underflow.
        let mut ln_pmf = -(n as f64) * core::f64::consts::LN_2;
        let mut tail = 0.0;
        for i in 0..=k {
            tail += ln_pmf.exp();
            ln_pmf += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
        }
        (2.0 * tail).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_the_images_the_two_disagree_on() {
        let a = [true, true, false, false, true, false];
        let b = [true, false, true, false, false, false];
        assert_eq!(PairedComparison::new(&a, &b), PairedComparison { only_a_right: 2, only_b_right: 1 });
    }

    #[test]
    fn p_values_match_the_binomial_tail() {
        let p = |a, b| PairedComparison { only_a_right: a, only_b_right: b }.p_value();
        assert_eq!(p(0, 0), 1.0);
        assert_eq!(p(7, 7), 1.0);
        // 2 * 2^-10: all ten discordant images favour one side.
        assert!((p(10, 0) - 2.0f64.powi(-10) * 2.0).abs() < 1e-15);
        // 2 * P(Bin(20, 1/2) <= 5) = 2 * 21700 / 2^20.
        assert!((p(5, 15) - 2.0 * 21700.0 / 1048576.0).abs() < 1e-12);
        assert_eq!(p(5, 15), p(15, 5));
        // 2 * P(Bin(3000, 1/2) <= 1400) is about 2.6e-4 (normal approximation, continuity-corrected: z = 3.633
        // gives 2.8e-4); no underflow at this size.
        let big = p(1400, 1600);
        assert!(big > 1e-4 && big < 5e-4, "{big}");
    }
}
