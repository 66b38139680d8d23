//! A batch of inputs: the first dense layer of up to eight inputs at a time (each weight read once per group),
//! then each input's own Monte-Carlo loop, with the bits of its single prediction.

use super::shared::DrawnNetworks;
use super::{finite, Pass, PredictOptions, Predictor};
use crate::error::PredictError;
use crate::kernels::{Compiled, Lanes, INPUT_LANES};
use crate::layers::Layer;
use crate::model::Model;
use crate::prelude::*;
use crate::uncertainty::Prediction;

impl Predictor<'_> {
    /// Predicts every input of a row-major batch (`inputs.len()` a multiple of the input size). Item `i`
    /// uses seed `options.seed + i` (wrapping), so it equals [`Predictor::predict`] with that seed. A dense first
    /// layer that runs once per input (deterministic, or Bayesian with its mean weights or its moments for local
    /// reparameterization) runs for eight inputs at a time: its weights are read once per group, with the same
    /// bits.
    ///
    /// With [`Sampler::SharedWeights`](crate::Sampler::SharedWeights) every item sees the same networks, drawn from
    /// `options.seed`, a first Bayesian dense layer's noise included, so an item's result depends on the seed and
    /// its input only (`predict/shared.rs`).
    pub fn predict_batch(&mut self, inputs: &[f32], options: &PredictOptions) -> Result<Vec<Prediction>, PredictError> {
        self.predict_batch_from(inputs, options, 0, None)
    }

    /// [`Self::predict_batch`] of the part of a batch that starts at its item `first`; with shared weights, the
    /// networks `drawn` by the threads of a parallel batch, or drawn here.
    pub(crate) fn predict_batch_from(
        &mut self,
        inputs: &[f32],
        options: &PredictOptions,
        first: usize,
        drawn: Option<&dyn DrawnNetworks>,
    ) -> Result<Vec<Prediction>, PredictError> {
        let d = self.model.input_dim();
        if !inputs.len().is_multiple_of(d) {
            return Err(PredictError::BatchLength { input_dim: d, found: inputs.len() });
        }
        if self.shares_weights(options.sampler) {
            return self.predict_shared(inputs, options, drawn);
        }
        let item = |i: usize| options.seed(options.seed.wrapping_add((first + i) as u64));
        let pass = self.pass(options.sampler);
        let first = self.model.layers().first().filter(|_| !inputs.is_empty());
        let (first, moments) = match (first, pass) {
            (Some(l @ Layer::BayesianDense(_)), Pass::LocalReparam) => (l, true),
            (Some(l @ (Layer::BayesianDense(_) | Layer::Dense(_))), _) if self.prefix_end(pass) > 0 => (l, false),
            _ => return inputs.chunks_exact(d).enumerate().map(|(i, x)| self.predict(x, &item(i))).collect(),
        };
        options.validate()?;
        let o = first.dense_sizes().map_or(0, |(_, o)| o);
        let mut lanes = InputLanes::new(d, o);
        let mut out = Vec::with_capacity(inputs.len() / d);
        for (k, group) in inputs.chunks(d * INPUT_LANES).enumerate() {
            let items = group.chunks_exact(d).enumerate().map(|(i, x)| (i, k * INPUT_LANES + i, x));
            let row = &mut self.a[..d];
            if !self.isa.run(FirstLayer { model: self.model, layer: first, moments, group, row, lanes: &mut lanes }) {
                for (_, i, x) in items {
                    out.push(self.predict(x, &item(i))?);
                }
                continue;
            }
            for (lane, i, x) in items {
                finite(x)?;
                if moments {
                    for (j, (m, s)) in lanes.mean.iter().zip(&lanes.sd).enumerate() {
                        (self.prefix[j], self.prefix_sd[j]) = (m[lane], s[lane]);
                    }
                    self.prefix_width = o;
                } else {
                    self.a[..o].iter_mut().zip(&lanes.mean).for_each(|(a, y)| *a = y[lane]);
                    self.finish_prefix(pass, 1, o);
                }
                out.push(self.sample_prepared(pass, &item(i))?);
            }
        }
        Ok(out)
    }
}

