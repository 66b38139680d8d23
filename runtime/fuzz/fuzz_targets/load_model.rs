//! Fuzz target: `Model::from_bytes` on arbitrary bytes must return a model or a typed error, never panic, never
//! allocate beyond libFuzzer's malloc limit; a model that loads must also predict (Mean and 4 LRT samples).
#![no_main]

use bnn_runtime::{Model, PredictOptions, Sampler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = Model::from_bytes(data) {
        let input = vec![0.5f32; model.input_dim()];
        let _ = model.predict(&input, &PredictOptions::default().sampler(Sampler::Mean));
        let _ = model.predict(&input, &PredictOptions::default().samples(4));
    }
});
