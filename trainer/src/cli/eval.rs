//! `bnn eval`: how good and how honest a model's uncertainty is. Classification: accuracy, NLL, Brier, ECE
//! and a reliability diagram; a rotation shift study; out-of-distribution AUROC, AUPR and FPR at 95% TPR by
//! entropy and by mutual information. 1-D regression: RMSE, NLL and a picture of the epistemic and total bands.
//! Markdown on standard output, or with `--json` the JSON object `metrics.json` holds (`ClassificationEval`,
//! `RegressionEval`: their field names are the schema).

use anyhow::Context;
use bnn_runtime::{Model, PredictOptions, Task};
use bnn_trainer::data::shift::{inverted, rotated, uniform_noise};
use bnn_trainer::data::{self, Dataset, Targets};
use bnn_trainer::evaluate::{
    evaluate_classifier, gaussian_nll, reliability_bins, ClassificationReport, OodDetection, ECE_BINS,
};
use bnn_trainer::plot::{line_chart, regression_bands, reliability_diagram, Series};
use bnn_trainer::Recipe;
use clap::Args;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// MNIST directory [default: $BNN_MNIST_DIR]; other data comes from the recipe in the model's provenance.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where the reports and pictures go.
    #[arg(long)]
    out_dir: PathBuf,
    /// Monte-Carlo samples per prediction.
    #[arg(long, default_value_t = 32, value_parser = super::positive_count)]
    samples: usize,
    /// Use only the first N test examples for the main metrics.
    #[arg(long, value_parser = super::positive_count)]
    test_limit: Option<usize>,
    /// Test images per rotation angle and per out-of-distribution set.
    #[arg(long, default_value_t = 2000, value_parser = super::positive_count)]
    shift_limit: usize,
    #[arg(long, default_value_t = 2, value_parser = super::positive_count)]
    threads: usize,
    /// Print the metrics as one JSON object (what `metrics.json` holds) instead of Markdown.
    #[arg(long)]
    json: bool,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out_dir).with_context(|| format!("creating {}", a.out_dir.display()))?;
    let model = Model::load(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
    let recipe_text = model.provenance().recipe.clone();
    let recipe = recipe_text.as_deref().map(Recipe::from_toml).transpose()?;
    let split = match &recipe {
        Some(r) => data::load(&r.data, a.data.as_deref(), r.training.seed)?,
        None => data::load_mnist(&data::mnist_dir(a.data.as_deref(), None)?, Some(1), None)?,
    };
    let options = PredictOptions::default().samples(a.samples);
    match model.task() {
        Task::Classification { .. } => classification(&a, &model, &split.test, &options),
        Task::Regression { .. } => {
            let report =
                regression_picture(&model, &split.train, &split.test, &a.out_dir.join("regression.png"), a.samples)?;
            publish(&a, &report, &report.markdown(), "regression.md")
        }
    }
}

fn limit(d: &Dataset, n: usize) -> Dataset {
    let n = n.min(d.len());
    let targets = match &d.targets {
        Targets::Classes { labels, classes } => Targets::Classes { labels: labels[..n].to_vec(), classes: *classes },
        Targets::Values { values, outputs } => {
            Targets::Values { values: values[..n * outputs].to_vec(), outputs: *outputs }
        }
    };
    Dataset { inputs: d.inputs[..n * d.dim].to_vec(), dim: d.dim, targets }
}

