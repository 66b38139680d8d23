//! One sample's layers: the deterministic prefix and `Mean` (mean weights), or a weight-sampling pass.

use super::conv::{convolve, pool};
use super::{Pass, Predictor};
use crate::kernels::Compiled;
use crate::layers::Layer;
use crate::sample::SeededRng;
use core::ops::Range;

impl Predictor<'_> {
    /// One weight-sampling pass from the prepared prefix; leaves the head in `self.a`.
    pub(super) fn draw_weight_sample(&mut self, rng: &mut SeededRng) {
        let w = self.prefix_width;
        self.a[..w].copy_from_slice(&self.prefix[..w]);
        self.run_layers(self.first_stochastic..self.model.layers().len(), Pass::WeightSampling, w, Some(rng));
    }

    /// Runs the layers in `range` on `self.a[..width]` (one sample, `Mean` or weight sampling), leaving the result
    /// in `self.a`; returns the output width. Compiled for the predictor's instruction set ([`Isa::run`]): the
    /// single-sample kernels are never fused, so every instruction set gives the same bits.
    pub(super) fn run_layers(
        &mut self,
        range: Range<usize>,
        pass: Pass,
        width: usize,
        rng: Option<&mut SeededRng>,
    ) -> usize {
        let isa = self.isa;
        isa.run(LayerRun { predictor: self, range, pass, width, rng })
    }

    #[inline(always)]
    fn run_layers_inline(
        &mut self,
        range: Range<usize>,
        pass: Pass,
        mut width: usize,
        mut rng: Option<&mut SeededRng>,
    ) -> usize {
        let (model, isa) = (self.model, self.isa);
        for index in range {
            let (a, b) = (&mut self.a, &mut self.b);
            match &model.layers()[index] {
                Layer::BayesianDense(l) => {
                    let (x, y) = (&a[..width], &mut b[..l.out_features()]);
                    match (pass, rng.as_deref_mut(), model.first_moments()) {
                        (Pass::WeightSampling, Some(r), _) => l.forward_weight_sampling(x, &mut self.scratch, y, r),
                        // The first stochastic layer about its raw zero, as its moments are (`layers/raw_zero.rs`).
                        (_, _, Some(e)) if index == self.first_stochastic => {
                            e.mean(l, isa, x, &mut self.moments_scratch, y)
                        }
                        _ => l.forward_mean(isa, x, l.bias_mu(), y),
                    }
                    width = l.out_features();
                    core::mem::swap(a, b);
                }
                Layer::Dense(l) => {
                    l.forward(&a[..width], &mut b[..l.out_features()]);
                    width = l.out_features();
                    core::mem::swap(a, b);
                }
                Layer::Dropout(d) => {
                    if let (false, Some(r)) = (pass == Pass::Mean, rng.as_deref_mut()) {
                        d.apply_sampled(&mut a[..width], r);
                    }
                }
                Layer::Activation(f) => f.apply(&mut a[..width]),
                layer @ (Layer::Conv2d(_) | Layer::BayesianConv2d(_)) => {
                    // One call of the (inlined) kernels for both kinds: the library stays smaller.
                    let (weights, bias): (&[f32], &[f32]) = match (layer, pass, rng.as_deref_mut()) {
                        (Layer::BayesianConv2d(l), Pass::WeightSampling, Some(r)) => {
                            let (weights, bias) = self.kernel.split_at_mut(l.weight_mu().len());
                            l.sample_kernels_once((weights, bias), r);
                            (weights, bias)
                        }
                        (Layer::BayesianConv2d(l), ..) => (l.weight_mu(), l.bias_mu()),
                        (Layer::Conv2d(l), ..) => (l.weight(), l.bias()),
                        _ => continue, // not reached: the arm takes convolutions only
                    };
                    width = convolve(false, &self.plans[index], (a, b), 1, (weights, bias, 1), None);
                }
                Layer::Pool2d(p) => {
                    width = pool(model, index, p, a, 1, b);
                    core::mem::swap(a, b);
                }
                Layer::Flatten => {}
            }
        }
        width
    }
}

/// Layers of one sample, as work for [`Isa::run`].
struct LayerRun<'p, 'm, 'r> {
    predictor: &'p mut Predictor<'m>,
    range: Range<usize>,
    pass: Pass,
    width: usize,
    rng: Option<&'r mut SeededRng>,
}

impl Compiled for LayerRun<'_, '_, '_> {
    type Output = usize;
    #[inline(always)]
    fn run(self) -> usize {
        self.predictor.run_layers_inline(self.range, self.pass, self.width, self.rng)
    }
}
