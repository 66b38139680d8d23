//! Evaluating a runtime model on a dataset: accuracy, NLL, Brier score, expected calibration error,
//! mean predictive entropy and mutual information; out-of-distribution detection metrics; and the single-input
//! latency of a prediction. The studies `bnn eval` runs are in [`shift`], [`regression`] and [`decisions`].

pub mod decisions;
pub mod regression;
pub mod shift;

use crate::data::{Dataset, Targets};
use crate::error::{Result, TrainError};
use bnn_runtime::{ClassificationPrediction, Model, PredictOptions, Predictor};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Bins of the expected calibration error (Guo et al. 2017 use 15).
pub const ECE_BINS: usize = 15;

/// Metrics of a classifier's predictive distribution on a labelled set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassificationReport {
    pub examples: usize,
    pub accuracy: f64,
    /// `1 - accuracy`.
    pub error: f64,
    /// Mean `-ln p(true class)`, with p clamped at 1e-12.
    pub nll: f64,
    /// Mean `sum_k (p_k - 1[k = y])^2`.
    pub brier: f64,
    /// Expected calibration error over [`ECE_BINS`] equal-width confidence bins.
    pub ece: f64,
    pub mean_predictive_entropy: f64,
    pub mean_mutual_information: f64,
    pub samples: usize,
}

/// Predicts every example of `data` (raw inputs; the model normalises) on `threads` threads. Example `i`
/// uses seed `options.seed + i`, so the result does not depend on the thread count.
pub fn predict_all(
    model: &Model,
    data: &Dataset,
    options: &PredictOptions,
    threads: usize,
) -> Result<Vec<ClassificationPrediction>> {
    let n = data.len();
    let threads = threads.max(1);
    let chunk = n.div_ceil(threads).max(1);
    let results: Vec<Result<Vec<ClassificationPrediction>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                s.spawn(move || {
                    let mut p = Predictor::new(model);
                    (start..(start + chunk).min(n))
                        .map(|i| {
                            let o = options.seed(options.seed.wrapping_add(i as u64));
                            let pred = p.predict(data.input(i), &o).map_err(|e| TrainError::Data(e.to_string()))?;
                            pred.as_classification()
                                .cloned()
                                .ok_or_else(|| TrainError::Data("the model is not a classifier".into()))
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("prediction threads do not panic")).collect()
    });
    Ok(results.into_iter().collect::<Result<Vec<_>>>()?.into_iter().flatten().collect())
}

/// The negative log probability of the true class `y` (a probability of 0 counts as 1e-12, so that one
/// confident mistake costs 27.6 nats instead of infinity).
pub fn label_nll(probabilities: &[f32], y: usize) -> f64 {
    -(probabilities[y] as f64).max(1e-12).ln()
}

/// The Brier score of one prediction whose true class is `y`: `sum_k (p_k - 1[k = y])^2`.
pub fn label_brier(probabilities: &[f32], y: usize) -> f64 {
    probabilities.iter().enumerate().map(|(k, v)| (*v as f64 - if k == y { 1.0 } else { 0.0 }).powi(2)).sum()
}

/// The report for predictions of a labelled set.
pub fn classification_report(preds: &[ClassificationPrediction], labels: &[u32]) -> ClassificationReport {
    let n = preds.len().max(1) as f64;
    let mut correct = Vec::with_capacity(preds.len());
    let (mut nll, mut brier, mut ent, mut mi) = (0.0, 0.0, 0.0, 0.0);
    for (p, y) in preds.iter().zip(labels) {
        let y = *y as usize;
        correct.push(p.class == y);
        nll += label_nll(&p.probabilities, y);
        brier += label_brier(&p.probabilities, y);
        ent += p.predictive_entropy as f64;
        mi += p.mutual_information as f64;
    }
    let confidence: Vec<f32> = preds.iter().map(|p| p.probabilities[p.class]).collect();
    let accuracy = correct.iter().filter(|c| **c).count() as f64 / n;
    ClassificationReport {
        examples: preds.len(),
        accuracy,
        error: 1.0 - accuracy,
        nll: nll / n,
        brier: brier / n,
        ece: expected_calibration_error(&confidence, &correct, ECE_BINS),
        mean_predictive_entropy: ent / n,
        mean_mutual_information: mi / n,
        samples: preds.first().map_or(0, |p| p.samples_used),
    }
}

/// Predicts and scores a labelled classification set.
pub fn evaluate_classifier(
    model: &Model,
    data: &Dataset,
    options: &PredictOptions,
    threads: usize,
) -> Result<(ClassificationReport, Vec<ClassificationPrediction>)> {
    let Targets::Classes { labels, .. } = &data.targets else {
        return Err(TrainError::Data("classification metrics need class labels".into()));
    };
    let preds = predict_all(model, data, options, threads)?;
    Ok((classification_report(&preds, labels), preds))
}

/// One confidence bin: its range, mean confidence, accuracy and count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub confidence: f64,
    pub accuracy: f64,
    pub count: usize,
}

