//! Builds a small Bayesian regression model in code, saves it, loads it back and prints predictions with
//! their uncertainty: inside the range the weights were "fitted" on, and far outside it.
//!
//! `cargo run --release -p bnn-runtime --example quickstart [-- out.safetensors]`

use bnn_runtime::{
    Activation, BayesianDense, Layer, Model, ModelWriter, NoiseModel, PredictOptions, Provenance, SeededRng, Task,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| std::env::temp_dir().join("quickstart.safetensors").display().to_string());
    let mut rng = SeededRng::new(1);
    let mut gauss = |n: usize, scale: f32| (0..n).map(|_| rng.gaussian() * scale).collect::<Vec<f32>>();
    let layers = vec![
        Layer::BayesianDense(BayesianDense::new(1, 32, gauss(32, 1.0), vec![0.05; 32], gauss(32, 1.0), vec![0.05; 32])),
        Layer::Activation(Activation::Tanh),
        Layer::BayesianDense(BayesianDense::new(32, 1, gauss(32, 0.2), vec![0.05; 32], vec![0.0], vec![0.05])),
    ];
    let task = Task::Regression { outputs: 1, noise: NoiseModel::Homoscedastic { sigma: 0.05 } };
    let model =
        Model::new(layers, task, None, Provenance { producer: Some("quickstart".into()), ..Default::default() })?;
    ModelWriter::new(&model).write(&path)?;
    let model = Model::load(&path)?;
    println!("saved and reloaded {path}: {} inputs, {} layers", model.input_dim(), model.layers().len());
    println!("{:>6}  {:>8}  {:>10}  {:>10}  {:>18}", "x", "mean", "aleatoric", "epistemic", "95% interval");
    for x in [-4.0f32, -1.0, 0.0, 1.0, 4.0] {
        let p = model.predict(&[x], &PredictOptions::default().samples(256).seed(7))?;
        let r = p.as_regression().expect("a regression model");
        println!(
            "{x:>6.1}  {:>8.3}  {:>10.5}  {:>10.5}  [{:>7.3}, {:>7.3}]",
            r.mean[0], r.aleatoric_variance[0], r.epistemic_variance[0], r.lower[0], r.upper[0]
        );
    }
    Ok(())
}
