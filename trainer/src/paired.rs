//! Paired comparison of two classifiers on the same examples, and whether a difference could be chance: the
//! exact McNemar test of the images one gets right and the other wrong ([`PairedComparison`]); the difference of
//! two mean per-example losses such as NLL or Brier, with its standard error ([`paired_mean_difference`]); and
//! DeLong's test of two AUROCs measured on the same positives and negatives ([`delong_difference`]). Two models
//! whose figures differ in the third decimal on 10,000 images are often tied; this says when.

use serde::Serialize;

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

/// A difference between two models' figures measured on the same examples, with its standard error (normal
/// approximation) and the two-sided p-value of "no difference".
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedDifference {
    pub a: f64,
    pub b: f64,
    /// `a - b`.
    pub difference: f64,
    pub standard_error: f64,
    pub p_value: f64,
}

impl PairedDifference {
    fn new(a: f64, b: f64, standard_error: f64) -> Self {
        let difference = a - b;
        let p_value = if difference.is_nan() || standard_error.is_nan() {
            f64::NAN
        } else if standard_error > 0.0 {
            libm::erfc((difference / standard_error).abs() / core::f64::consts::SQRT_2)
        } else if difference == 0.0 {
            1.0
        } else {
            0.0
        };
        Self { a, b, difference, standard_error, p_value }
    }

    /// The 95% interval of the difference: `difference ± 1.96 standard errors`.
    pub fn interval(&self) -> (f64, f64) {
        let half = 1.959964 * self.standard_error;
        (self.difference - half, self.difference + half)
    }
}

