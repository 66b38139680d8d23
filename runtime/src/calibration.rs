//! [`Calibration`]: what a calibration split, held apart from training and test, taught a model — for a
//! classifier a temperature for its Monte-Carlo mean probabilities, split-conformal thresholds for adaptive
//! prediction sets (APS, Romano et al. 2020) at the levels asked for, and a confidence below which an app should
//! abstain; for a regression model split-conformal intervals scaled by the predicted total standard deviation —
//! and how one prediction uses them. The fitting lives in the trainer (`bnn calibrate`); the score and the set are
//! defined once, here, so that fitting and prediction agree to the bit.

use crate::math::{exp, ln};
use crate::prelude::*;
use serde::{Deserialize, Serialize};

/// A conformal level and its threshold on the APS score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConformalLevel {
    /// The nominal coverage, in (0, 1): the set holds the true class with at least this probability (over
    /// calibration and test draws, when they are exchangeable).
    pub level: f32,
    /// The APS score threshold: the set is the most probable classes while their cumulative calibrated
    /// probability stays within it ([`aps_set`]).
    pub threshold: f32,
}

/// Where the calibration examples came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationSplit {
    /// How many examples.
    pub examples: usize,
    /// The seed that drew them.
    pub seed: u64,
    /// In words: which data, and whether training saw it.
    pub source: String,
}

/// What a calibrated classifier's probabilities mean for an app ([`Calibration::decide`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The probabilities at the calibrated temperature.
    pub calibrated: Vec<f32>,
    /// The conformal set at the asked level: classes, most probable first (empty: none plausible).
    pub set: Vec<usize>,
    /// The largest calibrated probability.
    pub confidence: f32,
    /// Below the abstention threshold (false when none is stored).
    pub abstain: bool,
}

/// A classifier's calibration (see the module documentation). Built by the trainer, stored in the model file
/// (`FORMAT.md`, "Calibration"), validated by [`Calibration::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Divides the log of each Monte-Carlo mean probability before renormalising: `p_k^(1/T) / sum_j p_j^(1/T)`
    /// (temperature scaling of the predictive distribution; T > 1 softens, T < 1 sharpens).
    pub temperature: f32,
    /// Conformal levels, increasing, with non-decreasing thresholds (so the sets are nested).
    #[serde(default)]
    pub sets: Vec<ConformalLevel>,
    /// Abstain when the largest calibrated probability is below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abstain_below: Option<f32>,
    /// Regression: conformal levels, increasing, with non-decreasing thresholds `q`; the interval of output `k`
    /// is `mean_k ± q · sqrt(total_variance_k)` (the threshold is the normalised residual
    /// `max_k |y_k - mean_k| / sd_k` the level covers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<ConformalLevel>,
    pub split: CalibrationSplit,
}

