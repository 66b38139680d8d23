//! `bnn eval`: how good and how honest a model's uncertainty is. Classification: accuracy, NLL, Brier, ECE
//! and a reliability diagram; a rotation shift study; out-of-distribution AUROC, AUPR and FPR at 95% TPR by
//! entropy and by mutual information, and the AUROC per class of the images a set was made from. 1-D
//! regression: RMSE, NLL and a picture of the epistemic and total bands.
//! Markdown on standard output, or with `--json` the JSON object `metrics.json` holds (`ClassificationEval`,
//! `RegressionEval`: their field names are the schema). `--split validation` measures all of it on the examples
//! the model's recipe held out of training instead of the test set, for choosing between models.

use anyhow::Context;
use bnn_runtime::{Model, PredictOptions, Task};
use bnn_trainer::data::{self, Dataset, Targets};
use bnn_trainer::evaluate::decisions::{decision_report, risk_coverage, DecisionReport};
use bnn_trainer::evaluate::shift::{shift_study, OodRow, ShiftStudy};
use bnn_trainer::evaluate::{evaluate_classifier, reliability_bins, ClassificationReport, ECE_BINS};
use bnn_trainer::plot::{line_chart, reliability_diagram, Series};
use bnn_trainer::train::recipe_data;
use bnn_trainer::Recipe;
use clap::{Args, ValueEnum};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// Where the reports and pictures go.
    #[arg(long)]
    out_dir: PathBuf,
    /// Use only the first N test examples for the main metrics.
    #[arg(long, value_parser = super::positive_count)]
    test_limit: Option<usize>,
    #[command(flatten)]
    m: Measurement,
}

/// How `bnn eval` and `bnn compare` measure a model: on which images, with how many samples, on how many threads.
#[derive(Args)]
pub struct Measurement {
    /// MNIST directory [default: $BNN_MNIST_DIR]; other data comes from the recipe in the model's provenance.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The examples to measure: the test set, or the validation set the model's recipe held out of training
    /// (`training.validation`), so that a choice between models never looks at the test set. A model calibrated
    /// by `bnn calibrate` was fitted on the validation set: its calibration measured there is optimistic.
    #[arg(long, value_enum, default_value_t = EvalSplit::Test)]
    pub split: EvalSplit,
    /// Monte-Carlo samples per prediction.
    #[arg(long, default_value_t = 32, value_parser = super::positive_count)]
    pub samples: usize,
    /// Images per out-of-distribution set, made from the first N test images and told from them (and for
    /// `eval`, test images per rotation angle).
    #[arg(long, default_value_t = 2000, value_parser = super::positive_count)]
    pub shift_limit: usize,
    #[arg(long, default_value_t = 2, value_parser = super::positive_count)]
    pub threads: usize,
    /// Print the results as one JSON object (for `eval`, what `metrics.json` holds) instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

/// The examples `bnn eval` and `bnn compare` measure.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalSplit {
    Test,
    Validation,
}

impl EvalSplit {
    pub fn images(self) -> &'static str {
        match self {
            EvalSplit::Test => "test images",
            EvalSplit::Validation => "validation images (held out of training)",
        }
    }
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out_dir).with_context(|| format!("creating {}", a.out_dir.display()))?;
    let model = Model::load(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
    let (recipe, split) = model_data(&model, a.m.data.as_deref(), a.m.split)?;
    let options = PredictOptions::default().samples(a.m.samples);
    match model.task() {
        Task::Classification { .. } => classification(&a, &model, &split.test, &options),
        Task::Regression { .. } => {
            let report = super::report::regression_picture(
                &model,
                &split.train,
                &split.test,
                recipe.as_ref().and_then(|r| data::conditional_mean(&r.data)),
                &a.out_dir.join("regression.png"),
                a.m.samples,
            )?;
            publish(&a, &report, &report.markdown(), "regression.md")
        }
    }
}

/// The recipe a model records (if any) and its data: the training examples, and as `test` the examples `split`
/// names — the test set, or the validation examples its recipe held out of training. Without a recipe, MNIST
/// from `dir` (or `$BNN_MNIST_DIR`).
pub fn model_data(
    model: &Model,
    dir: Option<&std::path::Path>,
    split: EvalSplit,
) -> anyhow::Result<(Option<Recipe>, data::Split)> {
    let recipe = model.provenance().recipe.as_deref().map(Recipe::from_toml).transpose()?;
    let data = match (&recipe, split) {
        (Some(r), EvalSplit::Test) => data::load(&r.data, dir, r.training.seed)?,
        (Some(r), EvalSplit::Validation) => {
            let (split, validation) = recipe_data(r, dir)?;
            let validation = validation.context(
                "the model's recipe held out no validation set (training.validation = 0): every training example \
                 was seen in training",
            )?;
            data::Split { train: split.train, test: validation }
        }
        (None, EvalSplit::Test) => data::load_mnist(&data::mnist_dir(dir, None)?, Some(1), None)?,
        (None, EvalSplit::Validation) => {
            anyhow::bail!("--split validation needs the model's recipe, and the file records none")
        }
    };
    Ok((recipe, data))
}