fn classification(a: &EvalArgs, model: &Model, test: &Dataset, options: &PredictOptions) -> anyhow::Result<()> {
    let test = limit(test, a.test_limit.unwrap_or(usize::MAX));
    let (report, preds) = evaluate_classifier(model, &test, options, a.threads)?;
    let Targets::Classes { labels, .. } = &test.targets else { unreachable!("classification data") };
    let confidence: Vec<f32> = preds.iter().map(|p| p.probabilities[p.class]).collect();
    let correct: Vec<bool> = preds.iter().zip(labels).map(|(p, y)| p.class == *y as usize).collect();
    reliability_diagram(
        &a.out_dir.join("reliability.png"),
        "Reliability (MNIST test)",
        &reliability_bins(&confidence, &correct, ECE_BINS),
    )?;
    let mut md = format!(
        "# Evaluation of `{}`\n\nS = {} samples, {} test images.\n\n| metric | value |\n|---|---:|\n| error | {:.2}% |\n| NLL | {:.4} |\n| Brier | {:.4} |\n| ECE (15 bins) | {:.2}% |\n| mean predictive entropy | {:.4} |\n| mean mutual information | {:.4} |\n",
        a.model.display(),
        a.samples,
        report.examples,
        100.0 * report.error,
        report.nll,
        report.brier,
        100.0 * report.ece,
        report.mean_predictive_entropy,
        report.mean_mutual_information
    );

    // Rotation shift study.
    let base = limit(&test, a.shift_limit);
    let mut csv = String::from("angle,accuracy,ece,mean_entropy,mean_mutual_information\n");
    let mut rows: Vec<(f64, ClassificationReport)> = Vec::new();
    for angle in (0..=180).step_by(15) {
        let (r, _) = evaluate_classifier(model, &rotated(&base, angle as f64), options, a.threads)?;
        writeln!(
            csv,
            "{angle},{:.6},{:.6},{:.6},{:.6}",
            r.accuracy, r.ece, r.mean_predictive_entropy, r.mean_mutual_information
        )?;
        rows.push((angle as f64, r));
    }
    std::fs::write(a.out_dir.join("rotation.csv"), &csv)?;
    let series = |name: &str, f: fn(&ClassificationReport) -> f64| Series {
        name: name.into(),
        points: rows.iter().map(|(x, r)| (*x, f(r))).collect(),
    };
    line_chart(
        &a.out_dir.join("rotation.png"),
        "Rotated MNIST: accuracy and uncertainty",
        "rotation (degrees)",
        "value (accuracy, ECE as fractions; entropies in nats)",
        &[
            series("accuracy", |r| r.accuracy),
            series("ECE", |r| r.ece),
            series("mean predictive entropy", |r| r.mean_predictive_entropy),
            series("mean mutual information", |r| r.mean_mutual_information),
        ],
    )?;
    md += "\n## Rotation shift\n\n| angle | accuracy | ECE | mean entropy | mean MI |\n|---:|---:|---:|---:|---:|\n";
    for (angle, r) in &rows {
        writeln!(
            md,
            "| {angle}° | {:.2}% | {:.2}% | {:.4} | {:.4} |",
            100.0 * r.accuracy,
            100.0 * r.ece,
            r.mean_predictive_entropy,
            r.mean_mutual_information
        )?;
    }

    // Out-of-distribution detection: in-distribution = the unrotated test images.
    let (_, id_preds) = evaluate_classifier(model, &base, options, a.threads)?;
    let id_entropy: Vec<f64> = id_preds.iter().map(|p| p.predictive_entropy as f64).collect();
    let id_mi: Vec<f64> = id_preds.iter().map(|p| p.mutual_information as f64).collect();
    md += "\n## Out-of-distribution detection\n\nOut-of-distribution inputs are the positives; AUPR is average \
           precision, FPR95 the share of test images flagged when 95% of the OOD inputs are.\n\n\
           | OOD set | AUROC by entropy | AUROC by MI | AUPR by entropy | AUPR by MI | FPR95 by entropy | FPR95 by MI |\n\
           |---|---:|---:|---:|---:|---:|---:|\n";
    let mut ood = Vec::new();
    let mut ood_csv = String::from(
        "ood_set,auroc_entropy,auroc_mutual_information,aupr_entropy,aupr_mutual_information,\
         fpr95_entropy,fpr95_mutual_information\n",
    );
    for (name, set) in [
        ("rotated 90°", rotated(&base, 90.0)),
        ("inverted", inverted(&base)),
        ("uniform noise", uniform_noise(base.len(), base.dim, 11)),
    ] {
        let (_, preds) = evaluate_classifier(model, &set, options, a.threads)?;
        let ent: Vec<f64> = preds.iter().map(|p| p.predictive_entropy as f64).collect();
        let mi: Vec<f64> = preds.iter().map(|p| p.mutual_information as f64).collect();
        let (e, m) = (OodDetection::new(&ent, &id_entropy), OodDetection::new(&mi, &id_mi));
        writeln!(
            md,
            "| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {:.2}% | {:.2}% |",
            e.auroc,
            m.auroc,
            e.aupr,
            m.aupr,
            100.0 * e.fpr_at_95_tpr,
            100.0 * m.fpr_at_95_tpr
        )?;
        writeln!(
            ood_csv,
            "{name},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6}",
            e.auroc, m.auroc, e.aupr, m.aupr, e.fpr_at_95_tpr, m.fpr_at_95_tpr
        )?;
        ood.push(OodRow { set: name, by_entropy: e, by_mutual_information: m });
    }
    std::fs::write(a.out_dir.join("ood.csv"), ood_csv)?;
    let all = ClassificationEval {
        samples: a.samples,
        test: &report,
        rotation: rows.iter().map(|(angle, report)| RotationRow { angle: *angle, report }).collect(),
        ood,
    };
    publish(a, &all, &md, "eval.md")
}

/// Writes `metrics.json` and the Markdown report `md_name` into the output directory, and prints one of them
/// (the JSON with `--json`).
fn publish(a: &EvalArgs, metrics: &impl serde::Serialize, markdown: &str, md_name: &str) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(metrics)?;
    std::fs::write(a.out_dir.join("metrics.json"), &json)?;
    std::fs::write(a.out_dir.join(md_name), markdown)?;
    if a.json {
        println!("{json}");
    } else {
        print!("{markdown}");
    }
    Ok(())
}