/// A group of up to [`INPUT_LANES`] inputs of a batch, transposed for the first layer, and that layer's outputs
/// (or pre-activation moments) of each.
pub(super) struct InputLanes {
    /// `xt[c][i]`: value `c` of input `i`, normalised (0 in lanes past the group's end and for an input with a
    /// non-finite value, which its own prediction then reports); before a first Bayesian dense layer, `xt` and
    /// `xt_x2` are the `u` and `z` of its expansion (`layers/raw_zero.rs`).
    xt: Vec<Lanes>,
    xt_x2: Vec<Lanes>,
    /// The layer's outputs, or the means of its pre-activations, and their standard deviations.
    pub(super) mean: Vec<Lanes>,
    pub(super) sd: Vec<Lanes>,
}

impl InputLanes {
    pub(super) fn new(inputs: usize, outputs: usize) -> Self {
        let lanes = |n: usize| vec![[0.0; INPUT_LANES]; n];
        Self { xt: lanes(inputs), xt_x2: lanes(inputs), mean: lanes(outputs), sd: lanes(outputs) }
    }

    /// Loads `group` (up to [`INPUT_LANES`] inputs of `row.len()` values), each normalised by `model` in `row`,
    /// and shifted for a first Bayesian dense layer's expansion (`layers/raw_zero.rs`).
    // Inlined where `Isa::run` compiles it (x86-64); one copy elsewhere (android/README.md, "Size").
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub(super) fn transpose(&mut self, model: &Model, group: &[f32], row: &mut [f32]) {
        self.xt.iter_mut().for_each(|v| *v = [0.0; INPUT_LANES]);
        for (i, x) in group.chunks_exact(row.len()).enumerate() {
            let Ok(x) = finite(x) else { continue };
            match model.normalization() {
                Some(n) => n.apply(x, row),
                None => row.copy_from_slice(x),
            }
            self.xt.iter_mut().zip(&*row).for_each(|(lane, v)| lane[i] = *v);
        }
        if let (Some(Layer::BayesianDense(_)), Some(expansion)) = (model.layers().first(), model.first_moments()) {
            expansion.shift_rows(0, self.xt.as_flattened_mut(), self.xt_x2.as_flattened_mut(), INPUT_LANES);
        }
    }
}

/// The first layer of a group of inputs — loaded into `lanes` ([`InputLanes::transpose`], normalised in `row`),
/// then the layer's outputs, or with `moments` its pre-activation moments (a Bayesian dense layer) — compiled for
/// the predictor's instruction set ([`Isa::run`]). `false` where the layer has no such kernel.
pub(super) struct FirstLayer<'l> {
    pub(super) model: &'l Model,
    pub(super) layer: &'l Layer,
    pub(super) moments: bool,
    pub(super) group: &'l [f32],
    pub(super) row: &'l mut [f32],
    pub(super) lanes: &'l mut InputLanes,
}

impl Compiled for FirstLayer<'_> {
    type Output = bool;
    #[inline(always)]
    fn run(self) -> bool {
        let l = self.lanes;
        l.transpose(self.model, self.group, self.row);
        match (self.layer, self.moments, self.model.first_moments()) {
            (Layer::BayesianDense(b), true, Some(e)) => {
                b.moments_lanes((&l.xt, &l.xt_x2), e.biases(), (&mut l.mean, &mut l.sd))
            }
            (Layer::BayesianDense(b), false, Some(e)) => b.mean_lanes(&l.xt, e.biases().0, &mut l.mean),
            (Layer::Dense(d), false, _) => d.forward_lanes(&l.xt, &mut l.mean),
            _ => false,
        }
    }
}