impl Calibration {
    /// Checks the ranges: a finite temperature > 0; levels in (0, 1), increasing; set thresholds in [0, 1] and
    /// interval thresholds finite and >= 0, non-decreasing; an abstention threshold in [0, 1]. Whether the
    /// calibration fits the model's task is [`Calibration::validate_for`].
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(format!("temperature must be finite and > 0, found {}", self.temperature));
        }
        check_levels("set", &self.sets, "[0, 1]", |t| (0.0..=1.0).contains(&t))?;
        if let Some(t) = self.abstain_below {
            if !(0.0..=1.0).contains(&t) {
                return Err(format!("abstain_below must lie in [0, 1], found {t}"));
            }
        }
        check_levels("interval", &self.intervals, "[0, inf)", |t| t >= 0.0 && t.is_finite())
    }

    /// Checks that the calibration is one of `classifier`'s kind: sets, temperature and abstention for a
    /// classifier; intervals only (temperature 1) for a regression model.
    pub fn validate_for(&self, classifier: bool) -> Result<(), String> {
        self.validate()?;
        match classifier {
            true if !self.intervals.is_empty() => Err("a classifier's calibration has no intervals".into()),
            false if !self.sets.is_empty() || self.abstain_below.is_some() || self.temperature != 1.0 => {
                Err("a regression model's calibration holds intervals only (temperature 1, no sets, no abstention)"
                    .into())
            }
            _ => Ok(()),
        }
    }

    /// The conformal interval of a regression prediction at a stored `level`: `(lower, upper)` per output, the
    /// mean ± the level's threshold times the predicted total standard deviation; `None` if the level is not
    /// stored.
    pub fn interval(&self, mean: &[f32], total_variance: &[f32], level: f32) -> Option<(Vec<f32>, Vec<f32>)> {
        let q = stored(&self.intervals, level)?;
        let half: Vec<f32> = total_variance.iter().map(|v| q * crate::math::sqrtf(*v)).collect();
        Some((
            mean.iter().zip(&half).map(|(m, h)| m - h).collect(),
            mean.iter().zip(&half).map(|(m, h)| m + h).collect(),
        ))
    }

    /// A prediction's probabilities ([`crate::ClassificationPrediction::probabilities`]) at the calibrated temperature.
    pub fn calibrated(&self, probabilities: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; probabilities.len()];
        temperature_scaled(probabilities, self.temperature, &mut out);
        out
    }

    /// The stored set threshold of `level` (compared exactly: ask for a level the model stores).
    pub fn threshold(&self, level: f32) -> Option<f32> {
        stored(&self.sets, level)
    }

    /// The conformal prediction set of a prediction's probabilities at a stored `level`: class indices, most
    /// probable first (possibly empty, see [`aps_set`]); `None` if the model stores no such level.
    pub fn prediction_set(&self, probabilities: &[f32], level: f32) -> Option<Vec<usize>> {
        let threshold = self.threshold(level)?;
        Some(aps_set(&self.calibrated(probabilities), threshold))
    }

    /// The whole decision on a prediction's probabilities at a stored `level` (`None` if the level is not
    /// stored), calibrating once.
    pub fn decide(&self, probabilities: &[f32], level: f32) -> Option<Decision> {
        let threshold = self.threshold(level)?;
        let calibrated = self.calibrated(probabilities);
        let confidence = confidence(&calibrated);
        Some(Decision {
            set: aps_set(&calibrated, threshold),
            confidence,
            abstain: self.abstain_below.is_some_and(|t| confidence < t),
            calibrated,
        })
    }

    /// Whether an app should abstain on a prediction's probabilities (false when no threshold is stored).
    pub fn abstains(&self, probabilities: &[f32]) -> bool {
        let Some(t) = self.abstain_below else { return false };
        confidence(&self.calibrated(probabilities)) < t
    }
}

/// The threshold of `level` among `levels` (compared exactly).
fn stored(levels: &[ConformalLevel], level: f32) -> Option<f32> {
    levels.iter().find(|s| s.level == level).map(|s| s.threshold)
}

/// Checks one list of conformal levels: each level in (0, 1), each threshold within `range` (`in_range`), levels
/// increasing and thresholds not decreasing, so that the sets or intervals are nested.
fn check_levels(
    what: &str,
    levels: &[ConformalLevel],
    range: &str,
    in_range: impl Fn(f32) -> bool,
) -> Result<(), String> {
    for (i, s) in levels.iter().enumerate() {
        if !(s.level > 0.0 && s.level < 1.0) {
            return Err(format!("{what} {i}: level must lie in (0, 1), found {}", s.level));
        }
        if !in_range(s.threshold) {
            return Err(format!("{what} {i}: threshold must lie in {range}, found {}", s.threshold));
        }
        if i > 0 && (s.level <= levels[i - 1].level || s.threshold < levels[i - 1].threshold) {
            return Err(format!("{what} {i}: levels must increase and thresholds must not decrease (nested)"));
        }
    }
    Ok(())
}

/// The largest probability.
pub fn confidence(probabilities: &[f32]) -> f32 {
    probabilities.iter().copied().fold(0.0f32, f32::max)
}

