//! The 1-D regression study: the predictive mean with its epistemic and total bands over three times the data's
//! range (for the picture), test RMSE and Gaussian NLL, and how much wider the epistemic band is outside the
//! data than inside it; where the data's E[y | x] is known, how far the mean is from it and the noise floor.

use super::gaussian_nll;
use crate::data::{Dataset, Targets};
use crate::error::{Result, TrainError};
use bnn_runtime::{Model, PredictOptions, RegressionPrediction};
use serde::Serialize;

/// Points of the drawn curves.
const CURVE_POINTS: usize = 300;

/// The study's metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegressionMetrics {
    pub test_rmse: f64,
    pub test_nll: f64,
    /// The training inputs' range.
    pub data_range: [f64; 2],
    /// Mean epistemic standard deviation over that range.
    pub epistemic_sd_inside: f64,
    /// Mean epistemic standard deviation farther than half the range's width outside it.
    pub epistemic_sd_outside: f64,
    pub outside_over_inside: f64,
    /// With a calibrated model: its conformal intervals on the test set, per stored level.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conformal: Vec<IntervalCoverage>,
    /// Where the data's E[y | x] is known: the predictive mean against it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<TruthComparison>,
}

/// The predictive mean against the data's true E[y | x].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthComparison {
    /// Root mean squared distance of the predictive mean from E[y | x] over the data's range.
    pub mean_rmse_inside: f64,
    /// The test RMSE of E[y | x] itself: the noise floor, which no model's mean beats but by the test set's luck.
    pub test_rmse_floor: f64,
}

/// A calibrated regression model's conformal interval at one level on the test set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalCoverage {
    pub level: f32,
    /// Share of test examples whose every output lies inside its interval.
    pub coverage: f64,
    /// Mean width of the intervals (over examples and outputs).
    pub mean_width: f64,
}

/// The curves of the picture, as (x, value) or (x, lower, upper) points.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionCurves {
    /// The training data.
    pub data: Vec<(f64, f64)>,
    pub mean: Vec<(f64, f64)>,
    /// Mean ± 2 epistemic standard deviations.
    pub epistemic: Vec<(f64, f64, f64)>,
    /// Mean ± 2 total standard deviations.
    pub total: Vec<(f64, f64, f64)>,
    /// E[y | x], where known (else empty).
    pub truth: Vec<(f64, f64)>,
}

fn regression(model: &Model, x: &[f32], options: &PredictOptions) -> Result<RegressionPrediction> {
    let p = model.predict(x, options).map_err(|e| TrainError::Data(e.to_string()))?;
    p.as_regression().cloned().ok_or_else(|| TrainError::Data("the model is not a regression model".into()))
}

fn values(d: &Dataset) -> Result<&[f32]> {
    match &d.targets {
        Targets::Values { values, outputs: 1 } => Ok(values),
        _ => Err(TrainError::Data("the regression study needs one regression target".into())),
    }
}

