//! How well a calibrated classifier's decisions hold up on labelled data: the empirical coverage and size of
//! its conformal prediction sets at each stored level, calibration (ECE) and NLL before and after its
//! temperature, and selective prediction — the risk–coverage curve of answering only the most confident inputs,
//! its area (AURC), the risk at 80% coverage, and what the stored abstention threshold does.

use super::{expected_calibration_error, label_nll, ECE_BINS};
use bnn_runtime::{aps_set, confidence, Calibration, ClassificationPrediction};
use serde::Serialize;

/// The conformal sets of one level on a set of inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetCoverage {
    pub level: f32,
    /// Share of examples whose set holds the true class (absent for inputs without labels, e.g. OOD sets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    pub mean_size: f64,
    /// Share of empty sets (no class plausible at this level).
    pub empty: f64,
    /// Share of sets with exactly one class.
    pub singleton: f64,
}

/// What the stored abstention threshold does on the data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Abstention {
    pub threshold: f32,
    /// Share of examples answered (confidence at or above the threshold).
    pub coverage: f64,
    /// Error among the answered.
    pub selective_risk: f64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionReport {
    pub temperature: f32,
    pub ece_before: f64,
    pub ece_after: f64,
    /// Mean negative log probability of the true class with the raw probabilities and with the calibrated ones.
    pub nll_before: f64,
    pub nll_after: f64,
    pub sets: Vec<SetCoverage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abstention: Option<Abstention>,
    /// Area under the risk–coverage curve (calibrated confidence ranks the inputs).
    pub aurc: f64,
    /// Error among the 80% most confident inputs.
    pub selective_risk_at_80: f64,
}

/// `(coverage, risk)` after each input, answering the most confident first: coverage k/n and the error among
/// those k.
pub fn risk_coverage(confidence: &[f32], correct: &[bool]) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..confidence.len()).collect();
    order.sort_by(|a, b| confidence[*b].total_cmp(&confidence[*a]).then(a.cmp(b)));
    let n = order.len() as f64;
    let mut errors = 0usize;
    order
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            errors += !correct[i] as usize;
            ((k + 1) as f64 / n, errors as f64 / (k + 1) as f64)
        })
        .collect()
}

/// The conformal sets of every stored level on `calibrated` probabilities (each input's, calibrated), with their
/// coverage of `labels` when there are labels.
pub fn set_coverage(calibrated: &[Vec<f32>], labels: Option<&[u32]>, calibration: &Calibration) -> Vec<SetCoverage> {
    let share = |k: usize| k as f64 / calibrated.len().max(1) as f64;
    calibration
        .sets
        .iter()
        .map(|s| {
            let (mut hits, mut size, mut empty, mut single) = (0, 0, 0, 0);
            for (i, p) in calibrated.iter().enumerate() {
                let set = aps_set(p, s.threshold);
                hits += labels.is_some_and(|y| set.contains(&(y[i] as usize))) as usize;
                size += set.len();
                empty += set.is_empty() as usize;
                single += (set.len() == 1) as usize;
            }
            SetCoverage {
                level: s.level,
                coverage: labels.map(|_| share(hits)),
                mean_size: share(size),
                empty: share(empty),
                singleton: share(single),
            }
        })
        .collect()
}

/// Sum of [`label_nll`] over inputs' `probabilities` and their true `labels`.
fn total_label_nll<'a>(probabilities: impl Iterator<Item = &'a [f32]>, labels: &[u32]) -> f64 {
    probabilities.zip(labels).map(|(p, y)| label_nll(p, *y as usize)).sum()
}

/// Scores `calibration` on predictions with true `labels`.
pub fn decision_report(
    predictions: &[ClassificationPrediction],
    labels: &[u32],
    calibration: &Calibration,
) -> DecisionReport {
    let calibrated: Vec<Vec<f32>> = predictions.iter().map(|p| calibration.calibrated(&p.probabilities)).collect();
    let correct: Vec<bool> = predictions.iter().zip(labels).map(|(p, y)| p.class == *y as usize).collect();
    let raw_confidence: Vec<f32> = predictions.iter().map(|p| confidence(&p.probabilities)).collect();
    let confidence: Vec<f32> = calibrated.iter().map(|p| confidence(p)).collect();
    let n = predictions.len().max(1) as f64;
    let sets = set_coverage(&calibrated, Some(labels), calibration);
    let abstention = calibration.abstain_below.map(|t| {
        let answered: Vec<bool> = confidence.iter().map(|c| *c >= t).collect();
        let kept = answered.iter().filter(|a| **a).count();
        let wrong = answered.iter().zip(&correct).filter(|(a, c)| **a && !**c).count();
        Abstention { threshold: t, coverage: kept as f64 / n, selective_risk: wrong as f64 / kept.max(1) as f64 }
    });
    let curve = risk_coverage(&confidence, &correct);
    let aurc = curve.iter().map(|(_, r)| r).sum::<f64>() / curve.len().max(1) as f64;
    let at_80 = curve.iter().find(|(c, _)| *c >= 0.8).map_or(f64::NAN, |(_, r)| *r);
    DecisionReport {
        temperature: calibration.temperature,
        ece_before: expected_calibration_error(&raw_confidence, &correct, ECE_BINS),
        ece_after: expected_calibration_error(&confidence, &correct, ECE_BINS),
        nll_before: total_label_nll(predictions.iter().map(|p| p.probabilities.as_slice()), labels) / n,
        nll_after: total_label_nll(calibrated.iter().map(Vec::as_slice), labels) / n,
        sets,
        abstention,
        aurc,
        selective_risk_at_80: at_80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_runtime::CalibrationSplit;

    #[test]
    fn the_risk_coverage_curve_answers_the_most_confident_first() {
        let curve = risk_coverage(&[0.9, 0.6, 0.99, 0.7], &[true, false, true, false]);
        assert_eq!(curve, vec![(0.25, 0.0), (0.5, 0.0), (0.75, 1.0 / 3.0), (1.0, 0.5)]);
    }

    #[test]
    fn the_nll_after_the_temperature_is_that_of_the_sharpened_probabilities() {
        let prediction = |probabilities: Vec<f32>| ClassificationPrediction {
            class: if probabilities[0] >= probabilities[1] { 0 } else { 1 },
            probabilities,
            predictive_entropy: 0.0,
            expected_entropy: 0.0,
            mutual_information: 0.0,
            samples_used: 1,
        };
        let calibration = Calibration {
            temperature: 0.5,
            sets: vec![],
            abstain_below: None,
            intervals: vec![],
            split: CalibrationSplit { examples: 2, seed: 0, source: "test".into() },
        };
        // T = 1/2 squares and renormalises: (0.8, 0.2) -> (0.64, 0.04) / 0.68; (0.6, 0.4) -> (0.36, 0.16) / 0.52.
        let r = decision_report(&[prediction(vec![0.8, 0.2]), prediction(vec![0.6, 0.4])], &[0, 1], &calibration);
        assert!((r.nll_before - (-(0.8f64.ln()) - 0.4f64.ln()) / 2.0).abs() < 1e-6, "{}", r.nll_before);
        let after = (-(0.64f64 / 0.68).ln() - (0.16f64 / 0.52).ln()) / 2.0;
        assert!((r.nll_after - after).abs() < 1e-6, "{} vs {after}", r.nll_after);
    }
}
