//! The `bnn` binary end to end on a small synthetic recipe: train, info, predict, prune, eval; and clear
//! errors for bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bnn(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bnn")).args(args).output().expect("the bnn binary runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A NumPy `.npy` file (format 1.0) of `data` with the given dtype, order and shape.
fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn train_predict_prune_and_eval_from_the_command_line() {
    let (dir, recipe, model, out) = trained(
        "main",
        "[data]\nsource = \"synthetic\"\nname = \"heteroscedastic\"\ntrain_points = 128\ntest_points = 32\n\
         [model]\nhidden = [16]\n[likelihood]\nkind = \"heteroscedastic\"\n[training]\nepochs = 3\nbatch_size = 32\n",
    );
    let p = |x: &Path| x.to_str().unwrap().to_string();
    assert!(out.contains("epoch   3"), "{out}");
    assert!(dir.join("m.ckpt").exists(), "a checkpoint is written");

    let (ok, out) = bnn(&["info", "--model", &p(&model)]);
    assert!(ok && out.contains("heteroscedastic") && out.contains("dense F32, 100.00% kept"), "{out}");

    let (ok, out) = bnn(&["predict", "--model", &p(&model), "--input", "-0.5", "--samples", "64"]);
    assert!(ok && out.contains("epistemic var") && out.contains("samples used 64"), "{out}");

    // Scriptable: `--json` and a file of inputs, one JSON line (or CSV row) each; input i uses seed + i.
    let (ok, single) = bnn(&["predict", "--model", &p(&model), "--input", "0.3", "--seed", "6", "--json"]);
    assert!(ok, "{single}");
    let single: serde_json::Value = serde_json::from_str(single.trim()).unwrap();
    let inputs = dir.join("inputs.csv");
    std::fs::write(&inputs, "x\n-0.5\n0.3\n").unwrap();
    let (ok, lines) = bnn(&["predict", "--model", &p(&model), "--inputs", &p(&inputs), "--seed", "5", "--json"]);
    assert!(ok, "{lines}");
    let records: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 2, "{lines}");
    assert_eq!((records[1]["index"].as_u64(), records[1]["kind"].as_str()), (Some(1), Some("regression")));
    assert_eq!(records[1]["mean"], single["mean"], "input 1 with seed 5 + 1 is the single prediction with seed 6");
    assert_eq!(records[1]["epistemic_variance"], single["epistemic_variance"]);
    let (ok, csv) = bnn(&["predict", "--model", &p(&model), "--inputs", &p(&inputs)]);
    assert!(ok && csv.lines().count() == 3 && csv.starts_with("index,samples_used,mean0,"), "{csv}");
    std::fs::write(&inputs, "-0.5\nfoo\n").unwrap();
    let (ok, out) = bnn(&["predict", "--model", &p(&model), "--inputs", &p(&inputs), "--json"]);
    assert!(!ok && out.contains("\"error\"") && out.contains("1 of the inputs"), "{out}");
    // The same inputs as a NumPy array, float32 or float64, give the same predictions.
    let array = dir.join("inputs.npy");
    let f4: Vec<u8> = [-0.5f32, 0.3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let f8: Vec<u8> = [-0.5f64, 0.3].iter().flat_map(|v| v.to_le_bytes()).collect();
    for bytes in [npy("<f4", false, "(2, 1)", &f4), npy("<f8", false, "(2, 1)", &f8)] {
        std::fs::write(&array, bytes).unwrap();
        let (ok, out) = bnn(&["predict", "--model", &p(&model), "--inputs", &p(&array), "--seed", "5", "--json"]);
        let from_npy: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(ok && from_npy == records, "{out}");
    }
    for (bytes, says) in [
        (npy("<f4", true, "(2, 1)", &f4), "Fortran order"),
        (npy("<i4", false, "(2, 1)", &f4), "float32"),
        (npy("<f4", false, "(2, 1, 1)", &f4), "shape"),
        (npy("<f4", false, "(4000000000, 1000000)", &f4), "does not fit"),
    ] {
        std::fs::write(&array, bytes).unwrap();
        let (ok, out) = bnn(&["predict", "--model", &p(&model), "--inputs", &p(&array)]);
        assert!(!ok && out.contains(says) && !out.contains("panicked"), "{out}");
    }

    let pruned = dir.join("p.safetensors");
    let (ok, out) =
        bnn(&["prune", "--in", &p(&model), "--out", &p(&pruned), "--sparsity", "0.5", "--criterion", "snr"]);
    assert!(ok && out.contains("wrote"), "{out}");
    assert!(std::fs::metadata(&pruned).unwrap().len() < std::fs::metadata(&model).unwrap().len());
    // `info --json`: one object; the pruned file reads as f16 with about half its weights kept.
    let (ok, out) = bnn(&["info", "--model", &p(&pruned), "--json"]);
    assert!(ok, "{out}");
    let info: serde_json::Value = serde_json::from_str(&out).expect("info --json prints JSON");
    let first = &info["layers"][0];
    assert_eq!((first["kind"].as_str(), first["dtype"].as_str()), (Some("bayesian_dense"), Some("F16")), "{out}");
    assert!(matches!(first["layout"].as_str(), Some("dense" | "csr")), "{out}");
    let kept: f64 = info["layers"].as_array().unwrap().iter().filter_map(|l| l["kept_fraction"].as_f64()).sum();
    assert!(kept > 0.0 && kept < 3.0, "{out}");
    let stored = first["parameters"].as_u64().unwrap() as f64;
    let expected = 2.0 * (first["kept_fraction"].as_f64().unwrap() * 16.0 + 16.0);
    assert!((stored - expected).abs() < 0.5, "parameters {stored} vs 2 (weights kept + biases) = {expected}");

    let (ok, out) = bnn(&["eval", "--model", &p(&model), "--out-dir", &p(&dir.join("eval")), "--samples", "50"]);
    assert!(ok && out.contains("test RMSE"), "{out}");
    assert!(dir.join("eval/regression.png").exists());
    let (ok, out) =
        bnn(&["eval", "--model", &p(&model), "--out-dir", &p(&dir.join("eval")), "--samples", "50", "--json"]);
    let metrics: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(ok && metrics["test_rmse"].as_f64().is_some_and(|r| r > 0.0), "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("eval/metrics.json")).unwrap().trim(), out.trim());

    let (ok, out) = bnn(&["predict", "--model", &p(&model), "--input", "1,2"]);
    assert!(!ok && out.contains("input has 2 features"), "{out}");
    let (ok, out) = bnn(&["predict", "--model", &p(&recipe), "--input", "1"]);
    assert!(!ok && out.contains("malformed"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A model trained by `bnn train` from `recipe_text` in a fresh directory: (directory, recipe, model, output).
fn trained(name: &str, recipe_text: &str) -> (PathBuf, PathBuf, PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("bnn-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let recipe = dir.join("r.toml");
    std::fs::write(&recipe, recipe_text).unwrap();
    let model = dir.join("m.safetensors");
    let (ok, out) = bnn(&["train", "--recipe", s(&recipe), "--out", s(&model)]);
    assert!(ok, "{out}");
    (dir, recipe, model, out)
}

/// A small 1-D regression model, for the tests of mistakes below.
fn small(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (dir, recipe, model, _) = trained(
        name,
        "[data]\nsource = \"synthetic\"\nname = \"curve\"\ntrain_points = 64\ntest_points = 16\n\
         [model]\nhidden = [8]\n[likelihood]\nkind = \"gaussian\"\nsigma = 0.2\n[training]\nepochs = 2\nbatch_size = 32\n",
    );
    (dir, recipe, model)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn outputs_never_overwrite_inputs_or_a_checkpoint() {
    let (dir, recipe, model) = small("overwrite");
    let original = std::fs::read(&model).unwrap();
    let recipe_text = std::fs::read(&recipe).unwrap();

    // The input itself, by the same path, through a symlink and through a hard link.
    let link = dir.join("link.safetensors");
    std::os::unix::fs::symlink(&model, &link).unwrap();
    let hard = dir.join("hard.safetensors");
    std::fs::hard_link(&model, &hard).unwrap();
    for out in [&model, &link, &hard] {
        let (ok, text) = bnn(&["prune", "--in", s(&model), "--out", s(out), "--sparsity", "0.5"]);
        assert!(!ok && text.contains("would destroy the input"), "{text}");
    }
    assert_eq!(std::fs::read(&model).unwrap(), original, "the model is untouched");

    let (ok, text) = bnn(&["train", "--recipe", s(&recipe), "--out", s(&recipe), "--force"]);
    assert!(!ok && text.contains("would destroy the input"), "{text}");
    let (ok, text) =
        bnn(&["train", "--recipe", s(&recipe), "--out", s(&dir.join("x.safetensors")), "--checkpoint", s(&recipe)]);
    assert!(!ok && text.contains("would destroy the input"), "{text}");
    assert_eq!(std::fs::read(&recipe).unwrap(), recipe_text, "the recipe is untouched");

    let (ok, text) = bnn(&[
        "import",
        "--from",
        "bayesian-torch",
        "--state",
        s(&model),
        "--out",
        s(&model),
        "--arch",
        "1-8-1",
        "--task",
        "regression:1:sigma=0.1",
    ]);
    assert!(!ok && text.contains("would destroy the input"), "{text}");

    // A second training run to the same place finds the first one's checkpoint: refused unless asked.
    let checkpoint = dir.join("m.ckpt");
    let saved = std::fs::read(&checkpoint).unwrap();
    let (ok, text) = bnn(&["train", "--recipe", s(&recipe), "--out", s(&model)]);
    assert!(!ok && text.contains("--resume") && text.contains("--force"), "{text}");
    assert_eq!(std::fs::read(&checkpoint).unwrap(), saved, "the checkpoint is untouched");
    let (ok, text) = bnn(&["train", "--recipe", s(&recipe), "--out", s(&model), "--force"]);
    assert!(ok, "{text}");

    // Writing to a symlink writes its target and keeps the link.
    let pruned = dir.join("pruned.safetensors");
    std::fs::write(&pruned, b"placeholder").unwrap();
    let pruned_link = dir.join("pruned-link.safetensors");
    std::os::unix::fs::symlink(&pruned, &pruned_link).unwrap();
    let (ok, text) = bnn(&["prune", "--in", s(&model), "--out", s(&pruned_link), "--sparsity", "0.5"]);
    assert!(ok, "{text}");
    assert!(std::fs::symlink_metadata(&pruned_link).unwrap().file_type().is_symlink());
    assert!(std::fs::metadata(&pruned).unwrap().len() > 100, "the target got the model");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pruning_that_empties_a_layer_is_refused_unless_asked_for() {
    let (dir, _, model) = small("empty-layer");
    let out = dir.join("p.safetensors");
    let (ok, text) = bnn(&["prune", "--in", s(&model), "--out", s(&out), "--sparsity", "1.0"]);
    assert!(!ok && text.contains("removes every weight of layer"), "{text}");
    assert!(!out.exists(), "nothing written");
    let (ok, text) = bnn(&["prune", "--in", s(&model), "--out", s(&out), "--sparsity", "1.0", "--allow-empty-layers"]);
    assert!(ok && out.exists(), "{text}");
    // A floor per layer keeps each layer's best weights instead, and the report says how sparse the model is.
    let floored = dir.join("floored.safetensors");
    let args = ["prune", "--in", s(&model), "--out", s(&floored), "--sparsity", "1.0", "--min-kept-fraction", "0.1"];
    let (ok, text) = bnn(&args);
    assert!(ok && !text.contains("pruning at 100.0%"), "{text}");
    let (ok, info) = bnn(&["info", "--model", s(&floored), "--json"]);
    let layers = serde_json::from_str::<serde_json::Value>(&info).unwrap()["layers"].clone();
    for layer in layers.as_array().unwrap().iter().filter(|l| l["kind"] == "bayesian_dense") {
        let kept = layer["kept_fraction"].as_f64().unwrap();
        assert!(ok && (0.1..0.2).contains(&kept), "{layer}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn zero_counts_are_refused_and_a_closed_pipe_does_not_panic() {
    let (dir, _, model) = small("counts");
    for args in [
        vec!["eval", "--model", s(&model), "--out-dir", s(&dir), "--test-limit", "0"],
        vec!["prune-sweep", "--model", s(&model), "--out-dir", s(&dir), "--test-limit", "0"],
        vec!["prune-sweep", "--model", s(&model), "--out-dir", s(&dir), "--latency-reps", "0"],
    ] {
        let (ok, text) = bnn(&args);
        assert!(!ok && text.contains("must be at least 1") && !text.contains("panicked"), "{args:?}: {text}");
    }
    // The reader goes away before `bnn` writes: the process ends without a panic message.
    let mut child = Command::new(env!("CARGO_BIN_EXE_bnn"))
        .args(["info", "--model", s(&model)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flag_mistakes_are_named_early_and_as_flags() {
    let (dir, recipe, model) = small("flags");
    // The demo checks its flags before it trains.
    let (ok, text) = bnn(&["demo", "--out-dir", s(&dir.join("demo")), "--sparsity", "1.5"]);
    assert!(!ok && text.contains("--sparsity must lie in [0, 1]") && !text.contains("1/5"), "{text}");
    // A bad flag is not called a bad recipe.
    let (ok, text) = bnn(&["prune", "--in", s(&model), "--out", s(&dir.join("p.safetensors")), "--sparsity", "1.5"]);
    assert!(!ok && text.contains("invalid argument") && !text.contains("invalid recipe"), "{text}");
    // A data path for a synthetic recipe would be ignored: refused.
    let (ok, text) =
        bnn(&["train", "--recipe", s(&recipe), "--out", s(&dir.join("d.safetensors")), "--data", s(&recipe)]);
    assert!(!ok && text.contains("synthetic"), "{text}");
    // Resuming a 2-epoch checkpoint with --epochs 1 would quietly write the longer run: refused.
    let (ok, text) = bnn(&["train", "--recipe", s(&recipe), "--out", s(&model), "--resume", "--epochs", "1"]);
    assert!(!ok && text.contains("2 epochs done"), "{text}");
    // An output directory that cannot be made is named.
    let blocker = dir.join("file");
    std::fs::write(&blocker, b"").unwrap();
    let (ok, text) = bnn(&["eval", "--model", s(&model), "--out-dir", s(&blocker.join("sub"))]);
    assert!(!ok && text.contains(s(&blocker.join("sub"))), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn calibration_is_fitted_on_held_out_examples_and_eval_scores_its_decisions() {
    let classifier = |validation: usize| {
        format!(
            "[data]\nsource = \"synthetic\"\nname = \"two_moons\"\ntrain_points = 400\ntest_points = 200\n\
             [model]\nhidden = [16]\n[training]\nepochs = 5\nbatch_size = 32\nlearning_rate = 0.01\nvalidation = {validation}\n"
        )
    };
    // Without a validation set every training example was seen: refused.
    let (dir, _, unseen, _) = trained("calibrate-none", &classifier(0));
    let (ok, text) = bnn(&["calibrate", "--model", s(&unseen), "--out", s(&dir.join("c.safetensors"))]);
    assert!(!ok && text.contains("training.validation"), "{text}");
    let (ok, text) = bnn(&["eval", "--model", s(&unseen), "--out-dir", s(&dir.join("e")), "--split", "validation"]);
    assert!(!ok && text.contains("training.validation"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();

    let (dir, _, model, _) = trained("calibrate", &classifier(150));
    // `eval --split validation` measures the 150 held-out examples, not the 200 test points.
    let (ok, json) = bnn(&[
        "eval",
        "--model",
        s(&model),
        "--out-dir",
        s(&dir.join("val")),
        "--split",
        "validation",
        "--json",
        "--shift-limit",
        "4",
    ]);
    assert!(ok, "{json}");
    let eval: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(eval["test"]["examples"].as_u64(), Some(150), "{json}");
    let md = std::fs::read_to_string(dir.join("val/eval.md")).unwrap();
    assert!(md.contains("150 validation images"), "{md}");
    let out = dir.join("calibrated.safetensors");
    let args =
        ["calibrate", "--model", s(&model), "--out", s(&out), "--levels", "0.8,0.95", "--abstain-coverage", "0.9"];
    let (ok, text) = bnn(&args);
    assert!(ok && text.contains("150 held-out validation examples") && text.contains("temperature"), "{text}");
    let by_risk = dir.join("by-risk.safetensors");
    let (ok, text) = bnn(&["calibrate", "--model", s(&model), "--out", s(&by_risk), "--abstain-risk", "0.02"]);
    assert!(ok && text.contains("abstain below confidence"), "{text}");
    let (ok, info) = bnn(&["info", "--model", s(&out)]);
    assert!(ok && info.contains("calibrated temperature") && info.contains("0.8: "), "{info}");
    let (ok, json) =
        bnn(&["eval", "--model", s(&out), "--out-dir", s(&dir.join("eval")), "--json", "--shift-limit", "4"]);
    assert!(ok, "{json}");
    let eval: serde_json::Value = serde_json::from_str(&json).unwrap();
    let decisions = &eval["decisions"];
    let levels: Vec<f64> = decisions["sets"].as_array().unwrap().iter().map(|s| s["level"].as_f64().unwrap()).collect();
    assert_eq!(levels.len(), 2, "{decisions}");
    let coverage = |i: usize| decisions["sets"][i]["coverage"].as_f64().unwrap();
    assert!(coverage(0) <= coverage(1), "nested sets cover more at the higher level: {decisions}");
    let answered = decisions["abstention"]["coverage"].as_f64().unwrap();
    assert!((0.7..=1.0).contains(&answered), "{decisions}");
    assert!(dir.join("eval/risk_coverage.png").exists());
    // And how its sets treat each out-of-distribution set, per level.
    for row in eval["ood"].as_array().unwrap() {
        assert_eq!(row["conformal"].as_array().map(Vec::len), Some(2), "{row}");
    }
    // `predict --level` gives the decision of each input; an uncalibrated model or an unstored level is refused.
    let inputs = dir.join("xs.csv");
    std::fs::write(&inputs, "0.1,0.2\n1.5,-0.4\n").unwrap();
    let (ok, lines) = bnn(&["predict", "--model", s(&out), "--inputs", s(&inputs), "--level", "0.95", "--json"]);
    assert!(ok, "{lines}");
    for line in lines.lines() {
        let d = &serde_json::from_str::<serde_json::Value>(line).unwrap()["decision"];
        assert!(d["prediction_set"].is_array() && d["abstain"].is_boolean() && d["level"] == 0.95, "{line}");
    }
    let (ok, csv) = bnn(&["predict", "--model", s(&out), "--inputs", s(&inputs), "--level", "0.8"]);
    assert!(ok && csv.lines().next().unwrap().ends_with(",set,abstain"), "{csv}");
    let (ok, text) = bnn(&["predict", "--model", s(&out), "--input", "0.1,0.2", "--level", "0.5"]);
    assert!(!ok && text.contains("not stored"), "{text}");
    let (ok, text) = bnn(&["predict", "--model", s(&model), "--input", "0.1,0.2", "--level", "0.95"]);
    assert!(!ok && text.contains("not calibrated"), "{text}");
    // The uncalibrated model's evaluation has no decisions.
    let (_, plain) =
        bnn(&["eval", "--model", s(&model), "--out-dir", s(&dir.join("plain")), "--json", "--shift-limit", "4"]);
    assert!(serde_json::from_str::<serde_json::Value>(&plain).unwrap().get("decisions").is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_regression_model_is_calibrated_into_conformal_intervals() {
    let (dir, _, model, _) = trained(
        "calibrate-regression",
        "[data]\nsource = \"synthetic\"\nname = \"curve\"\ntrain_points = 300\ntest_points = 200\n\
         [model]\nhidden = [16]\n[likelihood]\nkind = \"gaussian\"\nsigma = 0.2\n\
         [training]\nepochs = 3\nbatch_size = 32\nvalidation = 100\n",
    );
    let out = dir.join("calibrated.safetensors");
    let (ok, text) = bnn(&["calibrate", "--model", s(&model), "--out", s(&out), "--levels", "0.8,0.9"]);
    assert!(ok && text.contains("interval thresholds"), "{text}");
    let (ok, text) =
        bnn(&["calibrate", "--model", s(&model), "--out", s(&dir.join("x.safetensors")), "--abstain-coverage", "0.9"]);
    assert!(!ok && text.contains("classifiers"), "{text}");
    let (ok, json) = bnn(&["eval", "--model", s(&out), "--out-dir", s(&dir.join("eval")), "--json"]);
    assert!(ok, "{json}");
    let conformal = serde_json::from_str::<serde_json::Value>(&json).unwrap()["conformal"].clone();
    let coverage = |i: usize| conformal[i]["coverage"].as_f64().unwrap();
    let width = |i: usize| conformal[i]["mean_width"].as_f64().unwrap();
    // 200 test points: the coverage of an 80% interval is 0.8 ± 0.03 (binomial sd), here within ±0.12.
    assert!((0.68..=0.95).contains(&coverage(0)) && coverage(0) <= coverage(1) && width(0) < width(1), "{conformal}");
    let (ok, line) = bnn(&["predict", "--model", s(&out), "--input", "0.25", "--level", "0.9", "--json"]);
    let d = serde_json::from_str::<serde_json::Value>(line.trim()).unwrap()["decision"].clone();
    assert!(ok && d["lower"][0].as_f64() < d["upper"][0].as_f64(), "{line}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bayesian_cnn_trains_prunes_and_predicts_from_the_command_line() {
    let (dir, _, model, out) = trained(
        "cnn",
        "[data]\nsource = \"synthetic\"\nname = \"bars\"\ntrain_points = 200\ntest_points = 50\n\
         [model]\narch = \"1x8x8-conv4k3p1-maxpool2-flatten-16\"\n[training]\nepochs = 2\nbatch_size = 50\n",
    );
    assert!(out.contains("epoch   2"), "{out}");
    let (ok, info) = bnn(&["info", "--model", s(&model), "--json"]);
    assert!(ok, "{info}");
    let info: serde_json::Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(info["input_shape"], serde_json::json!([1, 8, 8]), "{info}");

    let pruned = dir.join("p.safetensors");
    let (ok, out) = bnn(&["prune", "--in", s(&model), "--out", s(&pruned), "--sparsity", "0.5", "--criterion", "snr"]);
    assert!(ok, "{out}");
    let (ok, info) = bnn(&["info", "--model", s(&pruned)]);
    let conv_row = info.lines().find(|l| l.contains("bayesian_conv2d")).unwrap_or_default();
    assert!(ok && conv_row.contains("dense F16,") && conv_row.contains("% kept"), "{info}");

    let image = vec!["0"; 64].join(",");
    let (ok, out) = bnn(&["predict", "--model", s(&pruned), "--input", &image, "--json"]);
    assert!(ok, "{out}");
    let p: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(p["probabilities"].as_array().map(Vec::len), Some(2), "{p}");
    let (ok, out) = bnn(&["predict", "--model", s(&pruned), "--input", "0,1"]);
    assert!(!ok && out.contains("64"), "a wrong input length is named: {out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compare_tests_two_classifiers_on_the_same_images_and_refuses_what_cannot_be_compared() {
    let classifier = |hidden: usize, seed: u64| {
        format!(
            "[data]\nsource = \"synthetic\"\nname = \"two_moons\"\ntrain_points = 400\ntest_points = 200\n\
             [model]\nhidden = [{hidden}]\n[training]\nepochs = 5\nbatch_size = 32\nlearning_rate = 0.01\n\
             validation = 100\nseed = {seed}\n"
        )
    };
    let (dir_a, _, a, _) = trained("compare-a", &classifier(16, 1));
    let (dir_b, _, b, _) = trained("compare-b", &classifier(4, 1));
    let (dir_c, _, c, _) = trained("compare-c", &classifier(16, 2));
    let compare = |x: &Path, y: &Path, extra: &[&str]| {
        let mut args = vec!["compare", "--model", s(x), "--against", s(y), "--shift-limit", "50", "--json"];
        args.extend_from_slice(extra);
        let (ok, out) = bnn(&args);
        assert!(ok, "{out}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let f = |v: &serde_json::Value| v.as_f64().unwrap();

    // A model against itself: every difference is 0 and could be chance.
    let same = compare(&a, &a, &[]);
    assert_eq!(same["examples"].as_u64(), Some(200), "{same}");
    assert_eq!((same["error"]["only_a_right"].as_u64(), same["error"]["only_b_right"].as_u64()), (Some(0), Some(0)));
    assert_eq!((f(&same["nll"]["difference"]), f(&same["nll"]["p_value"])), (0.0, 1.0), "{same}");
    let ood = same["ood"].as_array().unwrap();
    assert_eq!(ood.len(), 3, "{same}");
    for row in ood {
        assert_eq!(f(&row["auroc_by_mutual_information"]["difference"]), 0.0, "{row}");
    }

    // Two models: the difference is A − B of the two figures, each of which `bnn eval` reports.
    let pair = compare(&a, &b, &[]);
    let nll = &pair["nll"];
    assert!((f(&nll["difference"]) - (f(&nll["a"]) - f(&nll["b"]))).abs() < 1e-12, "{pair}");
    assert!(f(&nll["standard_error"]) > 0.0 && (0.0..=1.0).contains(&f(&nll["p_value"])), "{pair}");
    let (ok, json) =
        bnn(&["eval", "--model", s(&a), "--out-dir", s(&dir_a.join("eval")), "--json", "--shift-limit", "50"]);
    assert!(ok, "{json}");
    let eval: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!((f(&eval["test"]["nll"]) - f(&nll["a"])).abs() < 1e-12, "{json}");
    assert!((f(&eval["test"]["error"]) - f(&pair["error"]["a"])).abs() < 1e-12, "{json}");
    for (mine, theirs) in pair["ood"].as_array().unwrap().iter().zip(eval["ood"].as_array().unwrap()) {
        let auroc = f(&mine["auroc_by_mutual_information"]["a"]);
        assert!((auroc - f(&theirs["by_mutual_information"]["auroc"])).abs() < 1e-12, "{mine} / {theirs}");
    }
    let (ok, md) = bnn(&["compare", "--model", s(&a), "--against", s(&b), "--shift-limit", "50"]);
    assert!(ok && md.contains("| NLL |") && md.contains("| AUROC by MI, inverted |"), "{md}");

    // On the validation images: the same held-out images (same data and seed) are compared; others are refused.
    let val = compare(&a, &b, &["--split", "validation"]);
    assert_eq!(val["examples"].as_u64(), Some(100), "{val}");
    let (ok, text) =
        bnn(&["compare", "--model", s(&a), "--against", s(&c), "--split", "validation", "--shift-limit", "50"]);
    assert!(!ok && text.contains("different validation images"), "{text}");
    // A regression model is not a classifier.
    let (dir_r, _, regression) = small("compare-r");
    let (ok, text) = bnn(&["compare", "--model", s(&a), "--against", s(&regression)]);
    assert!(!ok && text.contains("not a classifier"), "{text}");
    for dir in [dir_a, dir_b, dir_c, dir_r] {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