/// Equal-width bins over [0, 1] of the predicted confidence (the top probability).
pub fn reliability_bins(confidence: &[f32], correct: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let mut sum_conf = vec![0.0f64; bins];
    let mut hits = vec![0usize; bins];
    let mut count = vec![0usize; bins];
    for (c, ok) in confidence.iter().zip(correct) {
        let b = ((*c as f64 * bins as f64) as usize).min(bins - 1);
        sum_conf[b] += *c as f64;
        hits[b] += *ok as usize;
        count[b] += 1;
    }
    (0..bins)
        .map(|b| {
            let n = count[b].max(1) as f64;
            ReliabilityBin {
                lower: b as f64 / bins as f64,
                upper: (b + 1) as f64 / bins as f64,
                confidence: sum_conf[b] / n,
                accuracy: hits[b] as f64 / n,
                count: count[b],
            }
        })
        .collect()
}

/// `sum_b (n_b / n) |accuracy_b - confidence_b|`.
pub fn expected_calibration_error(confidence: &[f32], correct: &[bool], bins: usize) -> f64 {
    let n = confidence.len().max(1) as f64;
    reliability_bins(confidence, correct, bins)
        .iter()
        .map(|b| b.count as f64 / n * (b.accuracy - b.confidence).abs())
        .sum()
}

/// `-ln N(y; mean, var)`: one output's negative log predictive density under a Gaussian.
pub fn gaussian_nll(y: f64, mean: f64, var: f64) -> f64 {
    0.5 * ((y - mean).powi(2) / var + var.ln() + (2.0 * std::f64::consts::PI).ln())
}

/// Area under the ROC curve for telling `positives` (say, out-of-distribution scores) from `negatives`: the
/// probability that a random positive scores higher than a random negative, ties counting one half.
pub fn auroc(positives: &[f64], negatives: &[f64]) -> f64 {
    auroc_of_ranked(&ranked(positives, negatives), positives.len() as f64, negatives.len() as f64)
}

