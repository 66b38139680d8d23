//! `bnn info`: what a model file holds: task, inputs, and per layer its kind, shape, storage layout (dense or
//! CSR), the dtype of its values, the fraction of weights kept, its parameter count and its bytes in the
//! file; then normalisation, calibration and provenance. `--json` prints the same as one JSON object (fields below).

use bnn_runtime::{Layer, Model, WeightLayout};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args)]
pub struct InfoArgs {
    #[arg(long)]
    model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The `--json` output.
#[derive(Serialize)]
struct Info {
    file: String,
    file_bytes: u64,
    task: serde_json::Value,
    inputs: usize,
    /// `[channels, height, width]` of an image input (passed flat, NCHW); absent for flat inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    input_shape: Option<[usize; 3]>,
    layers: Vec<LayerInfo>,
    normalized: bool,
    /// The calibration block (`bnn calibrate`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    calibration: Option<bnn_runtime::Calibration>,
    provenance: serde_json::Value,
}

/// One layer of the `--json` output; the fields after `kind` are absent for layers without weights.
#[derive(Serialize)]
struct LayerInfo {
    index: usize,
    /// `bayesian_dense`, `dense`, `dropout` or `activation`.
    kind: &'static str,
    /// `relu`, ... (activations), `p=0.1` (dropout).
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_features: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_features: Option<usize>,
    /// `dense` or `csr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    layout: Option<&'static str>,
    /// The dtype of the stored values (`F32`, `F16`, `BF16`).
    #[serde(skip_serializing_if = "Option::is_none")]
    dtype: Option<String>,
    /// Weights present (not pruned) over `in_features * out_features`.
    #[serde(skip_serializing_if = "Option::is_none")]
    kept_fraction: Option<f64>,
    /// Stored numbers: weights present and biases, each a mean and a standard deviation when Bayesian.
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<usize>,
    /// Bytes of the layer's tensors in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
}

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&a.model).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.model.display()))?;
    let model = Model::from_bytes(&bytes)?;
    let tensors = tensor_table(&bytes)?;
    let layers: Vec<LayerInfo> = model.layers().iter().enumerate().map(|(i, l)| layer_info(i, l, &tensors)).collect();
    let mut provenance = serde_json::to_value(model.provenance())?;
    if let Some(r) = provenance.get_mut("recipe").filter(|r| r.is_string()) {
        *r = format!("<{} bytes>", r.as_str().map_or(0, str::len)).into();
    }
    let info = Info {
        file: a.model.display().to_string(),
        file_bytes: bytes.len() as u64,
        task: serde_json::to_value(model.task())?,
        inputs: model.input_dim(),
        input_shape: match model.input_shape() {
            bnn_runtime::Shape::Image(shape) => Some(shape),
            bnn_runtime::Shape::Flat(_) => None,
        },
        layers,
        normalized: model.normalization().is_some(),
        calibration: model.calibration().cloned(),
        provenance,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("file      {} ({} bytes)", info.file, info.file_bytes);
    println!("task      {}", info.task);
    match info.input_shape {
        Some([c, h, w]) => println!("inputs    {} (an image of {c} x {h} x {w}, flat in NCHW order)", info.inputs),
        None => println!("inputs    {}", info.inputs),
    }
    for l in &info.layers {
        let mut text = format!("layer {:<3} {}", l.index, l.kind);
        if let Some(d) = &l.detail {
            text += &format!(" {d}");
        }
        if let (Some(i), Some(o)) = (l.in_features, l.out_features) {
            text += &format!(" {i} -> {o}");
        }
        if let (Some(layout), Some(dtype), Some(kept), Some(p), Some(b)) =
            (l.layout, &l.dtype, l.kept_fraction, l.parameters, l.bytes)
        {
            text += &format!("  {layout} {dtype}, {:.2}% kept, {p} parameters, {b} bytes", 100.0 * kept);
        }
        println!("{text}");
    }
    println!("normalized {}", info.normalized);
    if let Some(c) = &info.calibration {
        let sets: Vec<String> =
            c.sets.iter().chain(&c.intervals).map(|s| format!("{}: {:.4}", s.level, s.threshold)).collect();
        let abstain = c.abstain_below.map_or(String::new(), |t| format!("; abstain below {t:.4}"));
        println!(
            "calibrated temperature {:.4}; thresholds (sets: APS score; intervals: sd) {}{abstain}; on {} examples ({})",
            c.temperature,
            sets.join(", "),
            c.split.examples,
            c.split.source
        );
    }
    println!("provenance {}", info.provenance);
    Ok(())
}

