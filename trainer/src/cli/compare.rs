//! `bnn compare`: two classifiers on the same images, and whether each difference could be chance. Error by the
//! exact McNemar test; NLL and Brier as paired mean differences; out-of-distribution detection (the AUROC by
//! mutual information and by predictive entropy of each of `bnn eval`'s sets against the same test images) by
//! DeLong's test. `--split validation` compares on the validation images both recipes held out, so that a
//! choice between the two never looks at the test set.

use super::eval::{model_data, EvalSplit, Measurement};
use anyhow::Context;
use bnn_runtime::{ClassificationPrediction, Model, PredictOptions, Task};
use bnn_trainer::data::{Dataset, Targets};
use bnn_trainer::evaluate::shift::{ood_sets, OodSet};
use bnn_trainer::evaluate::{label_brier, label_nll, predict_all};
use bnn_trainer::paired::{
    delong_difference, format_p_value, paired_mean_difference, PairedComparison, PairedDifference,
};
use clap::Args;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args)]
pub struct CompareArgs {
    /// The first model (A).
    #[arg(long)]
    model: PathBuf,
    /// The second model (B); every difference is A − B.
    #[arg(long)]
    against: PathBuf,
    // With `--split validation` both models' recipes must hold out the same images (checked).
    #[command(flatten)]
    m: Measurement,
}

/// The comparison `bnn compare --json` prints.
#[derive(Serialize)]
struct Comparison {
    samples: usize,
    examples: usize,
    /// Error rates (`a`, `b`) with the exact McNemar p-value of the discordant images.
    error: ErrorComparison,
    nll: PairedDifference,
    brier: PairedDifference,
    /// One row per out-of-distribution set.
    ood: Vec<OodComparison>,
}

#[derive(Serialize)]
struct ErrorComparison {
    a: f64,
    b: f64,
    only_a_right: usize,
    only_b_right: usize,
    p_value: f64,
}

#[derive(Serialize)]
struct OodComparison {
    set: &'static str,
    auroc_by_mutual_information: PairedDifference,
    auroc_by_entropy: PairedDifference,
}