/// The classification evaluation (`bnn eval --json` prints it; `metrics.json` holds it).
#[derive(serde::Serialize)]
struct ClassificationEval<'a> {
    samples: usize,
    /// On the (limited) test set.
    test: &'a ClassificationReport,
    /// On the first `--shift-limit` test images rotated by each angle.
    rotation: Vec<RotationRow<'a>>,
    /// Telling each out-of-distribution set from the test images, by predictive entropy and by mutual information.
    ood: Vec<OodRow>,
}

#[derive(serde::Serialize)]
struct RotationRow<'a> {
    angle: f64,
    #[serde(flatten)]
    report: &'a ClassificationReport,
}

#[derive(serde::Serialize)]
struct OodRow {
    set: &'static str,
    by_entropy: OodDetection,
    by_mutual_information: OodDetection,
}

/// Draws data, predictive mean, epistemic and total ±2 sd bands of a 1-D regression model over twice the
/// data's range on each side, and returns a Markdown report with test RMSE and NLL and the epistemic
/// standard deviation inside versus outside the data.
pub fn regression_picture(
    model: &Model,
    train: &Dataset,
    test: &Dataset,
    path: &Path,
    samples: usize,
) -> anyhow::Result<RegressionEval> {
    anyhow::ensure!(model.input_dim() == 1, "the regression picture needs a model with one input");
    let Targets::Values { values, .. } = &train.targets else { anyhow::bail!("regression data expected") };
    let (lo, hi) =
        train.inputs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x as f64), b.max(*x as f64)));
    let w = hi - lo;
    let options = PredictOptions::default().samples(samples.max(100)).seed(3);
    let (mut mean, mut epi, mut total) = (vec![], vec![], vec![]);
    let (mut sd_in, mut n_in, mut sd_out, mut n_out) = (0.0, 0, 0.0, 0);
    for k in 0..=300 {
        let x = lo - w + 3.0 * w * k as f64 / 300.0;
        let p = model.predict(&[x as f32], &options)?;
        let r = p.as_regression().expect("regression model");
        let (m, e, t) =
            (r.mean[0] as f64, (r.epistemic_variance[0] as f64).sqrt(), (r.total_variance[0] as f64).sqrt());
        mean.push((x, m));
        epi.push((x, m - 2.0 * e, m + 2.0 * e));
        total.push((x, m - 2.0 * t, m + 2.0 * t));
        if (lo..=hi).contains(&x) {
            sd_in += e;
            n_in += 1;
        } else if x < lo - 0.5 * w || x > hi + 0.5 * w {
            sd_out += e;
            n_out += 1;
        }
    }
    let points: Vec<(f64, f64)> = train.inputs.iter().zip(values).map(|(x, y)| (*x as f64, *y as f64)).collect();
    regression_bands(
        path,
        "Bayes by Backprop regression: mean, epistemic and total uncertainty",
        &points,
        &mean,
        &epi,
        &total,
    )?;
    let Targets::Values { values: ty, .. } = &test.targets else { anyhow::bail!("regression data expected") };
    let (mut se, mut nll) = (0.0, 0.0);
    for (i, y) in ty.iter().enumerate() {
        let p = model.predict(test.input(i), &options.seed(i as u64))?;
        let r = p.as_regression().expect("regression model");
        let (m, v) = (r.mean[0] as f64, r.total_variance[0] as f64);
        se += (m - *y as f64).powi(2);
        nll += gaussian_nll(*y as f64, m, v);
    }
    let n = ty.len().max(1) as f64;
    let (sd_in, sd_out) = (sd_in / n_in.max(1) as f64, sd_out / n_out.max(1) as f64);
    Ok(RegressionEval {
        test_rmse: (se / n).sqrt(),
        test_nll: nll / n,
        data_range: [lo, hi],
        epistemic_sd_inside: sd_in,
        epistemic_sd_outside: sd_out,
        outside_over_inside: sd_out / sd_in,
        picture: path.display().to_string(),
    })
}

/// The 1-D regression evaluation (`bnn eval --json` prints it; `metrics.json` holds it).
#[derive(serde::Serialize)]
pub struct RegressionEval {
    pub test_rmse: f64,
    pub test_nll: f64,
    /// The training inputs' range.
    pub data_range: [f64; 2],
    /// Mean epistemic standard deviation over that range.
    pub epistemic_sd_inside: f64,
    /// Mean epistemic standard deviation farther than half the range's width outside it.
    pub epistemic_sd_outside: f64,
    pub outside_over_inside: f64,
    pub picture: String,
}

impl RegressionEval {
    pub fn markdown(&self) -> String {
        let [lo, hi] = self.data_range;
        format!(
            "| metric | value |\n|---|---:|\n| test RMSE | {:.4} |\n| test NLL | {:.4} |\n| mean epistemic sd inside the data [{lo:.2}, {hi:.2}] | {:.4} |\n| mean epistemic sd farther than half the data's width outside it | {:.4} |\n| ratio outside / inside | {:.1} |\n\nPicture: `{}`\n",
            self.test_rmse,
            self.test_nll,
            self.epistemic_sd_inside,
            self.epistemic_sd_outside,
            self.outside_over_inside,
            self.picture
        )
    }
}
