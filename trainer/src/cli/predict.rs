//! `bnn predict`: predictions with their uncertainty, from numbers on the command line, an MNIST test image or a
//! file of inputs (CSV or `.npy`, one per row); as text, or `--json`: one JSON object per line and input, with
//! the fields of [`Record`] (classification: `class`, `probabilities`, `predictive_entropy`, `expected_entropy`,
//! `mutual_information`; regression: `mean`, `aleatoric_variance`, `epistemic_variance`, `total_variance`,
//! `lower`, `upper`, `interval_level`; both: `kind`, `samples_used`; `index` for `--inputs`, `true_label` for
//! `--mnist-test`; `decision` with `--level` on a calibrated model: `level` and, for a classifier,
//! `prediction_set`, `confidence`, `abstain`, for a regression model the conformal interval `lower`, `upper`). Without `--json`, `--inputs` writes CSV with the same names as columns.

use anyhow::Context;
use bnn_runtime::{Model, PredictOptions, Prediction, Sampler};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct PredictArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// Input features, comma-separated (raw, before normalisation).
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["mnist_test", "inputs"])]
    input: Option<String>,
    /// A file of inputs, one per row: CSV (a first row that is not numbers is taken as a header) or a NumPy
    /// `.npy` array (float32 or float64, one input per row). Input `i` (from 0) uses seed `--seed + i`.
    #[arg(long, conflicts_with = "mnist_test")]
    inputs: Option<PathBuf>,
    /// One JSON object per line and input instead of text.
    #[arg(long)]
    json: bool,
    /// Use image N of the MNIST test set as input.
    #[arg(long)]
    mnist_test: Option<usize>,
    /// MNIST directory for --mnist-test [default: $BNN_MNIST_DIR].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Monte-Carlo samples.
    #[arg(long, default_value_t = 32)]
    samples: usize,
    /// Stop early once the standard error of the mean is below this (at most --samples).
    #[arg(long)]
    tolerance: Option<f32>,
    /// local-reparam, weight-sampling, mean or shared-weights (for batches; one input here).
    #[arg(long, default_value = "local-reparam")]
    sampler: Sampler,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// With a calibrated model (`bnn calibrate`): also give, at this stored level, a classifier's conformal
    /// prediction set and whether to abstain (JSON field `decision`; CSV columns `set`, `abstain`), or a
    /// regression model's conformal interval (`decision.lower`/`upper`; CSV `conformal_lower{k}`, `conformal_upper{k}`).
    #[arg(long)]
    level: Option<f32>,
}

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    let model = Model::load(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
    let mut options = PredictOptions::default().samples(a.samples).seed(a.seed).sampler(a.sampler);
    if let Some(t) = a.tolerance {
        options = options.adaptive(a.samples, t);
    }
    if let (Some(level), None) = (a.level, model.calibration()) {
        anyhow::bail!("--level {level}: the model is not calibrated (calibrate it with `bnn calibrate`)");
    }
    if let Some(path) = &a.inputs {
        return predict_file(&model, path, &options, a.json, a.level);
    }
    let (input, truth) = match (&a.input, a.mnist_test) {
        (Some(text), _) => (parse_input(text)?, None),
        (None, Some(i)) => {
            let dir = bnn_trainer::data::mnist_dir(a.data.as_deref(), None)?;
            let test = bnn_trainer::data::load_mnist_test(&dir, Some(i + 1))?;
            anyhow::ensure!(i < test.len(), "the MNIST test set has {} images", test.len());
            let bnn_trainer::data::Targets::Classes { labels, .. } = &test.targets else { unreachable!() };
            (test.input(i).to_vec(), Some(labels[i]))
        }
        (None, None) => anyhow::bail!("give --input V1,V2,... or --mnist-test N or --inputs FILE"),
    };
    let p = model.predict(&input, &options)?;
    let decision = DecisionRecord::new(&model, &p, a.level)?;
    if a.json {
        let mut record = Record::new(&p, None, decision);
        if let Record::Classification { true_label, .. } = &mut record {
            *true_label = truth;
        }
        println!("{}", serde_json::to_string(&record)?);
        return Ok(());
    }
    print!("{}", super::report::describe(&model, &p));
    match &decision {
        Some(DecisionRecord { level, prediction_set: Some(set), abstain, .. }) => println!(
            "{:.0}% set         {set:?}{}",
            100.0 * level,
            if *abstain == Some(true) { "  (abstain: calibrated confidence below the model's threshold)" } else { "" }
        ),
        Some(DecisionRecord { level, lower: Some(lower), upper: Some(upper), .. }) => {
            for (k, (l, u)) in lower.iter().zip(upper).enumerate() {
                println!("output {k}: {:.0}% conformal interval [{l:.4}, {u:.4}]", 100.0 * level);
            }
        }
        _ => {}
    }
    if let Some(t) = truth {
        println!("true label       {t}");
    }
    Ok(())
}

