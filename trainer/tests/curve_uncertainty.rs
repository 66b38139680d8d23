//! On the paper's 1-D curve (inputs in [0, 0.5]) a Bayes-by-Backprop network is uncertain far from the data:
//! its epistemic standard deviation outside the training range is several times the one inside it, and the
//! shipped recipe fits the true mean.

use bnn_runtime::{Model, PredictOptions};
use bnn_trainer::evaluate::regression::regression_study;
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

/// The shipped curve recipe (the README's demo): its predictive mean follows the data's true E[y | x] inside the
/// data, its test RMSE sits at the noise floor (the RMSE of E[y | x] itself), and its epistemic sd far outside the
/// data is at least ten times the one inside.
#[test]
fn the_shipped_curve_recipe_follows_the_true_mean_at_the_noise_floor() {
    let recipe = Recipe::from_toml(include_str!("../../models/curve-bbb.toml")).unwrap();
    let truth = bnn_trainer::data::conditional_mean(&recipe.data);
    let mut run = Run::new(recipe, None, Device::Cpu).unwrap();
    run.train(None, &mut ()).unwrap();
    let model = run.export().unwrap();
    let raw = bnn_trainer::data::load(&run.recipe.data, None, run.recipe.training.seed).unwrap();
    let (m, _) = regression_study(&model, &raw.train, &raw.test, truth, 256).unwrap();
    let t = m.truth.as_ref().expect("the curve's E[y | x] is known");
    assert!(t.mean_rmse_inside < 0.05, "{m:?}");
    assert!(m.test_rmse < t.test_rmse_floor + 0.01, "{m:?}");
    assert!(m.outside_over_inside >= 10.0, "{m:?}");
}
