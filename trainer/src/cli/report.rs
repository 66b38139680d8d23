//! How `bnn` shows results as text: one prediction ([`describe`]), and the 1-D regression evaluation that
//! `bnn eval` and `bnn demo` print ([`regression_picture`]).

use bnn_runtime::{Model, Prediction};
use bnn_trainer::data::Dataset;
use bnn_trainer::evaluate::regression::{regression_study, RegressionMetrics};
use bnn_trainer::plot::regression_bands;
use std::path::Path;

/// A readable report of a prediction.
pub fn describe(model: &Model, p: &Prediction) -> String {
    match p {
        Prediction::Classification(c) => {
            let labels = match model.task() {
                bnn_runtime::Task::Classification { labels, .. } => labels.clone(),
                _ => vec![],
            };
            let name = |k: usize| labels.get(k).cloned().unwrap_or_else(|| k.to_string());
            let mut ranked: Vec<usize> = (0..c.probabilities.len()).collect();
            ranked.sort_by(|a, b| c.probabilities[*b].total_cmp(&c.probabilities[*a]));
            let top: Vec<String> =
                ranked.iter().take(3).map(|k| format!("{}: {:.4}", name(*k), c.probabilities[*k])).collect();
            format!(
                "class            {}\nprobabilities    {}\npredictive entropy (total)      {:.4} nats\nexpected entropy (aleatoric)    {:.4} nats\nmutual information (epistemic)  {:.4} nats\nsamples used     {}\n",
                name(c.class),
                top.join(", "),
                c.predictive_entropy,
                c.expected_entropy,
                c.mutual_information,
                c.samples_used
            )
        }
        Prediction::Regression(r) => {
            let mut s = String::new();
            for k in 0..r.mean.len() {
                s += &format!(
                    "output {k}: mean {:.4}  aleatoric var {:.5}  epistemic var {:.5}  total var {:.5}  {:.0}% interval [{:.4}, {:.4}]\n",
                    r.mean[k],
                    r.aleatoric_variance[k],
                    r.epistemic_variance[k],
                    r.total_variance[k],
                    100.0 * r.interval_level,
                    r.lower[k],
                    r.upper[k]
                );
            }
            s + &format!("samples used {}\n", r.samples_used)
        }
    }
}

/// Draws data, predictive mean, epistemic and total ±2 sd bands of a 1-D regression model over twice the
/// data's range on each side into `path`, and returns the study's metrics.
pub fn regression_picture(
    model: &Model,
    train: &Dataset,
    test: &Dataset,
    truth: Option<fn(f64) -> f64>,
    path: &Path,
    samples: usize,
) -> anyhow::Result<RegressionEval> {
    let (metrics, curves) = regression_study(model, train, test, truth, samples)?;
    regression_bands(
        path,
        "Bayes by Backprop regression: mean, epistemic and total uncertainty",
        &curves.data,
        &curves.mean,
        &curves.epistemic,
        &curves.total,
        &curves.truth,
    )?;
    Ok(RegressionEval { metrics, picture: path.display().to_string() })
}

/// The 1-D regression evaluation (`bnn eval --json` prints it; `metrics.json` holds it).
#[derive(serde::Serialize)]
pub struct RegressionEval {
    #[serde(flatten)]
    metrics: RegressionMetrics,
    picture: String,
}

impl RegressionEval {
    pub fn markdown(&self) -> String {
        let m = &self.metrics;
        let [lo, hi] = m.data_range;
        let conformal: String = m
            .conformal
            .iter()
            .map(|c| {
                format!(
                    "| conformal interval at {:.0}%: coverage, mean width | {:.2}%, {:.4} |\n",
                    100.0 * c.level,
                    100.0 * c.coverage,
                    c.mean_width
                )
            })
            .collect();
        let truth = m.truth.as_ref().map_or(String::new(), |t| {
            format!(
                "| test RMSE of the true E[y \\| x] (the noise floor) | {:.4} |\n| RMSE of the mean from E[y \\| x] inside the data | {:.4} |\n",
                t.test_rmse_floor, t.mean_rmse_inside
            )
        });
        format!(
            "| metric | value |\n|---|---:|\n| test RMSE | {:.4} |\n| test NLL | {:.4} |\n| mean epistemic sd inside the data [{lo:.2}, {hi:.2}] | {:.4} |\n| mean epistemic sd farther than half the data's width outside it | {:.4} |\n| ratio outside / inside | {:.1} |\n{truth}{conformal}\nPicture: `{}`\n",
            m.test_rmse,
            m.test_nll,
            m.epistemic_sd_inside,
            m.epistemic_sd_outside,
            m.outside_over_inside,
            self.picture
        )
    }
}
