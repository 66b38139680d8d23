//! Fitting a model's [`Calibration`] on examples held apart from training and test. A classifier: the
//! temperature that minimises the NLL of the calibrated Monte-Carlo mean probabilities, the split-conformal APS
//! threshold of each level, and the confidence below which to abstain (for a target coverage or risk); the
//! score and the sets are the runtime's ([`bnn_runtime::aps_score`], [`bnn_runtime::aps_set`]). A regression
//! model ([`fit_regression`]): the split-conformal threshold of each level on the normalised residual
//! `max_k |y_k - mean_k| / sd_k`, so that `mean ± threshold · sd` covers all outputs at once.

use crate::error::{Result, TrainError};
use bnn_runtime::{
    aps_score, temperature_scaled, Calibration, CalibrationSplit, ClassificationPrediction, ConformalLevel,
    RegressionPrediction,
};

/// Probabilities below this count as this in the NLL (as the evaluation's NLL does).
const MIN_PROBABILITY: f64 = 1e-12;

/// Mean `-ln p_T(y)` at temperature `t`.
fn nll_at(probabilities: &[&[f32]], labels: &[u32], t: f32) -> f64 {
    let mut scaled = Vec::new();
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(p, y)| {
            scaled.resize(p.len(), 0.0);
            temperature_scaled(p, t, &mut scaled);
            -(scaled[*y as usize] as f64).max(MIN_PROBABILITY).ln()
        })
        .sum();
    total / labels.len().max(1) as f64
}