fn classification(a: &EvalArgs, model: &Model, test: &Dataset, options: &PredictOptions) -> anyhow::Result<()> {
    let test = test.first(a.test_limit.unwrap_or(usize::MAX));
    let (report, preds) = evaluate_classifier(model, &test, options, a.m.threads)?;
    let Targets::Classes { labels, .. } = &test.targets else { unreachable!("classification data") };
    let confidence: Vec<f32> = preds.iter().map(|p| p.probabilities[p.class]).collect();
    let correct: Vec<bool> = preds.iter().zip(labels).map(|(p, y)| p.class == *y as usize).collect();
    reliability_diagram(
        &a.out_dir.join("reliability.png"),
        "Reliability (MNIST test)",
        &reliability_bins(&confidence, &correct, ECE_BINS),
    )?;
    let mut md = format!(
        "# Evaluation of `{}`\n\nS = {} samples, {} {}.\n\n| metric | value |\n|---|---:|\n| error | {:.2}% |\n| NLL | {:.4} |\n| Brier | {:.4} |\n| ECE (15 bins) | {:.2}% |\n| mean predictive entropy | {:.4} |\n| mean mutual information | {:.4} |\n",
        a.model.display(),
        a.m.samples,
        report.examples,
        a.m.split.images(),
        100.0 * report.error,
        report.nll,
        report.brier,
        100.0 * report.ece,
        report.mean_predictive_entropy,
        report.mean_mutual_information
    );
    let decisions = match model.calibration() {
        Some(c) => {
            let report = decision_report(&preds, labels, c);
            md += &decisions_markdown(&report);
            let raw: Vec<f32> = preds.iter().map(|p| p.probabilities[p.class]).collect();
            let calibrated: Vec<f32> =
                preds.iter().map(|p| bnn_runtime::confidence(&c.calibrated(&p.probabilities))).collect();
            let curve = |name: &str, confidence: &[f32]| Series {
                name: name.into(),
                points: risk_coverage(confidence, &correct),
            };
            line_chart(
                &a.out_dir.join("risk_coverage.png"),
                "Selective prediction: error among the most confident inputs",
                "coverage (share answered)",
                "risk (error among the answered)",
                &[curve("calibrated confidence", &calibrated), curve("raw confidence", &raw)],
            )?;
            Some(report)
        }
        None => None,
    };
    let shift = shift_study(model, &test.first(a.m.shift_limit), options, a.m.threads)?;

    let mut csv = String::from("angle,accuracy,ece,mean_entropy,mean_mutual_information\n");
    md += "\n## Rotation shift\n\n| angle | accuracy | ECE | mean entropy | mean MI |\n|---:|---:|---:|---:|---:|\n";
    for row in &shift.rotation {
        let r = &row.report;
        writeln!(
            csv,
            "{},{:.6},{:.6},{:.6},{:.6}",
            row.angle, r.accuracy, r.ece, r.mean_predictive_entropy, r.mean_mutual_information
        )?;
        writeln!(
            md,
            "| {}° | {:.2}% | {:.2}% | {:.4} | {:.4} |",
            row.angle,
            100.0 * r.accuracy,
            100.0 * r.ece,
            r.mean_predictive_entropy,
            r.mean_mutual_information
        )?;
    }
    std::fs::write(a.out_dir.join("rotation.csv"), &csv)?;
    let series = |name: &str, f: fn(&ClassificationReport) -> f64| Series {
        name: name.into(),
        points: shift.rotation.iter().map(|row| (row.angle, f(&row.report))).collect(),
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

    md += "\n## Out-of-distribution detection\n\nOut-of-distribution inputs are the positives; AUPR is average \
           precision, FPR95 the share of test images flagged when 95% of the OOD inputs are.\n\n\
           | OOD set | AUROC by entropy | AUROC by MI | AUPR by entropy | AUPR by MI | FPR95 by entropy | FPR95 by MI |\n\
           |---|---:|---:|---:|---:|---:|---:|\n";
    let mut ood_csv = String::from(
        "ood_set,auroc_entropy,auroc_mutual_information,aupr_entropy,aupr_mutual_information,\
         fpr95_entropy,fpr95_mutual_information\n",
    );
    for row in &shift.ood {
        let (e, m) = (&row.by_entropy, &row.by_mutual_information);
        writeln!(
            md,
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.2}% | {:.2}% |",
            row.set,
            e.auroc,
            m.auroc,
            e.aupr,
            m.aupr,
            100.0 * e.fpr_at_95_tpr,
            100.0 * m.fpr_at_95_tpr
        )?;
        writeln!(
            ood_csv,
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6}",
            row.set, e.auroc, m.auroc, e.aupr, m.aupr, e.fpr_at_95_tpr, m.fpr_at_95_tpr
        )?;
    }
    std::fs::write(a.out_dir.join("ood.csv"), ood_csv)?;
    md += &by_class_markdown(&shift.ood);
    if shift.ood.iter().any(|row| !row.conformal.is_empty()) {
        md += "\nConformal sets on the out-of-distribution inputs (a singleton is a confident answer about an input \
               that has none):\n\n| OOD set | level | singletons | empty sets | mean size |\n|---|---:|---:|---:|---:|\n";
        for row in &shift.ood {
            for s in &row.conformal {
                writeln!(
                    md,
                    "| {} | {:.0}% | {:.2}% | {:.2}% | {:.3} |",
                    row.set,
                    100.0 * s.level,
                    100.0 * s.singleton,
                    100.0 * s.empty,
                    s.mean_size
                )?;
            }
        }
    }
    publish(a, &ClassificationEval { samples: a.m.samples, test: &report, decisions, shift: &shift }, &md, "eval.md")
}

