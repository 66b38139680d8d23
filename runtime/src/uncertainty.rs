//! What a prediction returns, and how S Monte-Carlo outputs become a predictive mean with its uncertainty
//! split into aleatoric and epistemic parts.
//!
//! Classification: with `p_s` the softmax of sample `s` and `p̄` their mean, the predictive entropy
//! `H(p̄)` (total) splits into the expected entropy `mean_s H(p_s)` (aleatoric) and the mutual information
//! `H(p̄) - mean_s H(p_s)` (epistemic). Regression: the predictive distribution is the mixture of the S
//! sampled Gaussians, whose variance is exactly the mean of the noise variances (aleatoric) plus the
//! population variance of the sampled means (epistemic). In both cases the reported total is computed as
//! aleatoric + epistemic, so the identity holds exactly in f32.

use crate::error::PredictError;
use crate::kernels::{entropies, softmax_entropies, Isa};
use crate::prelude::*;
use crate::quantile::normal_quantile;
use crate::task::{heteroscedastic_scale, NoiseModel, Task};

/// A prediction for one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    Classification(ClassificationPrediction),
    Regression(RegressionPrediction),
}

impl Prediction {
    /// How many Monte-Carlo samples went into it.
    pub fn samples_used(&self) -> usize {
        match self {
            Prediction::Classification(c) => c.samples_used,
            Prediction::Regression(r) => r.samples_used,
        }
    }
    pub fn as_classification(&self) -> Option<&ClassificationPrediction> {
        match self {
            Prediction::Classification(c) => Some(c),
            Prediction::Regression(_) => None,
        }
    }
    pub fn as_regression(&self) -> Option<&RegressionPrediction> {
        match self {
            Prediction::Regression(r) => Some(r),
            Prediction::Classification(_) => None,
        }
    }
}

/// Classification with its uncertainty, entropies in nats.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationPrediction {
    /// Mean of the sampled class probabilities (the predictive distribution).
    pub probabilities: Vec<f32>,
    /// Index of the most probable class (the first one on ties).
    pub class: usize,
    /// Total uncertainty `H(p̄)` = `expected_entropy + mutual_information`.
    pub predictive_entropy: f32,
    /// Aleatoric part: the mean entropy of the sampled distributions.
    pub expected_entropy: f32,
    /// Epistemic part: the mutual information between the prediction and the weights.
    pub mutual_information: f32,
    pub samples_used: usize,
}

/// Regression with its uncertainty, one entry per output.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionPrediction {
    /// Predictive mean.
    pub mean: Vec<f32>,
    /// Data noise: the fixed noise variance, or the mean of the predicted noise variances.
    pub aleatoric_variance: Vec<f32>,
    /// Model uncertainty: the variance of the sampled means.
    pub epistemic_variance: Vec<f32>,
    /// `aleatoric_variance + epistemic_variance`.
    pub total_variance: Vec<f32>,
    /// Lower end of the central interval `mean ± z * sqrt(total_variance)`.
    pub lower: Vec<f32>,
    /// Upper end of that interval.
    pub upper: Vec<f32>,
    /// Probability mass of the interval (for example 0.95).
    pub interval_level: f32,
    pub samples_used: usize,
}

/// Running statistics over Monte-Carlo outputs, sized once per model.
#[derive(Debug, Clone)]
pub(crate) struct Accumulator {
    task: Task,
    n: usize,
    /// Welford running mean and sum of squared deviations of the per-sample quantity (probabilities or means).
    mean: Vec<f64>,
    m2: Vec<f64>,
    /// Classification: mean of the sample entropies (one entry). Regression: mean noise variance per output.
    aleatoric_mean: Vec<f64>,
    /// Classification scratch for a group of samples: probabilities, entropy terms, entropies.
    probs: Vec<f64>,
    terms: Vec<f64>,
    entropies: Vec<f64>,
    /// The instruction set of the softmax and entropy kernels.
    isa: Isa,
}