/// The temperature in [e^-5, e^5] with the lowest NLL. The NLL is convex in 1/T (a log-sum-exp of functions
/// linear in it), hence unimodal in ln T: a golden-section search finds the minimum.
pub fn fit_temperature(probabilities: &[&[f32]], labels: &[u32]) -> f32 {
    let f = |u: f64| nll_at(probabilities, labels, u.exp() as f32);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (-5.0f64, 5.0f64);
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..80 {
        if fc <= fd {
            (b, d, fd) = (d, c, fc);
            c = b - g * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    ((a + b) / 2.0).exp() as f32
}

/// The split-conformal threshold of `scores` at `level`: the ⌈(n + 1)·level⌉-th smallest score, or 1 (every
/// class) when that rank exceeds n. With exchangeable calibration and test examples the set holds the true class
/// with probability at least `level`, and (for scores without ties) at most `level + 1 / (n + 1)`.
pub fn conformal_threshold(scores: &[f32], level: f32) -> f32 {
    conformal_quantile(scores, level).map_or(1.0, |q| q.min(1.0))
}

/// The ⌈(n + 1)·level⌉-th smallest of `scores`, or `None` when that rank exceeds n (too few examples for the
/// level: only an infinite threshold would do).
fn conformal_quantile(scores: &[f32], level: f32) -> Option<f32> {
    let n = scores.len();
    // The level as the decimal it was written as (0.9, not 0.899999976 from f32), so that an exact product
    // such as 10 · 0.9 does not round up to the next rank.
    let level: f64 = level.to_string().parse().unwrap_or(level as f64);
    let rank = ((n as f64 + 1.0) * level).ceil() as usize;
    if rank > n {
        return None;
    }
    let mut sorted = scores.to_vec();
    sorted.sort_by(f32::total_cmp);
    Some(sorted[rank.max(1) - 1])
}

/// The conformal levels asked for, sorted and without repeats; each in (0, 1).
fn checked_levels(levels: &[f32]) -> Result<Vec<f32>> {
    let mut levels = levels.to_vec();
    levels.sort_by(f32::total_cmp);
    levels.dedup();
    match levels.iter().find(|l| !(**l > 0.0 && **l < 1.0)) {
        Some(l) => Err(TrainError::Argument(format!("a conformal level must lie in (0, 1), found {l}"))),
        None => Ok(levels),
    }
}

/// Fits a regression model's conformal intervals: `predictions` of the calibration examples, `targets` their
/// values (`outputs` per example, one after another).
pub fn fit_regression(
    predictions: &[RegressionPrediction],
    targets: &[f32],
    levels: &[f32],
    split: CalibrationSplit,
) -> Result<Calibration> {
    let outputs = predictions.first().map_or(0, |p| p.mean.len());
    if predictions.is_empty() || targets.len() != predictions.len() * outputs {
        return Err(TrainError::Argument(format!(
            "calibration needs {outputs} targets per prediction and at least one prediction: {} predictions, {} \
             targets",
            predictions.len(),
            targets.len()
        )));
    }
    let scores: Vec<f32> = predictions
        .iter()
        .zip(targets.chunks(outputs))
        .map(|(p, y)| {
            let residual = |k: usize| ((y[k] - p.mean[k]) as f64).abs() / (p.total_variance[k] as f64).sqrt();
            (0..outputs).map(residual).fold(0.0f64, f64::max) as f32
        })
        .collect();
    let mut intervals = Vec::new();
    for level in checked_levels(levels)? {
        let threshold = conformal_quantile(&scores, level).ok_or_else(|| {
            TrainError::Argument(format!(
                "{} calibration examples are too few for a {level} interval (it needs at least {})",
                scores.len(),
                ((1.0 / (1.0 - level as f64)).ceil() as usize).saturating_sub(1)
            ))
        })?;
        intervals.push(ConformalLevel { level, threshold });
    }
    let calibration = Calibration { temperature: 1.0, sets: vec![], abstain_below: None, intervals, split };
    calibration.validate_for(false).map_err(TrainError::Argument)?;
    Ok(calibration)
}

/// The largest confidence threshold that still answers at least `coverage` of the examples (those with
/// confidence at or above it).
pub fn abstain_threshold(confidence: &[f32], coverage: f32) -> f32 {
    let mut sorted = confidence.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let keep = ((coverage as f64 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(keep - 1).copied().unwrap_or(0.0)
}

/// The lowest confidence threshold at which the answered calibration examples (confidence at or above it, the
/// most confident first) have an error rate of at most `risk`; 1 if not even the most confident is right. An
/// estimate on the calibration split, without a finite-sample guarantee.
pub fn abstain_threshold_for_risk(confidence: &[f32], correct: &[bool], risk: f32) -> f32 {
    let mut order: Vec<usize> = (0..confidence.len()).collect();
    order.sort_by(|a, b| confidence[*b].total_cmp(&confidence[*a]));
    let (mut errors, mut threshold) = (0usize, 1.0f32);
    for (k, &i) in order.iter().enumerate() {
        errors += !correct[i] as usize;
        if errors as f64 <= risk as f64 * (k + 1) as f64 {
            threshold = confidence[i];
        }
    }
    threshold
}

/// When an app should abstain: answer a target share of inputs, or keep the error among the answered at a
/// target rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AbstainTarget {
    /// The share of inputs to keep answering, in (0, 1].
    Coverage(f32),
    /// The largest error rate among the answered, in [0, 1).
    Risk(f32),
}

/// What to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationRequest {
    /// Conformal levels, each in (0, 1).
    pub levels: Vec<f32>,
    /// `None`: no abstention threshold.
    pub abstain: Option<AbstainTarget>,
    pub split: CalibrationSplit,
}

/// Fits the calibration of `predictions` (Monte-Carlo predictions of the calibration examples) with true
/// `labels`: temperature first, then the conformal thresholds and the abstention threshold on the calibrated
/// probabilities.
pub fn fit(
    predictions: &[ClassificationPrediction],
    labels: &[u32],
    request: &CalibrationRequest,
) -> Result<Calibration> {
    if predictions.is_empty() || predictions.len() != labels.len() {
        return Err(TrainError::Argument(format!(
            "calibration needs as many labels as predictions, and at least one: {} predictions, {} labels",
            predictions.len(),
            labels.len()
        )));
    }
    if let Some((p, y)) = predictions.iter().zip(labels).find(|(p, y)| **y as usize >= p.probabilities.len()) {
        return Err(TrainError::Argument(format!("label {y} is not one of the {} classes", p.probabilities.len())));
    }
    let levels = checked_levels(&request.levels)?;
    match request.abstain {
        Some(AbstainTarget::Coverage(c)) if !(c > 0.0 && c <= 1.0) => {
            return Err(TrainError::Argument(format!("the abstention coverage must lie in (0, 1], found {c}")))
        }
        Some(AbstainTarget::Risk(r)) if !(0.0..1.0).contains(&r) => {
            return Err(TrainError::Argument(format!("the abstention risk must lie in [0, 1), found {r}")))
        }
        _ => {}
    }
    let raw: Vec<&[f32]> = predictions.iter().map(|p| p.probabilities.as_slice()).collect();
    let temperature = fit_temperature(&raw, labels);
    let calibrated: Vec<Vec<f32>> = raw
        .iter()
        .map(|p| {
            let mut out = vec![0.0; p.len()];
            temperature_scaled(p, temperature, &mut out);
            out
        })
        .collect();
    let scores: Vec<f32> = calibrated.iter().zip(labels).map(|(p, y)| aps_score(p, *y as usize)).collect();
    let sets =
        levels.iter().map(|&level| ConformalLevel { level, threshold: conformal_threshold(&scores, level) }).collect();
    let confidence: Vec<f32> = calibrated.iter().map(|p| bnn_runtime::confidence(p)).collect();
    let calibration = Calibration {
        temperature,
        sets,
        abstain_below: request.abstain.map(|target| match target {
            AbstainTarget::Coverage(c) => abstain_threshold(&confidence, c),
            AbstainTarget::Risk(r) => {
                // Temperature scaling keeps the order of the classes: the calibrated top class is the prediction's.
                let correct: Vec<bool> = predictions.iter().zip(labels).map(|(p, y)| p.class == *y as usize).collect();
                abstain_threshold_for_risk(&confidence, &correct, r)
            }
        }),
        intervals: vec![],
        split: request.split.clone(),
    };
    calibration.validate().map_err(TrainError::Argument)?;
    Ok(calibration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_runtime::{aps_set, SeededRng};

    fn softmax(z: &[f64], scale: f64) -> Vec<f32> {
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| ((v - m) * scale).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| (v / s) as f32).collect()
    }

    /// `n` examples of `k` classes: logits z ~ N(0, 2²), the label drawn from softmax(z), and the model's
    /// probabilities softmax(scale · z) — over-confident by exactly the temperature `scale`.
    fn examples(n: usize, k: usize, scale: f64, rng: &mut SeededRng) -> (Vec<Vec<f32>>, Vec<u32>) {
        let (mut probabilities, mut labels) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let z: Vec<f64> = (0..k).map(|_| 2.0 * rng.gaussian() as f64).collect();
            let truth = softmax(&z, 1.0);
            let u = rng.uniform();
            let mut cumulative = 0.0;
            let y = truth.iter().position(|p| {
                cumulative += p;
                u < cumulative
            });
            labels.push(y.unwrap_or(k - 1) as u32);
            probabilities.push(softmax(&z, scale));
        }
        (probabilities, labels)
    }

    #[test]
    fn temperature_scaling_recovers_a_known_temperature() {
        let mut rng = SeededRng::new(4);
        for (scale, temperature) in [(2.0, 2.0), (1.0, 1.0), (0.5, 0.5)] {
            let (p, y) = examples(20_000, 5, scale, &mut rng);
            let refs: Vec<&[f32]> = p.iter().map(Vec::as_slice).collect();
            let fitted = fit_temperature(&refs, &y);
            assert!((fitted / temperature as f32 - 1.0).abs() < 0.05, "{fitted} vs {temperature}");
        }
    }

    #[test]
    fn split_conformal_sets_cover_at_least_the_level_and_at_most_one_calibration_example_more() {
        // Calibrated probabilities (scale 1): over many calibration draws the mean coverage lies in
        // [level, level + 1/(n+1)] up to Monte-Carlo error.
        let (n, tests, draws) = (100, 400, 300);
        let mut rng = SeededRng::new(9);
        for level in [0.8f32, 0.9] {
            let mut coverage = Vec::with_capacity(draws);
            for _ in 0..draws {
                let (cal_p, cal_y) = examples(n, 4, 1.0, &mut rng);
                let scores: Vec<f32> = cal_p.iter().zip(&cal_y).map(|(p, y)| aps_score(p, *y as usize)).collect();
                let q = conformal_threshold(&scores, level);
                let (test_p, test_y) = examples(tests, 4, 1.0, &mut rng);
                let hits = test_p.iter().zip(&test_y).filter(|(p, y)| aps_set(p, q).contains(&(**y as usize))).count();
                coverage.push(hits as f64 / tests as f64);
            }
            let mean = coverage.iter().sum::<f64>() / draws as f64;
            let sd = (coverage.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (draws - 1) as f64).sqrt();
            let se = sd / (draws as f64).sqrt();
            let upper = level as f64 + 1.0 / (n as f64 + 1.0);
            assert!(mean >= level as f64 - 3.0 * se, "level {level}: mean coverage {mean} ± {se}");
            assert!(mean <= upper + 3.0 * se, "level {level}: mean coverage {mean} ± {se} above {upper}");
        }
    }

    #[test]
    fn thresholds_and_sets_grow_with_the_level_and_abstention_keeps_the_asked_share() {
        let mut rng = SeededRng::new(2);
        let (p, y) = examples(500, 6, 1.5, &mut rng);
        let preds: Vec<ClassificationPrediction> = p
            .into_iter()
            .map(|probabilities| ClassificationPrediction {
                class: 0,
                probabilities,
                predictive_entropy: 0.0,
                expected_entropy: 0.0,
                mutual_information: 0.0,
                samples_used: 1,
            })
            .collect();
        let request = CalibrationRequest {
            levels: vec![0.99, 0.9, 0.95],
            abstain: Some(AbstainTarget::Coverage(0.8)),
            split: CalibrationSplit { examples: 500, seed: 2, source: "synthetic".into() },
        };
        let c = fit(&preds, &y, &request).unwrap();
        assert!((c.temperature - 1.5).abs() < 0.2, "{}", c.temperature);
        let levels: Vec<f32> = c.sets.iter().map(|s| s.level).collect();
        assert_eq!(levels, [0.9, 0.95, 0.99]);
        for p in &preds {
            let sets: Vec<Vec<usize>> =
                levels.iter().map(|l| c.prediction_set(&p.probabilities, *l).unwrap()).collect();
            assert!(sets.windows(2).all(|w| w[0].iter().all(|k| w[1].contains(k))), "nested");
        }
        let answered = preds.iter().filter(|p| !c.abstains(&p.probabilities)).count();
        assert!(answered >= 400, "{answered} of 500 answered at coverage 0.8");
        assert!(fit(&preds, &y[..10], &request).is_err());
        assert!(fit(&preds, &y, &CalibrationRequest { levels: vec![1.0], ..request.clone() }).is_err());
    }

    #[test]
    fn regression_thresholds_are_the_normal_quantiles_when_the_predicted_sd_is_right() {
        // y = mean + sd · ε with ε ~ N(0, 1) and the predicted total sd right: |ε| has its 90% and 95% quantiles
        // at 1.6449 and 1.9600.
        let mut rng = SeededRng::new(5);
        let (mut predictions, mut targets) = (vec![], vec![]);
        for i in 0..20_000 {
            let (mean, sd) = (i as f32 * 0.001, 0.5 + (i % 7) as f32);
            targets.push(mean + sd * rng.gaussian());
            predictions.push(RegressionPrediction {
                mean: vec![mean],
                aleatoric_variance: vec![sd * sd],
                epistemic_variance: vec![0.0],
                total_variance: vec![sd * sd],
                lower: vec![0.0],
                upper: vec![0.0],
                interval_level: 0.95,
                samples_used: 1,
            });
        }
        let split = CalibrationSplit { examples: 20_000, seed: 5, source: "synthetic".into() };
        let c = fit_regression(&predictions, &targets, &[0.95, 0.9], split.clone()).unwrap();
        let q: Vec<f32> = c.intervals.iter().map(|s| s.threshold).collect();
        assert!((q[0] - 1.6449).abs() < 0.05 && (q[1] - 1.96).abs() < 0.05, "{q:?}");
        assert_eq!((c.intervals[0].level, c.temperature, c.sets.len()), (0.9, 1.0, 0));
        // 10 examples cannot give a 95% interval: ⌈11 · 0.95⌉ = 11 > 10.
        let err = fit_regression(&predictions[..10], &targets[..10], &[0.95], split).unwrap_err().to_string();
        assert!(err.contains("too few"), "{err}");
    }

    #[test]
    fn the_conformal_rank_is_the_ceiling_of_n_plus_one_times_the_level() {
        let scores = [0.5f32, 0.1, 0.9, 0.3];
        assert_eq!(conformal_threshold(&scores, 0.5), 0.5); // ⌈5 · 0.5⌉ = 3: the 3rd smallest
        assert_eq!(conformal_threshold(&scores, 0.6), 0.5); // 5 · 0.6 = 3 exactly, not 3.0000001 (f32)
        assert_eq!(conformal_threshold(&scores, 0.7), 0.9); // ⌈3.5⌉ = 4
        assert_eq!(conformal_threshold(&scores, 0.9), 1.0); // rank 5 > n: every class
        assert_eq!(abstain_threshold(&[0.9, 0.5, 0.7, 0.6], 0.5), 0.7);
        // By risk: most confident first 0.9 ✓, 0.7 ✗, 0.6 ✓, 0.5 ✓ — errors 0/1, 1/2, 1/3, 1/4.
        let (confidence, correct) = ([0.9f32, 0.5, 0.7, 0.6], [true, true, false, true]);
        assert_eq!(abstain_threshold_for_risk(&confidence, &correct, 0.3), 0.5);
        assert_eq!(abstain_threshold_for_risk(&confidence, &correct, 0.25), 0.5);
        assert_eq!(abstain_threshold_for_risk(&confidence, &correct, 0.2), 0.9);
        assert_eq!(abstain_threshold_for_risk(&confidence, &[false, true, true, true], 0.0), 1.0);
    }
}