/// The difference of the means of per-example values `a` and `b` (the same examples in the same order, over
/// their common length), with the standard error of the mean of the differences `a_i - b_i`: the paired test.
pub fn paired_mean_difference(a: &[f64], b: &[f64]) -> PairedDifference {
    let n = a.len().min(b.len());
    if n == 0 {
        return PairedDifference::new(f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = |v: &[f64]| v[..n].iter().sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let d = ma - mb;
    let ss: f64 = a.iter().zip(b).map(|(x, y)| (x - y - d).powi(2)).sum();
    let standard_error = if n > 1 { (ss / (n - 1) as f64 / n as f64).sqrt() } else { f64::NAN };
    PairedDifference::new(ma, mb, standard_error)
}

/// DeLong, DeLong & Clarke-Pearson (1988): the difference of the AUROCs of two scores of the same examples —
/// `a_pos`, `b_pos` of the same positives, `a_neg`, `b_neg` of the same negatives — with the standard error that
/// accounts for their correlation. NaN if either class has fewer than two examples.
pub fn delong_difference(a_pos: &[f64], a_neg: &[f64], b_pos: &[f64], b_neg: &[f64]) -> PairedDifference {
    let (m, n) = (a_pos.len().min(b_pos.len()), a_neg.len().min(b_neg.len()));
    if m < 2 || n < 2 {
        return PairedDifference::new(f64::NAN, f64::NAN, f64::NAN);
    }
    let (a10, a01) = placements(&a_pos[..m], &a_neg[..n]);
    let (b10, b01) = placements(&b_pos[..m], &b_neg[..n]);
    // Var(AUC_A - AUC_B) is the squared standard error of the paired mean difference of the two scores'
    // placements over the positives, plus the same over the negatives; the means of the positives' placements
    // are the AUROCs.
    let (over_positives, over_negatives) = (paired_mean_difference(&a10, &b10), paired_mean_difference(&a01, &b01));
    let standard_error = over_positives.standard_error.hypot(over_negatives.standard_error);
    PairedDifference::new(over_positives.a, over_positives.b, standard_error)
}

/// DeLong's placements of one score: for each positive the share of negatives it beats, for each negative the
/// share of positives that beat it (ties count one half). Their means are both the AUROC.
fn placements(pos: &[f64], neg: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let sorted = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s
    };
    let (sp, sn) = (sorted(pos), sorted(neg));
    // (count below x, count equal to x) in a sorted list; -0 and +0 are equal, as in `evaluate::auroc`.
    let below_equal = |s: &[f64], x: f64| {
        let lo = s.partition_point(|v| *v < x);
        let hi = s.partition_point(|v| *v <= x);
        (lo as f64, (hi - lo) as f64)
    };
    let (m, n) = (pos.len() as f64, neg.len() as f64);
    let v10 = pos.iter().map(|x| below_equal(&sn, *x)).map(|(b, e)| (b + 0.5 * e) / n).collect();
    let v01 = neg.iter().map(|y| below_equal(&sp, *y)).map(|(b, e)| (m - b - e + 0.5 * e) / m).collect();
    (v10, v01)
}

/// A p-value for a report: three decimals, or scientific notation below 0.001 (where three decimals would print
/// 0.000); below f64's range (the binomial terms underflow) `< 1e-300`; `—` for none (NaN).
pub fn format_p_value(p: f64) -> String {
    match p {
        p if p.is_nan() => "—".into(),
        p if p < 1e-300 => "< 1e-300".into(),
        p if p < 1e-3 => format!("{p:.1e}"),
        p => format!("{p:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::auroc;
    use bnn_runtime::SeededRng;

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

    #[test]
    fn p_values_print_with_three_decimals_or_in_scientific_notation() {
        let printed = [0.0421, 2.6e-7, 0.0, f64::NAN].map(format_p_value);
        assert_eq!(printed, ["0.042", "2.6e-7", "< 1e-300", "—"]);
    }

    #[test]
    fn a_paired_difference_is_the_mean_difference_with_the_standard_error_of_the_differences() {
        // Differences 1, 0, 1, -1: mean 0.25, sample variance 2.75 / 3, standard error sqrt(2.75 / 12).
        let d = paired_mean_difference(&[1., 2., 3., 4.], &[0., 2., 2., 5.]);
        assert_eq!((d.a, d.b, d.difference), (2.5, 2.25, 0.25));
        assert!((d.standard_error - (2.75f64 / 12.0).sqrt()).abs() < 1e-15);
        // z = 0.25 / 0.4787 = 0.5222: two-sided p = 0.6015.
        assert!((d.p_value - 0.6015).abs() < 1e-4, "{}", d.p_value);
        let (lo, hi) = d.interval();
        assert!((hi - lo - 2.0 * 1.959964 * d.standard_error).abs() < 1e-12 && lo < 0.25 && hi > 0.25);
        // The same values: no difference, p = 1; a constant shift: no spread, p = 0.
        assert_eq!(paired_mean_difference(&[1., 2.], &[1., 2.]).p_value, 1.0);
        assert_eq!(paired_mean_difference(&[2., 3.], &[1., 2.]).p_value, 0.0);
        assert!(paired_mean_difference(&[], &[]).a.is_nan());
    }

    /// DeLong's variance from its definition: every positive against every negative.
    fn delong_by_definition(a: (&[f64], &[f64]), b: (&[f64], &[f64])) -> (f64, f64, f64) {
        let psi = |x: f64, y: f64| {
            if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            }
        };
        let v10 = |(p, n): (&[f64], &[f64])| -> Vec<f64> {
            p.iter().map(|x| n.iter().map(|y| psi(*x, *y)).sum::<f64>() / n.len() as f64).collect()
        };
        let v01 = |(p, n): (&[f64], &[f64])| -> Vec<f64> {
            n.iter().map(|y| p.iter().map(|x| psi(*x, *y)).sum::<f64>() / p.len() as f64).collect()
        };
        let cov = |x: &[f64], y: &[f64]| {
            let (mx, my) = (x.iter().sum::<f64>() / x.len() as f64, y.iter().sum::<f64>() / y.len() as f64);
            x.iter().zip(y).map(|(u, v)| (u - mx) * (v - my)).sum::<f64>() / (x.len() - 1) as f64
        };
        let (a10, b10, a01, b01) = (v10(a), v10(b), v01(a), v01(b));
        let (m, n) = (a.0.len() as f64, a.1.len() as f64);
        let var = (cov(&a10, &a10) + cov(&b10, &b10) - 2.0 * cov(&a10, &b10)) / m
            + (cov(&a01, &a01) + cov(&b01, &b01) - 2.0 * cov(&a01, &b01)) / n;
        let auc = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        (auc(&a10), auc(&b10), var.sqrt())
    }

    #[test]
    fn delongs_test_gives_the_aurocs_and_the_standard_error_of_its_definition_with_ties() {
        let mut rng = SeededRng::new(3);
        // Scores rounded to tenths, so that many tie; the second score is the first plus noise (correlated).
        let mut draw = |shift: f64, k: usize| -> (Vec<f64>, Vec<f64>) {
            let a: Vec<f64> = (0..k).map(|_| (((rng.gaussian() as f64) + shift) * 10.0).round() / 10.0).collect();
            let b = a.iter().map(|v| ((v + 0.7 * (rng.gaussian() as f64)) * 10.0).round() / 10.0).collect();
            (a, b)
        };
        let ((a_pos, b_pos), (a_neg, b_neg)) = (draw(0.8, 37), draw(0.0, 53));
        let d = delong_difference(&a_pos, &a_neg, &b_pos, &b_neg);
        let (auc_a, auc_b, se) = delong_by_definition((&a_pos, &a_neg), (&b_pos, &b_neg));
        assert!((d.a - auc_a).abs() < 1e-12 && (d.b - auc_b).abs() < 1e-12);
        assert!((d.a - auroc(&a_pos, &a_neg)).abs() < 1e-12, "the placements' mean is the AUROC");
        assert!((d.standard_error - se).abs() < 1e-12, "{} against {se}", d.standard_error);
        assert!(d.standard_error > 0.0 && d.p_value > 0.0 && d.p_value <= 1.0);
        // One score against itself: no difference and no spread.
        let same = delong_difference(&a_pos, &a_neg, &a_pos, &a_neg);
        assert_eq!((same.difference, same.standard_error, same.p_value), (0.0, 0.0, 1.0));
        assert!(delong_difference(&[1.0], &[0.0, 1.0], &[1.0], &[0.0, 1.0]).p_value.is_nan());
        // Zeros of either sign tie, as `auroc` counts them.
        let (pos, neg) = ([0.0, 2.0], [-0.0, 1.0]);
        assert_eq!(delong_difference(&pos, &neg, &pos, &neg).a, auroc(&pos, &neg));
    }

    #[test]
    fn delongs_test_rejects_a_true_null_about_as_often_as_its_level_and_a_real_gap_nearly_always() {
        // Two scores of equal quality (independent noise of the same size on a shared signal): the test at the 5%
        // level should reject about 5% of 400 draws (binomial sd 1.1 points); a score with half the noise should be
        // told apart almost every time.
        let mut rng = SeededRng::new(7);
        let (mut null_rejections, mut gap_found) = (0, 0);
        for _ in 0..400 {
            let mut scores = |shift: f64, k: usize, noise_b: f64| -> (Vec<f64>, Vec<f64>) {
                let signal: Vec<f64> = (0..k).map(|_| (rng.gaussian() as f64) + shift).collect();
                let a = signal.iter().map(|s| s + (rng.gaussian() as f64)).collect();
                let b = signal.iter().map(|s| s + noise_b * (rng.gaussian() as f64)).collect();
                (a, b)
            };
            let ((a_pos, b_pos), (a_neg, b_neg)) = (scores(1.0, 100, 1.0), scores(0.0, 100, 1.0));
            null_rejections += (delong_difference(&a_pos, &a_neg, &b_pos, &b_neg).p_value < 0.05) as usize;
            let ((a_pos, b_pos), (a_neg, b_neg)) = (scores(1.0, 300, 0.2), scores(0.0, 300, 0.2));
            gap_found += (delong_difference(&a_pos, &a_neg, &b_pos, &b_neg).p_value < 0.05) as usize;
        }
        assert!((8..=36).contains(&null_rejections), "{null_rejections} of 400 true nulls rejected");
        assert!(gap_found >= 360, "{gap_found} of 400 real gaps found");
    }
}