impl Accumulator {
    /// Statistics for `task`, taking up to `group` samples at a time, computed on `isa`.
    pub(crate) fn new(task: &Task, group: usize, isa: Isa) -> Self {
        let k = match task {
            Task::Classification { classes, .. } => *classes,
            Task::Regression { outputs, .. } => *outputs,
        };
        let classification = matches!(task, Task::Classification { .. });
        let scratch = if classification { group.max(1) * k } else { 0 };
        Self {
            task: task.clone(),
            n: 0,
            mean: vec![0.0; k],
            m2: vec![0.0; k],
            aleatoric_mean: vec![0.0; if classification { 1 } else { k }],
            probs: vec![0.0; scratch],
            terms: vec![0.0; scratch],
            entropies: vec![0.0; if classification { group.max(1) } else { 0 }],
            isa,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.n = 0;
        self.mean.fill(0.0);
        self.m2.fill(0.0);
        self.aleatoric_mean.fill(0.0);
    }

    /// Adds a group of samples of the network's head output, sample after sample (`heads` is
    /// `[n × head width]`, `n` at most the group size of [`Accumulator::new`]).
    pub(crate) fn add(&mut self, heads: &[f32]) -> Result<(), PredictError> {
        if heads.iter().any(|v| !v.is_finite()) {
            return Err(PredictError::NonFiniteOutput);
        }
        match self.task {
            Task::Classification { classes: k, .. } => {
                let n = heads.len() / k;
                let probs = &mut self.probs[..n * k];
                softmax_entropies(self.isa, heads, k, probs, &mut self.terms, &mut self.entropies[..n]);
                for (p, h) in probs.chunks_exact(k).zip(&self.entropies) {
                    self.n += 1;
                    running_mean(self.n, &mut self.aleatoric_mean[0], *h);
                    welford(self.n, &mut self.mean, &mut self.m2, p.iter().copied());
                }
            }
            Task::Regression { outputs, noise } => {
                for head in heads.chunks_exact(self.task.head_width()) {
                    self.n += 1;
                    let (means, raw_scales) = head.split_at(outputs);
                    welford(self.n, &mut self.mean, &mut self.m2, means.iter().map(|v| *v as f64));
                    for (k, a) in self.aleatoric_mean.iter_mut().enumerate() {
                        let sd = match noise {
                            NoiseModel::Homoscedastic { sigma } => sigma,
                            NoiseModel::Heteroscedastic => heteroscedastic_scale(raw_scales[k]),
                        } as f64;
                        running_mean(self.n, a, sd * sd);
                    }
                }
            }
        }
        Ok(())
    }

    /// The largest Monte-Carlo standard error of the predictive mean over its entries
    /// (`sqrt(sample variance / n)`); infinite below two samples.
    pub(crate) fn max_standard_error(&self) -> f64 {
        if self.n < 2 {
            return f64::INFINITY;
        }
        let n = self.n as f64;
        self.m2.iter().map(|m2| crate::math::sqrt(m2 / (n - 1.0) / n)).fold(0.0, f64::max)
    }

    pub(crate) fn finish(&mut self, interval_level: f32) -> Prediction {
        let n = self.n as f64;
        match self.task {
            Task::Classification { .. } => {
                let expected = self.aleatoric_mean[0];
                let mut total = [0.0];
                // The function that gave each sample's entropy, so that identical samples give MI = 0; its
                // scratch is the group's (at least `k` long).
                let k = self.mean.len();
                entropies(&self.mean, k, &mut self.terms[..k], &mut total);
                let total = total[0];
                // Mutual information is >= 0 by Jensen; clamp the rounding error of the subtraction.
                let mi = (total - expected).max(0.0);
                let (expected, mi) = (expected as f32, mi as f32);
                let probabilities: Vec<f32> = self.mean.iter().map(|p| *p as f32).collect();
                let class = argmax(&probabilities);
                Prediction::Classification(ClassificationPrediction {
                    probabilities,
                    class,
                    predictive_entropy: expected + mi,
                    expected_entropy: expected,
                    mutual_information: mi,
                    samples_used: self.n,
                })
            }
            Task::Regression { .. } => {
                let z = normal_quantile(0.5 + interval_level as f64 / 2.0) as f32;
                let mean: Vec<f32> = self.mean.iter().map(|m| *m as f32).collect();
                let aleatoric: Vec<f32> = self.aleatoric_mean.iter().map(|a| *a as f32).collect();
                let epistemic: Vec<f32> = self.m2.iter().map(|m2| (m2 / n) as f32).collect();
                let total: Vec<f32> = aleatoric.iter().zip(&epistemic).map(|(a, e)| a + e).collect();
                let half: Vec<f32> = total.iter().map(|t| z * crate::math::sqrtf(*t)).collect();
                Prediction::Regression(RegressionPrediction {
                    lower: mean.iter().zip(&half).map(|(m, h)| m - h).collect(),
                    upper: mean.iter().zip(&half).map(|(m, h)| m + h).collect(),
                    mean,
                    aleatoric_variance: aleatoric,
                    epistemic_variance: epistemic,
                    total_variance: total,
                    interval_level,
                    samples_used: self.n,
                })
            }
        }
    }
}

/// `mean += (x - mean) / n`: the mean of the first `n` values, exactly `x` while every value is `x` (a sum
/// divided by `n` can be off in the last bit, which would show as a tiny non-zero mutual information).
fn running_mean(n: usize, mean: &mut f64, x: f64) {
    *mean += (x - *mean) / n as f64;
}

fn welford(n: usize, mean: &mut [f64], m2: &mut [f64], values: impl Iterator<Item = f64>) {
    for ((m, s), x) in mean.iter_mut().zip(m2.iter_mut()).zip(values) {
        let delta = x - *m;
        running_mean(n, m, x);
        *s += delta * (x - *m);
    }
}

fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifier(k: usize) -> Accumulator {
        Accumulator::new(&Task::Classification { classes: k, labels: vec![] }, 4, Isa::detected())
    }

