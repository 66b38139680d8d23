//! Fine-tuning after pruning retrains the surviving weights and keeps the pruned ones absent, in dense layers and
//! in convolution kernels.

use bnn_runtime::{Layer, Model};
use bnn_trainer::prune::{prune, Criterion};
use bnn_trainer::{Recipe, Run};
use candle_core::Device;

const RECIPE: &str = r#"
[data]
source = "synthetic"
name = "two_moons"
train_points = 200
test_points = 50
[model]
hidden = [16]
rho_init = -3.0
[training]
epochs = 3
batch_size = 50
learning_rate = 0.01
"#;

const CNN_RECIPE: &str = r#"
[data]
source = "synthetic"
name = "bars"
train_points = 200
test_points = 50
[model]
arch = "1x8x8-conv4k3p1-maxpool2-flatten-16"
rho_init = -3.0
[training]
epochs = 2
batch_size = 50
learning_rate = 0.01
"#;

fn weights(m: &Model) -> Vec<(Vec<f32>, Vec<f32>)> {
    m.layers()
        .iter()
        .filter_map(|l| match l {
            Layer::BayesianDense(b) => Some((b.dense_weight_mu(), b.dense_weight_sigma())),
            Layer::BayesianConv2d(c) => Some((c.weight_mu().to_vec(), c.weight_sigma().to_vec())),
            _ => None,
        })
        .collect()
}

#[test]
fn fine_tuning_keeps_pruned_weights_absent_and_changes_the_survivors() {
    for recipe in [RECIPE, CNN_RECIPE] {
        fine_tune_after_pruning(recipe);
    }
}

fn fine_tune_after_pruning(recipe: &str) {
    let mut run = Run::new(Recipe::from_toml(recipe).unwrap(), None, Device::Cpu).unwrap();
    run.train(None, &mut ()).unwrap();
    let (pruned, report) = prune(&run.export().unwrap(), 0.8, Criterion::Snr, 0).unwrap();
    // Every weighted layer took part in the one global threshold.
    assert_eq!(report.kept_fraction.len(), weights(&pruned).len());

    let mut tune = Run::from_model(&pruned, Recipe::from_toml(recipe).unwrap(), None, Device::Cpu).unwrap();
    tune.train(None, &mut ()).unwrap();
    let tuned = tune.export().unwrap();
    let mut changed = 0;
    for ((mu0, s0), (mu1, s1)) in weights(&pruned).into_iter().zip(weights(&tuned)) {
        for k in 0..mu0.len() {
            let was_pruned = mu0[k] == 0.0 && s0[k] == 0.0;
            if was_pruned {
                assert_eq!((mu1[k], s1[k]), (0.0, 0.0), "pruned weight {k} came back");
            } else {
                assert!(s1[k] > 0.0);
                changed += (mu1[k] != mu0[k]) as usize;
            }
        }
    }
    assert!(changed > 0, "fine-tuning must move the surviving weights");
}