pub fn run(a: CompareArgs) -> anyhow::Result<()> {
    let load = |path: &PathBuf| Model::load(path).with_context(|| format!("loading {}", path.display()));
    let (model_a, model_b) = (load(&a.model)?, load(&a.against)?);
    for (path, model) in [(&a.model, &model_a), (&a.against, &model_b)] {
        anyhow::ensure!(
            matches!(model.task(), Task::Classification { .. }),
            "{} is not a classifier: `bnn compare` compares classifiers",
            path.display()
        );
    }
    anyhow::ensure!(
        model_a.input_dim() == model_b.input_dim(),
        "the models read {} and {} inputs: they cannot see the same images",
        model_a.input_dim(),
        model_b.input_dim()
    );
    let (_, split) = model_data(&model_a, a.m.data.as_deref(), a.m.split)?;
    if a.m.split == EvalSplit::Validation {
        let (_, other) = model_data(&model_b, a.m.data.as_deref(), a.m.split)?;
        anyhow::ensure!(
            other.test.inputs == split.test.inputs,
            "the two models' recipes hold out different validation images: each model may have trained on images \
             the other is measured on (compare on the test set, or train both with the same data and seed)"
        );
    }
    let test = &split.test;
    let Targets::Classes { labels, .. } = &test.targets else { anyhow::bail!("the examples have no class labels") };
    let options = PredictOptions::default().samples(a.m.samples);
    let predict = |model: &Model, data: &Dataset| predict_all(model, data, &options, a.m.threads);
    let (preds_a, preds_b) = (predict(&model_a, test)?, predict(&model_b, test)?);

    let correct = |preds: &[ClassificationPrediction]| -> Vec<bool> {
        preds.iter().zip(labels).map(|(p, y)| p.class == *y as usize).collect()
    };
    let (correct_a, correct_b) = (correct(&preds_a), correct(&preds_b));
    let error_rate = |c: &[bool]| c.iter().filter(|c| !**c).count() as f64 / c.len().max(1) as f64;
    let discordant = PairedComparison::new(&correct_a, &correct_b);
    let error = ErrorComparison {
        a: error_rate(&correct_a),
        b: error_rate(&correct_b),
        only_a_right: discordant.only_a_right,
        only_b_right: discordant.only_b_right,
        p_value: discordant.p_value(),
    };
    let per_example = |preds: &[ClassificationPrediction], f: fn(&[f32], usize) -> f64| -> Vec<f64> {
        preds.iter().zip(labels).map(|(p, y)| f(&p.probabilities, *y as usize)).collect()
    };
    let nll = paired_mean_difference(&per_example(&preds_a, label_nll), &per_example(&preds_b, label_nll));
    let brier = paired_mean_difference(&per_example(&preds_a, label_brier), &per_example(&preds_b, label_brier));

    // The negatives of every set: the first `shift_limit` test images, whose predictions (seeded by their
    // index) are those above.
    let base = test.first(a.m.shift_limit);
    let scores = |preds: &[ClassificationPrediction]| -> (Vec<f64>, Vec<f64>) {
        preds.iter().map(|p| (p.mutual_information as f64, p.predictive_entropy as f64)).unzip()
    };
    let ((mi_a, ent_a), (mi_b, ent_b)) = (scores(&preds_a[..base.len()]), scores(&preds_b[..base.len()]));
    let mut ood = Vec::with_capacity(3);
    for OodSet { name, data, .. } in ood_sets(&base) {
        let ((pos_mi_a, pos_ent_a), (pos_mi_b, pos_ent_b)) =
            (scores(&predict(&model_a, &data)?), scores(&predict(&model_b, &data)?));
        ood.push(OodComparison {
            set: name,
            auroc_by_mutual_information: delong_difference(&pos_mi_a, &mi_a, &pos_mi_b, &mi_b),
            auroc_by_entropy: delong_difference(&pos_ent_a, &ent_a, &pos_ent_b, &ent_b),
        });
    }
    let comparison = Comparison { samples: a.m.samples, examples: test.len(), error, nll, brier, ood };
    if a.m.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print!("{}", markdown(&a, &comparison)?);
    }
    Ok(())
}

/// The comparison as a Markdown report.
fn markdown(a: &CompareArgs, c: &Comparison) -> anyhow::Result<String> {
    let mut md = format!(
        "# `{}` (A) against `{}` (B)\n\nS = {} samples, {} {}; out-of-distribution sets of {} inputs each against \
         the first {} of those images, the same inputs for both models. A difference is A − B with its 95% interval \
         (normal approximation) and the two-sided p-value of \"no difference\": exact McNemar for the error, paired \
         per-image differences for NLL and Brier, DeLong's test for the AUROCs.\n\n\
         | measure | A | B | A − B | 95% interval | p |\n|---|---:|---:|---:|---|---:|\n",
        a.model.display(),
        a.against.display(),
        c.samples,
        c.examples,
        a.m.split.images(),
        a.m.shift_limit.min(c.examples),
        a.m.shift_limit.min(c.examples),
    );
    let e = &c.error;
    writeln!(
        md,
        "| error | {:.2}% | {:.2}% | {:+.2} points | only A right {}, only B right {} | {} |",
        100.0 * e.a,
        100.0 * e.b,
        100.0 * (e.a - e.b),
        e.only_a_right,
        e.only_b_right,
        format_p_value(e.p_value)
    )?;
    let mut row = |name: &str, d: &PairedDifference| {
        let (lo, hi) = d.interval();
        writeln!(
            md,
            "| {name} | {:.4} | {:.4} | {:+.4} | [{:+.4}, {:+.4}] | {} |",
            d.a,
            d.b,
            d.difference,
            lo,
            hi,
            format_p_value(d.p_value)
        )
    };
    row("NLL", &c.nll)?;
    row("Brier", &c.brier)?;
    for o in &c.ood {
        row(&format!("AUROC by MI, {}", o.set), &o.auroc_by_mutual_information)?;
    }
    for o in &c.ood {
        row(&format!("AUROC by entropy, {}", o.set), &o.auroc_by_entropy)?;
    }
    Ok(md)
}
