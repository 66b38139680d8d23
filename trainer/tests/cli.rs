//! The `bnn` binary end to end on a small synthetic recipe: train, info, predict, prune, eval; and clear
//! errors for bad input.

use std::path::Path;
use std::process::Command;

fn bnn(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bnn")).args(args).output().expect("the bnn binary runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn train_predict_prune_and_eval_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("bnn-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let recipe = dir.join("r.toml");
    std::fs::write(
        &recipe,
        "[data]\nsource = \"synthetic\"\nname = \"heteroscedastic\"\ntrain_points = 128\ntest_points = 32\n\
         [model]\nhidden = [16]\n[likelihood]\nkind = \"heteroscedastic\"\n[training]\nepochs = 3\nbatch_size = 32\n",
    )
    .unwrap();
    let model = dir.join("m.safetensors");
    let p = |x: &Path| x.to_str().unwrap().to_string();

    let (ok, out) = bnn(&["train", "--recipe", &p(&recipe), "--out", &p(&model)]);
    assert!(ok, "{out}");
    assert!(out.contains("epoch   3"), "{out}");
    assert!(dir.join("m.ckpt").exists(), "a checkpoint is written");

    let (ok, out) = bnn(&["info", "--model", &p(&model)]);
    assert!(ok && out.contains("Heteroscedastic"), "{out}");

    let (ok, out) = bnn(&["predict", "--model", &p(&model), "--input", "-0.5", "--samples", "64"]);
    assert!(ok && out.contains("epistemic var") && out.contains("samples used 64"), "{out}");

    let pruned = dir.join("p.safetensors");
    let (ok, out) =
        bnn(&["prune", "--in", &p(&model), "--out", &p(&pruned), "--sparsity", "0.9", "--criterion", "snr"]);
    assert!(ok && out.contains("wrote"), "{out}");
    assert!(std::fs::metadata(&pruned).unwrap().len() < std::fs::metadata(&model).unwrap().len());

    let (ok, out) = bnn(&["eval", "--model", &p(&model), "--out-dir", &p(&dir.join("eval")), "--samples", "50"]);
    assert!(ok && out.contains("test RMSE"), "{out}");
    assert!(dir.join("eval/regression.png").exists());

    let (ok, out) = bnn(&["predict", "--model", &p(&model), "--input", "1,2"]);
    assert!(!ok && out.contains("input has 2 features"), "{out}");
    let (ok, out) = bnn(&["predict", "--model", &p(&recipe), "--input", "1"]);
    assert!(!ok && out.contains("malformed"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
