//! `bnn prune-sweep`: the pruning benchmark. For every criterion and sparsity: test error, NLL, ECE, file
//! size and single-input latency at S = 32, as CSV, a Markdown table and a PNG plot, plus a histogram of
//! log10 SNR of the unpruned model's weights, and the paired comparison (exact McNemar test) of SNR with
//! the other criteria at each sparsity.

use bnn_runtime::{BayesianDense, Layer, Model, ModelWriter, PredictOptions};
use bnn_trainer::data::{load_mnist, mnist_dir, Targets};
use bnn_trainer::evaluate::{evaluate_classifier, interleaved_latencies, LatencyCase, LATENCY_ROUNDS};
use bnn_trainer::paired::PairedComparison;
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
    #[arg(long, value_delimiter = ',', value_enum, default_value = "snr,magnitude,random")]
    criteria: Vec<Criterion>,
    /// Monte-Carlo samples for the test metrics.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Monte-Carlo samples of the latency measurement.
    #[arg(long, default_value_t = 32)]
    latency_samples: usize,
    /// Predictions timed per configuration, in rounds that visit every configuration in turn (the median
    /// over rounds is reported).
    #[arg(long, default_value_t = 300)]
    latency_reps: usize,
    /// Storage dtype of the pruned files.
    #[arg(long, default_value = "f16")]
    dtype: String,
    /// Use only the first N test images.
    #[arg(long)]
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
    /// Share of the dense model's weights with SNR > 1 that this model keeps.
    significant_kept: f64,
}

pub fn run(a: SweepArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out_dir)?;
    let model = Model::load(&a.model)?;
    let test = load_mnist(&mnist_dir(a.data.as_deref(), None)?, Some(1), a.test_limit)?.test;
    let Targets::Classes { labels, .. } = &test.targets else { anyhow::bail!("the test set has no class labels") };
    let dtype = super::storage_dtype(&a.dtype)?;
    let dense_f32 = ModelWriter::new(&model).to_bytes()?.len();
    let mu = bayesian_weights(&model, BayesianDense::dense_weight_mu);
    let sigma = bayesian_weights(&model, BayesianDense::dense_weight_sigma);
    let significant: Vec<bool> = mu.iter().zip(&sigma).map(|(m, s)| m.abs() > *s).collect();
    let significant_count = significant.iter().filter(|s| **s).count();
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
                pruned = finetune(&pruned, a.finetune_epochs, a.data.as_deref(), &ProgressBar::hidden())?;
            }
            let bytes = ModelWriter::new(&pruned).dtype(dtype).to_bytes()?;
            let loaded = Model::from_bytes(&bytes)?;
            let (report, preds) = evaluate_classifier(&loaded, &test, &eval, a.threads)?;
            let correct = preds.iter().zip(labels).map(|(p, y)| p.class == *y as usize).collect();
            let kept = bayesian_weights(&loaded, BayesianDense::dense_weight_sigma).into_iter().map(|s| s != 0.0);
            let significant_kept =
                kept.zip(&significant).filter(|(k, s)| *k && **s).count() as f64 / significant_count.max(1) as f64;
            rows.push(Row {
                criterion,
                sparsity,
                error: report.error,
                nll: report.nll,
                ece: report.ece,
                bytes: bytes.len(),
                latency_us: f64::NAN,
                correct,
                significant_kept,
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
    md.push_str(&significant_table(&rows, significant_count, significant.len()));
    std::fs::write(a.out_dir.join("sweep.csv"), &csv)?;
    std::fs::write(a.out_dir.join("sweep.md"), &md)?;
    let series: Vec<Series> = a
        .criteria
        .iter()
        .map(|c| Series {
            name: format!("{c:?}"),
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

/// The Markdown section on the weights the posterior tells from zero (SNR > 1): how many there are and what
/// share of them each pruned model keeps. While two criteria both keep (nearly) all of them, they differ only
/// in which weights the posterior cannot tell from zero fill the rest of the budget.
fn significant_table(rows: &[Row], count: usize, weights: usize) -> String {
    let mut md = format!(
        "\nWeights with SNR > 1 in the dense model: {count} of {weights} ({:.2}%). Share of them each pruned model \
         keeps:\n\n| criterion | sparsity | SNR > 1 kept |\n|---|---:|---:|\n",
        100.0 * count as f64 / weights.max(1) as f64
    );
    for r in rows.iter().filter(|r| r.sparsity > 0.0) {
        let name = r.criterion.name();
        let _ = writeln!(md, "| {name} | {:.0}% | {:.1}% |", 100.0 * r.sparsity, 100.0 * r.significant_kept);
    }
    md
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
                format_p(c.p_value())
            );
        }
    }
    md
}

/// Three decimals, or scientific notation below 0.001 (where three decimals would print 0.000); a p-value
/// below f64's range (the binomial terms underflow) prints as `< 1e-300`.
fn format_p(p: f64) -> String {
    if p < 1e-300 {
        "< 1e-300".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(criterion: Criterion, sparsity: f64, correct: &[bool]) -> Row {
        let (error, nll, ece, bytes, latency_us) = (0.0, 0.0, 0.0, 0, 0.0);
        let significant_kept = 1.0;
        Row { criterion, sparsity, error, nll, ece, bytes, latency_us, correct: correct.to_vec(), significant_kept }
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
        let printed = [0.0421, 2.6e-7, 0.0].map(format_p);
        assert_eq!(printed, ["0.042", "2.6e-7", "< 1e-300"]);
        assert_eq!(paired_table(&rows[2..3]), "", "no SNR rows, no table");
    }

    #[test]
    fn the_significant_table_states_how_many_weights_have_snr_above_one_and_each_share_kept() {
        let mut rows = [row(Criterion::Snr, 0.0, &[]), row(Criterion::Magnitude, 0.95, &[])];
        rows[1].significant_kept = 0.987;
        let table = significant_table(&rows, 2, 4);
        assert!(table.contains("2 of 4 (50.00%)"), "{table}");
        assert!(table.contains("| magnitude | 95% | 98.7% |"), "{table}");
        assert!(!table.contains("| snr | 0% |"), "the unpruned model has no row");
    }
}