/// The table of AUROC by mutual information per class of the images each out-of-distribution set was made
/// from (empty if no set has one).
fn by_class_markdown(ood: &[OodRow]) -> String {
    let Some(classes) = ood.iter().map(|row| row.auroc_mi_by_class.len()).max().filter(|c| *c > 0) else {
        return String::new();
    };
    let mut md = String::from(
        "\nAUROC by MI of the inputs made from each class's test images alone (against all the test images): \
         which classes a transformation leaves looking like digits.\n\n| OOD set |",
    );
    md += &(0..classes).map(|k| format!(" {k} |")).collect::<String>();
    md += &format!("\n|---|{}\n", "---:|".repeat(classes));
    for row in ood.iter().filter(|row| !row.auroc_mi_by_class.is_empty()) {
        md += &format!("| {} |", row.set);
        md += &row.auroc_mi_by_class.iter().map(|a| format!(" {a:.4} |")).collect::<String>();
        md += "\n";
    }
    md
}

/// Writes `metrics.json` and the Markdown report `md_name` into the output directory, and prints one of them
/// (the JSON with `--json`).
fn publish(a: &EvalArgs, metrics: &impl serde::Serialize, markdown: &str, md_name: &str) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(metrics)?;
    std::fs::write(a.out_dir.join("metrics.json"), &json)?;
    std::fs::write(a.out_dir.join(md_name), markdown)?;
    if a.m.json {
        println!("{json}");
    } else {
        print!("{markdown}");
    }
    Ok(())
}

/// The classification evaluation (`bnn eval --json` prints it; `metrics.json` holds it): `samples`, `test`,
/// and the shift study's `rotation` (on the first `--shift-limit` test images rotated by each angle) and `ood`
/// (telling each out-of-distribution set from those images, by predictive entropy and by mutual information).
#[derive(serde::Serialize)]
struct ClassificationEval<'a> {
    samples: usize,
    /// On the (limited) test set.
    test: &'a ClassificationReport,
    /// With a calibrated model: its conformal sets, temperature and abstention on the test set.
    #[serde(skip_serializing_if = "Option::is_none")]
    decisions: Option<DecisionReport>,
    #[serde(flatten)]
    shift: &'a ShiftStudy,
}

/// The Markdown section of a calibrated model's decisions.
fn decisions_markdown(r: &DecisionReport) -> String {
    let mut md = format!(
        "\n## Decisions (calibrated model)\n\nTemperature {:.4}: ECE {:.2}% before, {:.2}% after; NLL {:.4} before, \
         {:.4} after. Risk–coverage: AURC {:.5}, error among the 80% most confident {:.2}% (`risk_coverage.png`).\n\n\
         | level | coverage | mean set size | empty sets | singletons |\n|---:|---:|---:|---:|---:|\n",
        r.temperature,
        100.0 * r.ece_before,
        100.0 * r.ece_after,
        r.nll_before,
        r.nll_after,
        r.aurc,
        100.0 * r.selective_risk_at_80
    );
    for s in &r.sets {
        md += &format!(
            "| {:.0}% | {:.2}% | {:.3} | {:.2}% | {:.2}% |\n",
            100.0 * s.level,
            100.0 * s.coverage.unwrap_or(f64::NAN),
            s.mean_size,
            100.0 * s.empty,
            100.0 * s.singleton
        );
    }
    if let Some(x) = &r.abstention {
        md += &format!(
            "\nAbstaining below confidence {:.4} answers {:.2}% of the test images with {:.2}% error among them.\n",
            x.threshold,
            100.0 * x.coverage,
            100.0 * x.selective_risk
        );
    }
    md
}