    #[test]
    fn identical_samples_have_zero_mutual_information() {
        let mut acc = classifier(3);
        for _ in 0..5 {
            acc.add(&[1.0, 2.0, 0.5]).unwrap();
        }
        let p = acc.finish(0.95);
        let c = p.as_classification().unwrap();
        assert_eq!(c.mutual_information, 0.0);
        assert_eq!(c.predictive_entropy, c.expected_entropy);
        assert_eq!(c.class, 1);
    }

    #[test]
    fn disagreeing_confident_samples_are_all_epistemic() {
        // Two samples each certain of a different class: p̄ = (1/2, 1/2), H = ln 2, expected entropy ~ 0.
        let mut acc = classifier(2);
        acc.add(&[100.0, -100.0]).unwrap();
        acc.add(&[-100.0, 100.0]).unwrap();
        let c = acc.finish(0.95).as_classification().unwrap().clone();
        assert!(c.expected_entropy < 1e-6);
        assert!((c.mutual_information - std::f32::consts::LN_2).abs() < 1e-6);
    }

    #[test]
    fn regression_variance_is_the_mixture_variance() {
        let mut acc = Accumulator::new(
            &Task::Regression { outputs: 1, noise: NoiseModel::Homoscedastic { sigma: 0.5 } },
            1,
            Isa::detected(),
        );
        for m in [1.0f32, 3.0] {
            acc.add(&[m]).unwrap();
        }
        let r = acc.finish(0.95).as_regression().unwrap().clone();
        assert_eq!(r.mean, vec![2.0]);
        assert_eq!(r.epistemic_variance, vec![1.0]);
        assert_eq!(r.aleatoric_variance, vec![0.25]);
        assert_eq!(r.total_variance, vec![1.25]);
        assert!((r.upper[0] - (2.0 + 1.959_964 * 1.25f32.sqrt())).abs() < 1e-5);
    }

    #[test]
    fn non_finite_outputs_are_an_error() {
        let mut acc = classifier(2);
        assert_eq!(acc.add(&[f32::NAN, 0.0]), Err(PredictError::NonFiniteOutput));
    }
}
