//! `bnn prune-sweep`: the pruning benchmark. For every criterion and sparsity: test error, NLL, ECE, file
//! size and single-input latency at S = 32, as CSV, a Markdown table and a PNG plot, plus a histogram of
//! log10 SNR of the unpruned model's weights, the paired comparison (exact McNemar test) of SNR with the
//! other criteria at each sparsity, and which weights each pruned model keeps.

use bnn_runtime::{BayesianDense, Layer, Model, ModelWriter, Named, PredictOptions, StorageDtype};
use bnn_trainer::data::{load_mnist_test, mnist_dir, Targets};
use bnn_trainer::evaluate::{evaluate_classifier, interleaved_latencies, LatencyCase, LATENCY_ROUNDS};
use bnn_trainer::paired::{format_p_value, PairedComparison};
use bnn_trainer::plot::{histogram, line_chart, Series};
use bnn_trainer::prune::{finetune, prune, Criterion};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args)]
pub struct SweepArgs {
    /// The trained (dense) MNIST model.
    #[arg(long)]
    model: PathBuf,
    /// MNIST directory [default: $BNN_MNIST_DIR].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where the CSV, Markdown and PNG files go.
    #[arg(long)]
    out_dir: PathBuf,
    #[arg(long, value_delimiter = ',', default_value = "0,0.5,0.75,0.9,0.95,0.98,0.99")]
    sparsities: Vec<f64>,
    /// Criteria to compare: snr, magnitude, random.
    #[arg(long, value_delimiter = ',', default_value = "snr,magnitude,random")]
    criteria: Vec<Criterion>,
    /// Monte-Carlo samples for the test metrics.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Monte-Carlo samples of the latency measurement.
    #[arg(long, default_value_t = 32)]
    latency_samples: usize,
    /// Predictions timed per configuration, in rounds that visit every configuration in turn (the median
    /// over rounds is reported).
    #[arg(long, default_value_t = 300, value_parser = super::positive_count)]
    latency_reps: usize,
    /// Storage dtype of the pruned files.
    #[arg(long, default_value = "f16")]
    dtype: StorageDtype,
    /// Use only the first N test images.
    #[arg(long, value_parser = super::positive_count)]
    test_limit: Option<usize>,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Fine-tune every pruned model for N epochs before measuring it (as `bnn prune --finetune-epochs`).
    #[arg(long, default_value_t = 0)]
    finetune_epochs: usize,
}

struct Row {
    criterion: Criterion,
    sparsity: f64,
    error: f64,
    nll: f64,
    ece: f64,
    bytes: usize,
    latency_us: f64,
    /// Whether each test image's predicted class is right.
    correct: Vec<bool>,
    /// Whether each weight of the Bayesian layers (in `bayesian_weights` order) survived the pruning.
    kept: Vec<bool>,
}