/// `p_k^(1/T) / sum_j p_j^(1/T)` into `out`, computed in f64 from the logs (a zero probability stays zero).
pub fn temperature_scaled(probabilities: &[f32], temperature: f32, out: &mut [f32]) {
    let inv = 1.0 / temperature as f64;
    let ln_max = ln(confidence(probabilities) as f64);
    let scaled: Vec<f64> =
        probabilities.iter().map(|&p| if p > 0.0 { exp(inv * (ln(p as f64) - ln_max)) } else { 0.0 }).collect();
    let total: f64 = scaled.iter().sum();
    for (o, s) in out.iter_mut().zip(&scaled) {
        *o = (s / total) as f32;
    }
}

/// The classes in decreasing probability (the lower index first among equals).
fn ranked(probabilities: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|a, b| probabilities[*b].total_cmp(&probabilities[*a]).then(a.cmp(b)));
    order
}

/// The APS tie-breaker `u` in [0, 1) of a prediction: SplitMix64 over the bits of its probabilities, top 24
/// bits. It plays the role of randomised APS's uniform draw — spreading the scores of confident predictions,
/// which would otherwise all sit at 1 — while keeping every decision a reproducible function of the prediction
/// (split-conformal coverage holds for any fixed score function).
pub fn tie_breaker(probabilities: &[f32]) -> f64 {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for p in probabilities {
        state ^= p.to_bits() as u64;
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        state = z ^ (z >> 31);
    }
    (state >> 40) as f64 / (1u64 << 24) as f64
}

/// The APS conformity score of `class` (randomised APS, Romano et al. 2020): the total probability of the
/// classes ranked before it, plus `u` times its own, with `u` the prediction's [`tie_breaker`].
pub fn aps_score(probabilities: &[f32], class: usize) -> f32 {
    let u = tie_breaker(probabilities);
    let mut before = 0.0f64;
    for k in ranked(probabilities) {
        if k == class {
            return (before + u * probabilities[k] as f64) as f32;
        }
        before += probabilities[k] as f64;
    }
    1.0
}

