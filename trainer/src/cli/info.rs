//! `bnn info`: what a model file holds.

use bnn_runtime::{Layer, Model};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct InfoArgs {
    #[arg(long)]
    model: PathBuf,
}

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    let model = Model::load(&a.model)?;
    println!("file      {} ({} bytes)", a.model.display(), std::fs::metadata(&a.model)?.len());
    println!("task      {:?}", model.task());
    println!("inputs    {}", model.input_dim());
    for (i, layer) in model.layers().iter().enumerate() {
        let text = match layer {
            Layer::BayesianDense(l) => format!("bayesian_dense {} -> {}", l.in_features(), l.out_features()),
            Layer::Dense(l) => format!("dense {} -> {}", l.in_features(), l.out_features()),
            Layer::Dropout(d) => format!("dropout p={}", d.p()),
            Layer::Activation(a) => format!("activation {a:?}"),
        };
        println!("layer {i:<3} {text}");
    }
    println!("normalized {}", model.normalization().is_some());
    let mut p = model.provenance().clone();
    p.recipe = p.recipe.map(|r| format!("<{} bytes>", r.len()));
    println!("provenance {}", serde_json::to_string(&p)?);
    Ok(())
}