pub fn run(a: SweepArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out_dir)?;
    let model = Model::load(&a.model)?;
    let test = load_mnist_test(&mnist_dir(a.data.as_deref(), None)?, a.test_limit)?;
    let Targets::Classes { labels, .. } = &test.targets else { anyhow::bail!("the test set has no class labels") };
    let dtype = a.dtype;
    let dense_f32 = ModelWriter::new(&model).to_bytes()?.len();
    let mu = bayesian_weights(&model, BayesianDense::dense_weight_mu);
    let sigma = bayesian_weights(&model, BayesianDense::dense_weight_sigma);
    let significant: Vec<bool> = mu.iter().zip(&sigma).map(|(m, s)| m.abs() > *s).collect();
    let eval = PredictOptions::default().samples(a.samples);
    let timed = PredictOptions::default().samples(a.latency_samples);

    let bar = ProgressBar::new((a.criteria.len() * a.sparsities.len()) as u64)
        .with_style(ProgressStyle::with_template("{spinner} pruning sweep [{bar:30}] {pos}/{len} {msg} eta {eta}")?);
    let mut rows = Vec::new();
    let mut models = Vec::new();
    for &criterion in &a.criteria {
        for &sparsity in &a.sparsities {
            bar.set_message(format!("{} {:.0}%", criterion.name(), 100.0 * sparsity));
            let (mut pruned, _) = prune(&model, sparsity, criterion, 7)?;
            if a.finetune_epochs > 0 && sparsity > 0.0 {
                pruned = finetune(&pruned, a.finetune_epochs, a.data.as_deref(), &mut ())?;
            }
            let bytes = ModelWriter::new(&pruned).dtype(dtype).to_bytes()?;
            let loaded = Model::from_bytes(&bytes)?;
            let (report, preds) = evaluate_classifier(&loaded, &test, &eval, a.threads)?;
            let correct = preds.iter().zip(labels).map(|(p, y)| p.class == *y as usize).collect();
            let kept = bayesian_weights(&loaded, BayesianDense::dense_weight_sigma).iter().map(|s| *s != 0.0).collect();
            rows.push(Row {
                criterion,
                sparsity,
                error: report.error,
                nll: report.nll,
                ece: report.ece,
                bytes: bytes.len(),
                latency_us: f64::NAN,
                correct,
                kept,
            });
            models.push(loaded);
            bar.inc(1);
        }
    }
    bar.set_message("timing");
    let cases: Vec<LatencyCase> =
        models.iter().map(|model| LatencyCase { model, options: timed, reps: a.latency_reps }).collect();
    for (row, t) in rows.iter_mut().zip(interleaved_latencies(&cases, test.input(0))?) {
        row.latency_us = t.as_secs_f64() * 1e6;
    }
    bar.finish_and_clear();

    let mut csv = String::from("criterion,sparsity,test_error,nll,ece,file_bytes,latency_us_s32\n");
    let mut md = format!(
        "Model `{}` ({} test images, S = {} for the metrics, S = {} for latency (median of {LATENCY_ROUNDS} rounds interleaved over all rows), {} storage, {} fine-tuning epochs after pruning; dense f32 file: {dense_f32} bytes)\n\n\
         | criterion | sparsity | test error | NLL | ECE | file bytes | latency µs (S={}) |\n|---|---:|---:|---:|---:|---:|---:|\n",
        a.model.display(),
        test.len(),
        a.samples,
        a.latency_samples,
        a.dtype,
        a.finetune_epochs,
        a.latency_samples
    );
    for r in &rows {
        let name = r.criterion.name();
        writeln!(
            csv,
            "{name},{},{:.6},{:.6},{:.6},{},{:.1}",
            r.sparsity, r.error, r.nll, r.ece, r.bytes, r.latency_us
        )?;
        writeln!(
            md,
            "| {name} | {:.0}% | {:.2}% | {:.4} | {:.2}% | {} | {:.0} |",
            100.0 * r.sparsity,
            100.0 * r.error,
            r.nll,
            100.0 * r.ece,
            r.bytes,
            r.latency_us
        )?;
    }
    md.push_str(&paired_table(&rows));
    md.push_str(&kept_weights_table(&rows, &significant));
    std::fs::write(a.out_dir.join("sweep.csv"), &csv)?;
    std::fs::write(a.out_dir.join("sweep.md"), &md)?;
    let series: Vec<Series> = a
        .criteria
        .iter()
        .map(|c| Series {
            name: c.name().to_string(),
            points: rows.iter().filter(|r| r.criterion == *c).map(|r| (100.0 * r.sparsity, 100.0 * r.error)).collect(),
        })
        .collect();
    line_chart(
        &a.out_dir.join("error_vs_sparsity.png"),
        "MNIST test error after pruning",
        "weights removed (%)",
        "test error (%)",
        &series,
    )?;
    let log_snr: Vec<f64> = mu.iter().zip(&sigma).map(|(m, s)| ((m.abs() / s) as f64).log10()).collect();
    histogram(
        &a.out_dir.join("snr_histogram.png"),
        "Signal-to-noise ratio of the weights",
        "log10 |mu| / sigma",
        &log_snr,
        60,
    )?;
    print!("{md}");
    Ok(())
}

/// One dense row-major matrix per Bayesian layer (`BayesianDense::dense_weight_mu` or `_sigma`; a pruned
/// weight is 0 in both), concatenated in layer order.
fn bayesian_weights(model: &Model, matrix: fn(&BayesianDense) -> Vec<f32>) -> Vec<f32> {
    let layers = model.layers().iter().filter_map(|l| match l {
        Layer::BayesianDense(b) => Some(b),
        _ => None,
    });
    layers.flat_map(matrix).collect()
}

