//! On the paper's 1-D curve (inputs in [0, 0.5]) a Bayes-by-Backprop network is uncertain far from the data:
//! its epistemic standard deviation outside the training range is several times the one inside it.

use bnn_runtime::{Model, PredictOptions};
use bnn_trainer::{Recipe, Run};
use candle_core::Device;

#[test]
fn epistemic_uncertainty_grows_several_fold_away_from_the_training_data() {
    let recipe = Recipe::from_toml(
        r#"
[data]
source = "synthetic"
name = "curve"
train_points = 128
[model]
hidden = [32, 32]
[likelihood]
kind = "gaussian"
sigma = 0.1414
[training]
epochs = 150
batch_size = 32
learning_rate = 0.005
"#,
    )
    .unwrap();
    let mut run = Run::new(recipe, None, Device::Cpu).unwrap();
    run.train(None, &mut ()).unwrap();
    let model: Model = run.export().unwrap();
    let sd = |x: f32| {
        let p = model.predict(&[x], &PredictOptions::default().samples(2000).seed(1)).unwrap();
        p.as_regression().unwrap().epistemic_variance[0].sqrt()
    };
    let inside = [0.1, 0.2, 0.3, 0.4].map(sd).iter().sum::<f32>() / 4.0;
    let outside = [-0.5, 1.0, 1.2].map(sd).iter().sum::<f32>() / 3.0;
    assert!(outside > 3.0 * inside, "epistemic sd inside {inside}, outside {outside}");
}