/// Each tensor's `(dtype, bytes)` by name, from the safetensors header.
fn tensor_table(bytes: &[u8]) -> anyhow::Result<BTreeMap<String, (String, u64)>> {
    let tensors = safetensors::SafeTensors::deserialize(bytes)?;
    Ok(tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, (format!("{:?}", view.dtype()), view.data().len() as u64)))
        .collect())
}

fn layer_info(index: usize, layer: &Layer, tensors: &BTreeMap<String, (String, u64)>) -> LayerInfo {
    let mut info = LayerInfo {
        index,
        kind: "",
        detail: None,
        in_features: None,
        out_features: None,
        layout: None,
        dtype: None,
        kept_fraction: None,
        parameters: None,
        bytes: None,
    };
    // The dtype of the layer's weights and the bytes of all its tensors.
    let prefix = format!("layers.{index}.");
    let storage = |info: &mut LayerInfo| {
        info.dtype = tensors.get(&format!("{prefix}weight.mu")).map(|(d, _)| d.clone());
        info.bytes = Some(tensors.iter().filter(|(n, _)| n.starts_with(&prefix)).map(|(_, (_, b))| b).sum());
    };
    let (layout, present, per_value, (i, o)) = match layer {
        Layer::Activation(a) => {
            info.kind = "activation";
            info.detail = Some(a.to_string());
            return info;
        }
        Layer::Dropout(d) => {
            info.kind = "dropout";
            info.detail = Some(format!("p={}", d.p()));
            return info;
        }
        Layer::Conv2d(l) => {
            let present = l.weight().iter().filter(|w| **w != 0.0).count();
            conv_info(&mut info, "conv2d", l.geometry(), (present, 1));
            storage(&mut info);
            return info;
        }
        Layer::BayesianConv2d(l) => {
            let present = l.weight_mu().iter().zip(l.weight_sigma()).filter(|(m, s)| **m != 0.0 || **s != 0.0).count();
            conv_info(&mut info, "bayesian_conv2d", l.geometry(), (present, 2));
            storage(&mut info);
            return info;
        }
        Layer::Pool2d(p) => {
            info.kind = match p.kind {
                bnn_runtime::PoolKind::Max => "max_pool2d",
                bnn_runtime::PoolKind::Avg => "avg_pool2d",
            };
            let g = p.geometry;
            info.detail = Some(format!("window {:?}, stride {:?}, padding {:?}", g.kernel, g.step(), g.padding));
            return info;
        }
        Layer::Flatten => {
            info.kind = "flatten";
            return info;
        }
        Layer::BayesianDense(l) => {
            info.kind = "bayesian_dense";
            let present = match l.layout() {
                WeightLayout::Csr { .. } => l.layout().stored(),
                WeightLayout::Dense { .. } => {
                    l.weight_mu().iter().zip(l.weight_sigma()).filter(|(m, s)| **m != 0.0 || **s != 0.0).count()
                }
            };
            (l.layout(), present, 2, (l.in_features(), l.out_features()))
        }
        Layer::Dense(l) => {
            info.kind = "dense";
            let present = match l.layout() {
                WeightLayout::Csr { .. } => l.layout().stored(),
                WeightLayout::Dense { .. } => l.weight().iter().filter(|w| **w != 0.0).count(),
            };
            (l.layout(), present, 1, (l.in_features(), l.out_features()))
        }
    };
    storage(&mut info);
    info.in_features = Some(i);
    info.out_features = Some(o);
    info.layout = Some(match layout {
        WeightLayout::Dense { .. } => "dense",
        WeightLayout::Csr { .. } => "csr",
    });
    info.kept_fraction = Some(if i * o == 0 { 0.0 } else { present as f64 / (i * o) as f64 });
    info.parameters = Some(per_value * (present + o));
    info
}

/// A convolution's kind, geometry, kept fraction and parameter count: `present` kernel weights not pruned,
/// `per_value` values per weight and bias. Kernels are stored dense.
fn conv_info(
    info: &mut LayerInfo,
    kind: &'static str,
    geometry: &bnn_runtime::ConvGeometry,
    (present, per_value): (usize, usize),
) {
    info.kind = kind;
    info.detail = Some(format!(
        "{} -> {} channels, kernel {:?}, stride {:?}, padding {:?}, dilation {:?}, groups {}",
        geometry.in_channels,
        geometry.out_channels,
        geometry.kernel,
        geometry.stride,
        geometry.padding,
        geometry.dilation,
        geometry.groups
    ));
    let weights = geometry.weight_count().unwrap_or(0);
    info.layout = Some("dense");
    info.kept_fraction = Some(if weights == 0 { 0.0 } else { present as f64 / weights as f64 });
    info.parameters = Some(per_value * (present + geometry.out_channels));
}