/// `positives` (labelled true) and `negatives` (false) in one list, by ascending score.
fn ranked(positives: &[f64], negatives: &[f64]) -> Vec<(f64, bool)> {
    let mut all: Vec<(f64, bool)> =
        positives.iter().map(|v| (*v, true)).chain(negatives.iter().map(|v| (*v, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all
}

/// [`auroc`] of a [`ranked`] list of `p` positives and `n` negatives.
fn auroc_of_ranked(ranked: &[(f64, bool)], p: f64, n: f64) -> f64 {
    // Sum of the positives' (average, 1-based) ranks.
    let mut rank_sum = 0.0;
    for group in tie_groups(ranked) {
        let average_rank = (group.start + group.end + 1) as f64 / 2.0;
        rank_sum += average_rank * ranked[group].iter().filter(|e| e.1).count() as f64;
    }
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// How well a score tells out-of-distribution inputs (the positives) from in-distribution ones (the
/// negatives), a higher score meaning "more likely out of distribution".
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OodDetection {
    /// Area under the ROC curve ([`auroc`]).
    pub auroc: f64,
    /// Area under the precision-recall curve with the out-of-distribution inputs as the positive class, as
    /// average precision: the precision at each distinct score, weighted by the recall it adds.
    pub aupr: f64,
    /// The share of in-distribution inputs flagged when the threshold flags 95% of the out-of-distribution
    /// ones (FPR at 95% TPR; ties at the threshold count as flagged).
    pub fpr_at_95_tpr: f64,
}

impl OodDetection {
    /// The three metrics of `positives` (out of distribution) against `negatives`; NaN if either is empty.
    pub fn new(positives: &[f64], negatives: &[f64]) -> Self {
        if positives.is_empty() || negatives.is_empty() {
            return Self { auroc: f64::NAN, aupr: f64::NAN, fpr_at_95_tpr: f64::NAN };
        }
        let all = ranked(positives, negatives);
        let (p, n) = (positives.len() as f64, negatives.len() as f64);
        let (mut tp, mut fp, mut aupr) = (0.0, 0.0, 0.0);
        let mut fpr_at_95_tpr = 1.0;
        // Lowering the threshold from the highest score: every input with one score is flagged at once.
        let groups: Vec<_> = tie_groups(&all).collect();
        for group in groups.into_iter().rev() {
            let size = group.len() as f64;
            let new_tp = all[group].iter().filter(|e| e.1).count() as f64;
            tp += new_tp;
            fp += size - new_tp;
            aupr += new_tp / p * (tp / (tp + fp));
            if tp / p >= 0.95 && fpr_at_95_tpr == 1.0 {
                fpr_at_95_tpr = fp / n;
            }
        }
        Self { auroc: auroc_of_ranked(&all, p, n), aupr, fpr_at_95_tpr }
    }
}

/// The index ranges of equal scores in `sorted` (scores sorted), in order.
fn tie_groups(sorted: &[(f64, bool)]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let start = i;
        while i < sorted.len() && sorted[i].0 == sorted[start].0 {
            i += 1;
        }
        (start < sorted.len()).then_some(start..i)
    })
}

/// Rounds the timed predictions of [`interleaved_latencies`] are split into.
pub const LATENCY_ROUNDS: usize = 15;

/// One configuration timed by [`interleaved_latencies`].
#[derive(Debug, Clone, Copy)]
pub struct LatencyCase<'m> {
    pub model: &'m Model,
    pub options: PredictOptions,
    /// Predictions timed in all, split evenly over the rounds.
    pub reps: usize,
}

/// Wall time of one single-input prediction for each case: its `reps` predictions split into
/// [`LATENCY_ROUNDS`] rounds that visit every case in turn (so the machine's drift hits all alike); the
/// median over rounds of each round's mean time. One warm-up prediction per case first.
pub fn interleaved_latencies(cases: &[LatencyCase], input: &[f32]) -> Result<Vec<Duration>> {
    let mut predictors: Vec<Predictor> = cases.iter().map(|c| Predictor::new(c.model)).collect();
    let mut rounds: Vec<Vec<Duration>> = vec![Vec::with_capacity(LATENCY_ROUNDS); cases.len()];
    let predict = |p: &mut Predictor, case: &LatencyCase, seed: u64| {
        p.predict(input, &case.options.seed(seed)).map_err(|e| TrainError::Data(e.to_string()))
    };
    for (p, case) in predictors.iter_mut().zip(cases) {
        predict(p, case, 0)?;
    }
    for round in 0..LATENCY_ROUNDS {
        for ((p, case), times) in predictors.iter_mut().zip(cases).zip(&mut rounds) {
            let per_round = case.reps.div_ceil(LATENCY_ROUNDS).max(1);
            let start = Instant::now();
            for r in 0..per_round {
                predict(p, case, (round * per_round + r) as u64)?;
            }
            times.push(start.elapsed() / per_round as u32);
        }
    }
    Ok(rounds
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_is_zero_for_calibrated_bins_and_the_gap_otherwise() {
        // 10 predictions at confidence 0.75, 3 of 4 right in expectation: exactly calibrated when 75% right.
        let conf = vec![0.75f32; 8];
        let calibrated = [true, true, true, false, true, true, true, false];
        assert!(expected_calibration_error(&conf, &calibrated, 15) < 1e-9);
        let overconfident = [true, false, true, false, true, false, true, false];
        assert!((expected_calibration_error(&conf, &overconfident, 15) - 0.25).abs() < 1e-6);
    }

    #[test]
    fn gaussian_nll_is_the_log_density() {
        let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        assert!((gaussian_nll(1.0, 1.0, 1.0) - half_ln_2pi).abs() < 1e-15);
        // y two sd from the mean with var 4: ln 2 + 2 + half ln 2 pi.
        assert!((gaussian_nll(5.0, 1.0, 4.0) - (2f64.ln() + 2.0 + half_ln_2pi)).abs() < 1e-12);
    }

    #[test]
    fn ood_detection_metrics_match_their_definitions() {
        // Separated: perfect on all three.
        let d = OodDetection::new(&[3.0, 4.0], &[1.0, 2.0]);
        assert_eq!((d.auroc, d.aupr, d.fpr_at_95_tpr), (1.0, 1.0, 0.0));
        // One score for all: precision is the positives' share everywhere, and every negative is flagged.
        let d = OodDetection::new(&[1.0; 3], &[1.0; 5]);
        assert_eq!((d.auroc, d.aupr, d.fpr_at_95_tpr), (0.5, 3.0 / 8.0, 1.0));
        // By hand, descending: 0.9 P, 0.8 P, 0.7 N, 0.4 P, 0.3 N. Average precision: (1 + 1 + 3/4) / 3;
        // flagging all three positives needs threshold 0.4, which flags the negative at 0.7 too.
        let d = OodDetection::new(&[0.9, 0.8, 0.4], &[0.7, 0.3]);
        assert!((d.aupr - 11.0 / 12.0).abs() < 1e-12, "aupr {}", d.aupr);
        assert_eq!(d.fpr_at_95_tpr, 0.5);
        assert_eq!(d.auroc, auroc(&[0.9, 0.8, 0.4], &[0.7, 0.3]));
        // 95% of 20 positives is 19: the lowest positive may stay unflagged.
        let pos: Vec<f64> = (0..20).map(|i| if i == 0 { 0.0 } else { 10.0 + i as f64 }).collect();
        let d = OodDetection::new(&pos, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(d.fpr_at_95_tpr, 0.0);
        assert!(OodDetection::new(&[], &[1.0]).aupr.is_nan());
    }

    #[test]
    fn auroc_is_one_for_separated_scores_one_half_for_identical_and_counts_pairs() {
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        assert_eq!(auroc(&[1.0; 3], &[1.0; 5]), 0.5);
        // Pairs (p > n): 2 > 1 yes, 2 > 3 no, 4 > 1 yes, 4 > 3 yes -> 3 of 4.
        assert_eq!(auroc(&[2.0, 4.0], &[1.0, 3.0]), 0.75);
    }

    #[test]
    fn report_scores_a_perfect_and_a_wrong_prediction() {
        let p = |probs: Vec<f32>, class| ClassificationPrediction {
            probabilities: probs,
            class,
            predictive_entropy: 0.0,
            expected_entropy: 0.0,
            mutual_information: 0.0,
            samples_used: 1,
        };
        let r = classification_report(&[p(vec![1.0, 0.0], 0), p(vec![0.8, 0.2], 0)], &[0, 1]);
        assert_eq!(r.accuracy, 0.5);
        assert!((r.brier - (0.0 + 2.0 * 0.64) / 2.0).abs() < 1e-6);
        assert!((r.nll - (-(0.2f64).ln() / 2.0)).abs() < 1e-5);
    }
}