/// One prediction as `--json` and `--inputs` write it.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Record {
    Classification {
        #[serde(skip_serializing_if = "Option::is_none")]
        index: Option<usize>,
        kind: &'static str,
        class: usize,
        probabilities: Vec<f32>,
        predictive_entropy: f32,
        expected_entropy: f32,
        mutual_information: f32,
        samples_used: usize,
        /// The MNIST test image's label (`--mnist-test`).
        #[serde(skip_serializing_if = "Option::is_none")]
        true_label: Option<u32>,
        /// With `--level`: the calibrated model's decision.
        #[serde(skip_serializing_if = "Option::is_none")]
        decision: Option<DecisionRecord>,
    },
    Regression {
        #[serde(skip_serializing_if = "Option::is_none")]
        index: Option<usize>,
        kind: &'static str,
        mean: Vec<f32>,
        aleatoric_variance: Vec<f32>,
        epistemic_variance: Vec<f32>,
        total_variance: Vec<f32>,
        lower: Vec<f32>,
        upper: Vec<f32>,
        interval_level: f32,
        samples_used: usize,
        /// With `--level`: the calibrated model's conformal interval.
        #[serde(skip_serializing_if = "Option::is_none")]
        decision: Option<DecisionRecord>,
    },
}

/// A calibrated model's decision on one prediction (`--level`): a classifier's conformal set and abstention, or a
/// regression model's conformal interval.
#[derive(Default, serde::Serialize)]
struct DecisionRecord {
    level: f32,
    /// The conformal set: classes, most probable first (empty: none plausible at this level).
    #[serde(skip_serializing_if = "Option::is_none")]
    prediction_set: Option<Vec<usize>>,
    /// The largest calibrated probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    abstain: Option<bool>,
    /// The conformal interval of each output.
    #[serde(skip_serializing_if = "Option::is_none")]
    lower: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upper: Option<Vec<f32>>,
}

impl DecisionRecord {
    /// The decision at `level` (`None` without a level).
    fn new(model: &Model, p: &Prediction, level: Option<f32>) -> anyhow::Result<Option<Self>> {
        let (Some(level), Some(calibration)) = (level, model.calibration()) else { return Ok(None) };
        let not_stored = || {
            let stored: Vec<f32> = calibration.sets.iter().chain(&calibration.intervals).map(|s| s.level).collect();
            format!("--level {level} is not stored; the model stores {stored:?}")
        };
        Ok(Some(match p {
            Prediction::Classification(c) => {
                let d = calibration.decide(&c.probabilities, level).with_context(not_stored)?;
                let (prediction_set, confidence, abstain) = (Some(d.set), Some(d.confidence), Some(d.abstain));
                DecisionRecord { level, prediction_set, confidence, abstain, ..Default::default() }
            }
            Prediction::Regression(r) => {
                let (lower, upper) =
                    calibration.interval(&r.mean, &r.total_variance, level).with_context(not_stored)?;
                DecisionRecord { level, lower: Some(lower), upper: Some(upper), ..Default::default() }
            }
        }))
    }
}