/// Runs the study of a model with one input and one output, with at least 100 Monte-Carlo samples; `truth` is
/// the data's E[y | x] where it is known.
pub fn regression_study(
    model: &Model,
    train: &Dataset,
    test: &Dataset,
    truth: Option<fn(f64) -> f64>,
    samples: usize,
) -> Result<(RegressionMetrics, RegressionCurves)> {
    if model.input_dim() != 1 || train.dim != 1 || test.dim != 1 || train.is_empty() {
        return Err(TrainError::Data("the regression study needs a model and data with one input".into()));
    }
    let (train_y, test_y) = (values(train)?, values(test)?);
    let (lo, hi) =
        train.inputs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x as f64), b.max(*x as f64)));
    let w = hi - lo;
    let options = PredictOptions::default().samples(samples.max(100)).seed(3);
    let mut curves = RegressionCurves {
        data: train.inputs.iter().zip(train_y).map(|(x, y)| (*x as f64, *y as f64)).collect(),
        mean: vec![],
        epistemic: vec![],
        total: vec![],
        truth: vec![],
    };
    let (mut sd_in, mut n_in, mut sd_out, mut n_out, mut se_truth) = (0.0, 0, 0.0, 0, 0.0);
    for k in 0..=CURVE_POINTS {
        let x = lo - w + 3.0 * w * k as f64 / CURVE_POINTS as f64;
        let r = regression(model, &[x as f32], &options)?;
        let (m, e, t) =
            (r.mean[0] as f64, (r.epistemic_variance[0] as f64).sqrt(), (r.total_variance[0] as f64).sqrt());
        curves.mean.push((x, m));
        curves.epistemic.push((x, m - 2.0 * e, m + 2.0 * e));
        curves.total.push((x, m - 2.0 * t, m + 2.0 * t));
        let true_mean = truth.map(|f| f(x));
        curves.truth.extend(true_mean.map(|y| (x, y)));
        if (lo..=hi).contains(&x) {
            sd_in += e;
            n_in += 1;
            se_truth += true_mean.map_or(0.0, |y| (m - y).powi(2));
        } else if x < lo - 0.5 * w || x > hi + 0.5 * w {
            sd_out += e;
            n_out += 1;
        }
    }
    let (mut se, mut nll) = (0.0, 0.0);
    let calibration = model.calibration();
    let levels = calibration.map_or(&[][..], |c| c.intervals.as_slice());
    let (mut covered, mut width) = (vec![0usize; levels.len()], vec![0.0f64; levels.len()]);
    for (i, y) in test_y.iter().enumerate() {
        let r = regression(model, test.input(i), &options.seed(i as u64))?;
        let (m, v) = (r.mean[0] as f64, r.total_variance[0] as f64);
        se += (m - *y as f64).powi(2);
        nll += gaussian_nll(*y as f64, m, v);
        if let Some(c) = calibration {
            for (j, s) in levels.iter().enumerate() {
                let (lower, upper) = c.interval(&r.mean, &r.total_variance, s.level).expect("a stored level");
                covered[j] += (lower[0] <= *y && *y <= upper[0]) as usize;
                width[j] += (upper[0] - lower[0]) as f64;
            }
        }
    }
    let conformal = levels
        .iter()
        .enumerate()
        .map(|(j, s)| IntervalCoverage {
            level: s.level,
            coverage: covered[j] as f64 / test_y.len().max(1) as f64,
            mean_width: width[j] / test_y.len().max(1) as f64,
        })
        .collect();
    let n = test_y.len().max(1) as f64;
    let (sd_in, sd_out) = (sd_in / n_in.max(1) as f64, sd_out / n_out.max(1) as f64);
    let truth = truth.map(|f| {
        let floor: f64 = (0..test.len()).map(|i| (test_y[i] as f64 - f(test.input(i)[0] as f64)).powi(2)).sum();
        TruthComparison {
            mean_rmse_inside: (se_truth / n_in.max(1) as f64).sqrt(),
            test_rmse_floor: (floor / n).sqrt(),
        }
    });
    let metrics = RegressionMetrics {
        test_rmse: (se / n).sqrt(),
        test_nll: nll / n,
        data_range: [lo, hi],
        epistemic_sd_inside: sd_in,
        epistemic_sd_outside: sd_out,
        outside_over_inside: sd_out / sd_in,
        conformal,
        truth,
    };
    Ok((metrics, curves))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_runtime::{BayesianDense, Layer, NoiseModel, Provenance, Task};

    /// y = w x + b with w ~ N(1, 0.1²), b ~ N(0, 0.1²) and noise sd 0.5: the epistemic variance at x is
    /// 0.01 (x² + 1), the total variance that plus 0.25.
    fn line() -> Model {
        let layer = BayesianDense::new(1, 1, vec![1.0], vec![0.1], vec![0.0], vec![0.1]);
        let task = Task::Regression { outputs: 1, noise: NoiseModel::Homoscedastic { sigma: 0.5 } };
        Model::new(vec![Layer::BayesianDense(layer)], task, None, Provenance::default()).unwrap()
    }

    fn on_the_line(xs: &[f32]) -> Dataset {
        Dataset { inputs: xs.to_vec(), dim: 1, targets: Targets::Values { values: xs.to_vec(), outputs: 1 } }
    }

    /// Mean of f over `n` + 1 evenly spaced points of [a, b].
    fn mean_over(a: f64, b: f64, n: usize, f: impl Fn(f64) -> f64) -> f64 {
        (0..=n).map(|k| f(a + (b - a) * k as f64 / n as f64)).sum::<f64>() / (n + 1) as f64
    }

    #[test]
    fn the_study_of_a_bayesian_line_matches_its_closed_form() {
        let xs: Vec<f32> = (0..=20).map(|k| -1.0 + 0.1 * k as f32).collect();
        let (m, curves) = regression_study(&line(), &on_the_line(&xs), &on_the_line(&xs), None, 4000).unwrap();
        assert_eq!(m.data_range, [-1.0, 1.0]);
        let sd = |x: f64| 0.1 * (x * x + 1.0).sqrt();
        // Inside: the 101 curve points on [-1, 1]; outside: those beyond 2 on either side (x in [2, 3]).
        let (inside, outside) = (mean_over(-1.0, 1.0, 100, sd), mean_over(2.0, 3.0, 50, sd));
        assert!((m.epistemic_sd_inside / inside - 1.0).abs() < 0.05, "{} vs {inside}", m.epistemic_sd_inside);
        assert!((m.epistemic_sd_outside / outside - 1.0).abs() < 0.05, "{} vs {outside}", m.epistemic_sd_outside);
        // The mean is the line, up to Monte-Carlo error; the NLL is that of N(x, 0.25 + 0.01 (x² + 1)) at y = x.
        assert!(m.test_rmse < 0.02, "{}", m.test_rmse);
        let nll = xs.iter().map(|x| gaussian_nll(*x as f64, *x as f64, 0.25 + sd(*x as f64).powi(2))).sum::<f64>()
            / xs.len() as f64;
        assert!((m.test_nll - nll).abs() < 0.01, "{} vs {nll}", m.test_nll);
        assert_eq!(curves.mean.len(), CURVE_POINTS + 1);
        assert_eq!(curves.data.len(), xs.len());
        let (x, lo, hi) = curves.total[0];
        assert!(x == -3.0 && (hi - lo) > 4.0 * 0.5, "{x} {lo} {hi}");
        assert!(m.truth.is_none() && curves.truth.is_empty());
    }

    /// The mean's distance from a known E[y | x] and the test noise floor: exact for the line's own mean, 0.5 for a
    /// truth half a unit above it.
    #[test]
    fn the_mean_is_measured_against_a_known_truth() {
        let xs: Vec<f32> = (0..=20).map(|k| -1.0 + 0.1 * k as f32).collect();
        let data = on_the_line(&xs);
        let (m, curves) = regression_study(&line(), &data, &data, Some(|x| x), 4000).unwrap();
        let truth = m.truth.unwrap();
        assert!(truth.mean_rmse_inside < 0.02 && truth.test_rmse_floor == 0.0, "{truth:?}");
        assert_eq!(curves.truth.len(), curves.mean.len());
        assert!(curves.truth.iter().all(|(x, y)| x == y));
        let (m, _) = regression_study(&line(), &data, &data, Some(|x| x + 0.5), 4000).unwrap();
        let truth = m.truth.unwrap();
        assert!((truth.mean_rmse_inside - 0.5).abs() < 0.02, "{truth:?}");
        assert!((truth.test_rmse_floor - 0.5).abs() < 1e-6, "{truth:?}");
    }

    #[test]
    fn data_with_more_than_one_input_is_refused() {
        let two =
            Dataset { inputs: vec![0.0; 4], dim: 2, targets: Targets::Values { values: vec![0.0; 2], outputs: 1 } };
        let err = regression_study(&line(), &two, &two, None, 10).unwrap_err().to_string();
        assert!(err.contains("one input"), "{err}");
    }
}