/// The APS set at `threshold`: every class whose [`aps_score`] is at most the threshold, most probable first.
/// Along the ranking the scores never decrease (`before_k + u p_k <= before_k + p_k + u p_(k+1)`), so the set is
/// the longest prefix within the threshold. Membership is exactly "score ≤ threshold", which gives
/// split-conformal sets their coverage in [level, level + 1/(n+1)]. The set is empty when even the most
/// probable class scores above the threshold: nothing is plausible enough at that level (an app should treat it
/// as "abstain").
pub fn aps_set(probabilities: &[f32], threshold: f32) -> Vec<usize> {
    let u = tie_breaker(probabilities);
    let mut set = Vec::new();
    let mut before = 0.0f64;
    for k in ranked(probabilities) {
        if (before + u * probabilities[k] as f64) as f32 > threshold {
            break;
        }
        set.push(k);
        before += probabilities[k] as f64;
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calibration(temperature: f32) -> Calibration {
        Calibration {
            temperature,
            sets: vec![ConformalLevel { level: 0.9, threshold: 0.8 }, ConformalLevel { level: 0.95, threshold: 0.95 }],
            abstain_below: Some(0.6),
            intervals: vec![],
            split: CalibrationSplit { examples: 10, seed: 1, source: "test".into() },
        }
    }

    #[test]
    fn temperature_one_keeps_the_probabilities_and_others_match_the_softmax_of_scaled_logs() {
        let p = [0.7f32, 0.2, 0.1, 0.0];
        let mut out = [0.0; 4];
        temperature_scaled(&p, 1.0, &mut out);
        for (a, b) in out.iter().zip(p) {
            assert!((a - b).abs() < 1e-7);
        }
        temperature_scaled(&p, 2.0, &mut out);
        let roots: Vec<f64> = p.iter().map(|v| (*v as f64).sqrt()).collect();
        let total: f64 = roots.iter().sum();
        for (a, r) in out.iter().zip(&roots) {
            assert!((*a as f64 - r / total).abs() < 1e-7, "{out:?}");
        }
        assert_eq!(out[3], 0.0);
    }

    #[test]
    fn a_class_is_in_the_set_exactly_when_its_score_is_within_the_threshold() {
        let p = [0.1f32, 0.5, 0.3, 0.1];
        let u = tie_breaker(&p);
        assert!((0.0..1.0).contains(&u));
        let close = |a: f32, b: f64| (a as f64 - b).abs() < 1e-6;
        assert!(close(aps_score(&p, 1), u * 0.5));
        assert!(close(aps_score(&p, 2), 0.5 + u * 0.3));
        assert!(
            close(aps_score(&p, 0), 0.8 + u * 0.1) && close(aps_score(&p, 3), 0.9 + u * 0.1),
            "ties: lower index first"
        );
        assert_eq!(aps_set(&p, 0.0), Vec::<usize>::new(), "not even the top class: empty");
        assert_eq!(aps_set(&p, 1.0).len(), 4);
        for t in [0.0f32, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0] {
            let set = aps_set(&p, t);
            for k in 0..4 {
                assert_eq!(set.contains(&k), aps_score(&p, k) <= t, "t {t}, class {k}");
            }
        }
    }

    #[test]
    fn sets_are_nested_in_the_level_and_abstention_reads_the_calibrated_confidence() {
        let c = calibration(1.0);
        let p = &[0.55f32, 0.3, 0.1, 0.05];
        // Thresholds 0.8 and 0.95: the scores are 0.55u, 0.55 + 0.3u, 0.85 + 0.1u, 0.95 + 0.05u.
        let (low, high) = (c.prediction_set(p, 0.9).unwrap(), c.prediction_set(p, 0.95).unwrap());
        assert!(low.iter().all(|k| high.contains(k)) && low.len() <= high.len(), "{low:?} {high:?}");
        assert!(high.len() >= 2 && high.len() <= 3, "{high:?}");
        assert_eq!(c.prediction_set(p, 0.5), None, "only stored levels");
        assert!(c.abstains(p), "0.55 < 0.6");
        assert!(!calibration(0.5).abstains(p), "sharpened: 0.55² / sum > 0.6");
    }

    #[test]
    fn a_regression_interval_is_the_mean_plus_minus_the_threshold_times_the_total_sd() {
        let c = Calibration {
            temperature: 1.0,
            sets: vec![],
            abstain_below: None,
            intervals: vec![
                ConformalLevel { level: 0.9, threshold: 1.5 },
                ConformalLevel { level: 0.95, threshold: 2.0 },
            ],
            split: CalibrationSplit { examples: 10, seed: 1, source: "test".into() },
        };
        assert!(c.validate_for(false).is_ok() && c.validate_for(true).is_err());
        assert_eq!(c.interval(&[1.0, -2.0], &[4.0, 0.25], 0.9), Some((vec![-2.0, -2.75], vec![4.0, -1.25])));
        assert_eq!(c.interval(&[1.0], &[4.0], 0.5), None);
        assert!(calibration(1.0).validate_for(false).is_err(), "sets on a regression model");
        let shrinking = Calibration { intervals: vec![c.intervals[1], c.intervals[0]], ..c.clone() };
        assert!(shrinking.validate().is_err());
    }

    #[test]
    fn validation_rejects_what_cannot_be_a_calibration() {
        assert!(calibration(1.0).validate().is_ok());
        for bad in [
            Calibration { temperature: 0.0, ..calibration(1.0) },
            Calibration { temperature: f32::NAN, ..calibration(1.0) },
            Calibration { abstain_below: Some(1.5), ..calibration(1.0) },
            Calibration { sets: vec![ConformalLevel { level: 1.0, threshold: 0.9 }], ..calibration(1.0) },
            Calibration { sets: vec![ConformalLevel { level: 0.9, threshold: f32::NAN }], ..calibration(1.0) },
            Calibration {
                sets: vec![
                    ConformalLevel { level: 0.95, threshold: 0.9 },
                    ConformalLevel { level: 0.9, threshold: 0.95 },
                ],
                ..calibration(1.0)
            },
            Calibration {
                sets: vec![
                    ConformalLevel { level: 0.9, threshold: 0.95 },
                    ConformalLevel { level: 0.95, threshold: 0.9 },
                ],
                ..calibration(1.0)
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