impl Record {
    fn new(p: &Prediction, index: Option<usize>, decision: Option<DecisionRecord>) -> Self {
        match p {
            Prediction::Classification(c) => Record::Classification {
                index,
                kind: "classification",
                class: c.class,
                probabilities: c.probabilities.clone(),
                predictive_entropy: c.predictive_entropy,
                expected_entropy: c.expected_entropy,
                mutual_information: c.mutual_information,
                samples_used: c.samples_used,
                true_label: None,
                decision,
            },
            Prediction::Regression(r) => Record::Regression {
                index,
                kind: "regression",
                mean: r.mean.clone(),
                aleatoric_variance: r.aleatoric_variance.clone(),
                epistemic_variance: r.epistemic_variance.clone(),
                total_variance: r.total_variance.clone(),
                lower: r.lower.clone(),
                upper: r.upper.clone(),
                interval_level: r.interval_level,
                samples_used: r.samples_used,
                decision,
            },
        }
    }

    /// The CSV header for `model`'s classes or outputs (`decision`: with the `set` and `abstain` columns, or the
    /// conformal interval's `conformal_lower{k}` and `conformal_upper{k}`).
    fn csv_header(model: &Model, decision: bool) -> String {
        match model.task() {
            bnn_runtime::Task::Classification { classes, .. } => {
                let p: Vec<String> = (0..*classes).map(|k| format!("p{k}")).collect();
                format!(
                    "index,class,predictive_entropy,expected_entropy,mutual_information,samples_used,{}{}",
                    p.join(","),
                    if decision { ",set,abstain" } else { "" }
                )
            }
            bnn_runtime::Task::Regression { outputs, .. } => {
                let cols: Vec<String> = (0..*outputs)
                    .flat_map(|k| {
                        ["mean", "aleatoric_variance", "epistemic_variance", "total_variance", "lower", "upper"]
                            .map(|c| format!("{c}{k}"))
                    })
                    .collect();
                let conformal: Vec<String> =
                    (0..*outputs).map(|k| format!(",conformal_lower{k},conformal_upper{k}")).collect();
                format!(
                    "index,samples_used,{}{}",
                    cols.join(","),
                    if decision { conformal.concat() } else { String::new() }
                )
            }
        }
    }

    fn csv_row(&self) -> String {
        let join = |v: &[f32]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
        match self {
            Record::Classification {
                index,
                class,
                probabilities,
                predictive_entropy,
                expected_entropy,
                mutual_information,
                samples_used,
                decision,
                ..
            } => {
                // The set's classes separated by spaces, in one column.
                let decision = decision.as_ref().map_or(String::new(), |d| {
                    let set: Vec<String> = d.prediction_set.iter().flatten().map(usize::to_string).collect();
                    format!(",{},{}", set.join(" "), d.abstain.unwrap_or(false) as u8)
                });
                format!(
                    "{},{class},{predictive_entropy},{expected_entropy},{mutual_information},{samples_used},{}{decision}",
                    index.unwrap_or(0),
                    join(probabilities)
                )
            }
            Record::Regression {
                index,
                mean,
                aleatoric_variance,
                epistemic_variance,
                total_variance,
                lower,
                upper,
                samples_used,
                decision,
                ..
            } => {
                let cols: Vec<String> = (0..mean.len())
                    .map(|k| {
                        let v = [mean, aleatoric_variance, epistemic_variance, total_variance, lower, upper];
                        v.map(|c| c[k].to_string()).join(",")
                    })
                    .collect();
                let conformal = decision
                    .as_ref()
                    .and_then(|d| d.lower.as_ref().zip(d.upper.as_ref()))
                    .map_or(String::new(), |(lower, upper)| {
                        lower.iter().zip(upper).map(|(l, u)| format!(",{l},{u}")).collect::<String>()
                    });
                format!("{},{samples_used},{}{conformal}", index.unwrap_or(0), cols.join(","))
            }
        }
    }
}

