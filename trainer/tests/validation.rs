//! A validation set held out of the training set chooses the shipped epoch: the exported model is the epoch
//! with the lowest validation NLL (bit for bit the weights of a run stopped there), `patience` stops the run,
//! and a resumed run chooses the same epoch as an uninterrupted one. The test set chooses nothing.

use bnn_runtime::{Model, ModelWriter};
use bnn_trainer::{Recipe, Run};
use candle_core::Device;

fn recipe(epochs: usize, learning_rate: f64, extra: &str) -> Recipe {
    Recipe::from_toml(&format!(
        "[data]\nsource = \"synthetic\"\nname = \"two_moons\"\ntrain_points = 160\ntest_points = 40\n\
         [model]\nhidden = [8]\n\
         [training]\nepochs = {epochs}\nbatch_size = 32\nlearning_rate = {learning_rate}\nseed = 9\nvalidation = 40\n{extra}"
    ))
    .unwrap()
}

fn trained(r: Recipe) -> Run {
    let mut run = Run::new(r, None, Device::Cpu).unwrap();
    run.train(None, &mut ()).unwrap();
    run
}

/// The weights alone (provenance records wall-clock times).
fn weights(model: &Model) -> Vec<u8> {
    ModelWriter::new(&model.clone().with_provenance(Default::default())).to_bytes().unwrap()
}

/// The first epoch (1-based) with the lowest validation NLL.
fn lowest(run: &Run) -> usize {
    let nll = |e: usize| run.history[e - 1].validation.as_ref().unwrap().nll;
    (1..=run.history.len()).fold(1, |best, e| if nll(e) < nll(best) { e } else { best })
}

#[test]
fn the_exported_model_is_the_epoch_with_the_lowest_validation_nll() {
    let run = trained(recipe(8, 0.05, ""));
    assert_eq!(run.split.train.len(), 120, "40 of the 160 training points are held out");
    assert_eq!(run.validation.as_ref().unwrap().len(), 40);
    assert!(run.history.iter().all(|m| m.validation.is_some()));
    let chosen = lowest(&run);
    let model = run.export().unwrap();
    assert_eq!(model.provenance().extra["selected_epoch"], serde_json::json!(chosen));
    // Training is a function of the recipe, so a run of `chosen` epochs ends with exactly those weights.
    let stopped_there = trained(recipe(chosen, 0.05, "")).export().unwrap();
    assert_eq!(weights(&model), weights(&stopped_there), "epoch {chosen} of 8");
}

#[test]
fn patience_stops_the_run_that_many_epochs_after_the_best_one() {
    // A step size this large makes the validation NLL wander, so it stops long before 60 epochs.
    let run = trained(recipe(60, 0.5, "patience = 2"));
    let chosen = lowest(&run);
    assert!(run.epochs_done < 60, "{}", run.epochs_done);
    assert_eq!(run.epochs_done, chosen + 2);
    assert!(
        Recipe::from_toml("[data]\nsource = \"synthetic\"\n[training]\npatience = 3\n").is_err(),
        "needs validation"
    );
}

#[test]
fn a_resumed_run_chooses_the_epoch_an_uninterrupted_run_chooses() {
    let dir = std::env::temp_dir().join(format!("bnn-validation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("run.ckpt");
    let uninterrupted = trained(recipe(8, 0.05, ""));
    // Epoch 6 of 8 has the lowest validation NLL: the resumed run ships the model its checkpoint carried.
    assert_eq!(lowest(&uninterrupted), 6);
    let mut first = Run::new(recipe(6, 0.05, ""), None, Device::Cpu).unwrap();
    first.train(Some(&ckpt), &mut ()).unwrap();
    drop(first);
    let mut resumed = Run::new(recipe(8, 0.05, ""), None, Device::Cpu).unwrap();
    resumed.resume_from(&ckpt).unwrap();
    resumed.train(Some(&ckpt), &mut ()).unwrap();
    let (a, b) = (resumed.export().unwrap(), uninterrupted.export().unwrap());
    assert_eq!(a.provenance().extra["selected_epoch"], b.provenance().extra["selected_epoch"]);
    assert_eq!(weights(&a), weights(&b));
    std::fs::remove_dir_all(&dir).unwrap();
}