/// The Markdown section on which weights each pruned model keeps: how many weights the posterior tells from
/// zero (SNR > 1) and what share of them each model keeps, and what share of its kept weights SNR's model at
/// the same sparsity keeps too. While two criteria keep (nearly) the same weights they cannot differ much.
fn kept_weights_table(rows: &[Row], significant: &[bool]) -> String {
    let count = significant.iter().filter(|s| **s).count();
    let mut md = format!(
        "\nWeights with SNR > 1 in the dense model: {count} of {} ({:.2}%). Share of them each pruned model keeps, \
         and share of its kept weights that SNR's model at the same sparsity keeps too:\n\n\
         | criterion | sparsity | SNR > 1 kept | kept weights shared with SNR |\n|---|---:|---:|---:|\n",
        significant.len(),
        share(count, significant.len())
    );
    let both = |a: &[bool], b: &[bool]| a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    for r in rows.iter().filter(|r| r.sparsity > 0.0) {
        let kept = r.kept.iter().filter(|k| **k).count();
        let snr = rows.iter().find(|s| s.criterion == Criterion::Snr && s.sparsity == r.sparsity);
        let shared = snr.map_or("—".into(), |s| format!("{:.1}%", share(both(&r.kept, &s.kept), kept)));
        let _ = writeln!(
            md,
            "| {} | {:.0}% | {:.1}% | {shared} |",
            r.criterion.name(),
            100.0 * r.sparsity,
            share(both(&r.kept, significant), count)
        );
    }
    md
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
fn share(part: usize, whole: usize) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

/// The Markdown section comparing SNR with every other criterion, image by image, at each sparsity above 0
/// (empty without SNR rows or other criteria).
fn paired_table(rows: &[Row]) -> String {
    let mut md = String::new();
    for snr in rows.iter().filter(|r| r.criterion == Criterion::Snr && r.sparsity > 0.0) {
        let others = rows.iter().filter(|r| r.criterion != Criterion::Snr && r.sparsity == snr.sparsity);
        for other in others {
            if md.is_empty() {
                md.push_str(
                    "\nPaired comparison on the same images: test images only SNR gets right, only the other \
                     criterion gets right, and the two-sided exact McNemar p-value: the chance of a split at least \
                     this uneven if the two were equally good (a large p: a tie).\n\n\
                     | sparsity | other criterion | only SNR right | only other right | McNemar p |\n\
                     |---:|---|---:|---:|---:|\n",
                );
            }
            let c = PairedComparison::new(&snr.correct, &other.correct);
            let _ = writeln!(
                md,
                "| {:.0}% | {} | {} | {} | {} |",
                100.0 * snr.sparsity,
                other.criterion.name(),
                c.only_a_right,
                c.only_b_right,
                format_p_value(c.p_value())
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(criterion: Criterion, sparsity: f64, correct: &[bool]) -> Row {
        let (error, nll, ece, bytes, latency_us) = (0.0, 0.0, 0.0, 0, 0.0);
        let kept = vec![];
        Row { criterion, sparsity, error, nll, ece, bytes, latency_us, correct: correct.to_vec(), kept }
    }

    #[test]
    fn the_paired_table_compares_snr_with_each_other_criterion_at_the_same_sparsity() {
        let rows = [
            row(Criterion::Snr, 0.0, &[true, true, false]),
            row(Criterion::Snr, 0.95, &[true, true, false]),
            row(Criterion::Magnitude, 0.0, &[false, false, true]),
            row(Criterion::Magnitude, 0.95, &[true, false, true]),
            row(Criterion::Random, 0.95, &[false, false, false]),
        ];
        let table = paired_table(&rows);
        let lines: Vec<&str> = table.lines().filter(|l| l.starts_with("| 95%")).collect();
        assert_eq!(lines, ["| 95% | magnitude | 1 | 1 | 1.000 |", "| 95% | random | 2 | 0 | 0.500 |"]);
        assert!(!table.contains("| 0% |"), "no comparison of unpruned models");
        assert_eq!(paired_table(&rows[2..3]), "", "no SNR rows, no table");
    }

    #[test]
    fn the_kept_weights_table_shows_the_share_of_significant_weights_kept_and_the_overlap_with_snr() {
        let with_kept =
            |criterion, sparsity, kept: [bool; 4]| Row { kept: kept.to_vec(), ..row(criterion, sparsity, &[]) };
        let rows = [
            with_kept(Criterion::Snr, 0.0, [true; 4]),
            with_kept(Criterion::Snr, 0.5, [true, false, false, true]),
            with_kept(Criterion::Magnitude, 0.5, [true, true, false, false]),
            with_kept(Criterion::Random, 0.75, [false, false, true, false]),
        ];
        let table = kept_weights_table(&rows, &[true, false, false, true]);
        assert!(table.contains("2 of 4 (50.00%)"), "{table}");
        let lines: Vec<&str> = table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| criterion")).collect();
        assert_eq!(
            lines,
            ["| snr | 50% | 100.0% | 100.0% |", "| magnitude | 50% | 50.0% | 50.0% |", "| random | 75% | 0.0% | — |"],
            "the unpruned model has no row; no SNR model at 75%, no overlap"
        );
    }
}