/// Predicts every input of the file at `path` ([`read_inputs`]), writing one JSON line (`json`) or CSV row per
/// input to standard output; an input that cannot be predicted is reported (`{"index": i, "error": ...}`, or on
/// standard error) and makes the command fail at the end.
fn predict_file(
    model: &Model,
    path: &Path,
    options: &PredictOptions,
    json: bool,
    level: Option<f32>,
) -> anyhow::Result<()> {
    let inputs = read_inputs(path)?;
    if !json {
        println!("{}", Record::csv_header(model, level.is_some()));
    }
    let mut predictor = bnn_runtime::Predictor::new(model);
    let mut failed = 0;
    for (i, input) in inputs.into_iter().enumerate() {
        let result = input.and_then(|x| {
            let p = predictor.predict(&x, &(*options).seed(options.seed.wrapping_add(i as u64)))?;
            let decision = DecisionRecord::new(model, &p, level)?;
            Ok(Record::new(&p, Some(i), decision))
        });
        match result {
            Ok(record) if json => println!("{}", serde_json::to_string(&record)?),
            Ok(record) => println!("{}", record.csv_row()),
            Err(e) => {
                failed += 1;
                if json {
                    println!("{}", serde_json::json!({ "index": i, "error": format!("{e:#}") }));
                } else {
                    eprintln!("input {i}: {e:#}");
                }
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of the inputs could not be predicted");
    Ok(())
}

/// The inputs of a file: the rows of a NumPy `.npy` array (float32 or float64, C order; 2-D with one input per
/// row, or 1-D for one input), or else the lines of a CSV file (a first line that is not numbers is a header;
/// each line parses on its own, so one bad line fails only its input).
fn read_inputs(path: &Path) -> anyhow::Result<Vec<anyhow::Result<Vec<f32>>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"\x93NUMPY") {
        let rows = npy_rows(&bytes).with_context(|| format!("reading the .npy array {}", path.display()))?;
        return Ok(rows.into_iter().map(Ok).collect());
    }
    let text = String::from_utf8(bytes).with_context(|| format!("{} is neither CSV text nor .npy", path.display()))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).peekable();
    if lines.peek().is_some_and(|(_, first)| parse_input(first).is_err()) {
        lines.next();
    }
    Ok(lines
        .map(|(line, text)| parse_input(text).with_context(|| format!("{} line {}", path.display(), line + 1)))
        .collect())
}

/// The rows of a `.npy` array of floats.
fn npy_rows(bytes: &[u8]) -> anyhow::Result<Vec<Vec<f32>>> {
    let npy = npyz::NpyFile::new(bytes)?;
    anyhow::ensure!(npy.order() == npyz::Order::C, "the array is in Fortran order; save it in C order");
    let (rows, width) = match *npy.shape() {
        [n] => (1, n),
        [rows, width] => (rows, width),
        ref shape => anyhow::bail!("the array has shape {shape:?}; inputs need one row each (2-D) or one input (1-D)"),
    };
    let dtype = npy.dtype().descr();
    let item = match dtype.as_str() {
        "'<f4'" => 4,
        "'<f8'" => 8,
        _ => anyhow::bail!("the array holds {dtype}; float32 (<f4) or float64 (<f8) inputs are read"),
    };
    anyhow::ensure!(width > 0, "the array's rows are empty");
    // The header's shape must fit the file before any memory is reserved for it.
    let values = rows.checked_mul(width).filter(|n| n.saturating_mul(item) <= bytes.len() as u64);
    anyhow::ensure!(
        values.is_some(),
        "the header's shape {rows}×{width} does not fit the file's {} bytes",
        bytes.len()
    );
    let flat: Vec<f32> =
        if item == 4 { npy.into_vec::<f32>()? } else { npy.into_vec::<f64>()?.into_iter().map(|v| v as f32).collect() };
    Ok(flat.chunks(width as usize).map(<[f32]>::to_vec).collect())
}

fn parse_input(text: &str) -> anyhow::Result<Vec<f32>> {
    text.split(',').map(|s| s.trim().parse::<f32>().with_context(|| format!("`{s}` is not a number"))).collect()
}
