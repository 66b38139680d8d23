//! A block of local-reparameterization samples: the first stochastic layer's draws (from the prepared moments,
//! or each sample's kernels on the one image), then every later layer on the whole block.

use super::conv::{conv2d, convolve, convolve_pooled, pool};
use super::Predictor;
use crate::aligned::LineAligned;
use crate::kernels::{Compiled, Isa};
use crate::layers::{sample_from_moments, Activation, Layer, PoolKind};
use crate::model::Model;
use crate::sample::Noise;

impl Predictor<'_> {
    /// `s` local-reparameterization samples as one block; leaves the head in `self.block_a` as `[head × s]`.
    /// The block's element-wise passes (pre-activations from moments and noise, ReLU, squares, live rows) are
    /// compiled for the predictor's instruction set ([`Isa::run`]): the same operations, so the same bits.
    pub(super) fn draw_block(&mut self, s: usize, noise: &mut Noise) {
        let isa = self.isa;
        isa.run(BlockDraw { predictor: self, s, noise })
    }

    #[inline(always)]
    fn draw_block_inline(&mut self, s: usize, noise: &mut Noise) {
        // The Bayesian layers' block kernel is inlined here (`#[inline(always)]`), so its squaring and
        // noise loops are compiled with the caller's features.
        let (layers, isa) = (self.model.layers(), self.isa);
        let w = self.prefix_width;
        let mut start = self.first_stochastic;
        let mut width = w;
        match &layers[start] {
            Layer::BayesianDense(_) => {
                let (mean, sd) = (&self.prefix[..w], &self.prefix_sd[..w]);
                sample_from_moments(isa, mean, sd, s, &mut self.block_a[..w * s], noise);
                start += 1;
            }
            Layer::BayesianConv2d(l) => {
                // Every sample convolves the same image with its own kernels: the kernels read the one image
                // rather than a block of copies of it.
                let plan = &self.plans[start];
                let (weights, bias) = self.block_kernels.split_at_mut(l.weight_mu().len() * s);
                l.sample_kernels(isa, s, (weights, bias), noise.rng());
                let image = if plan.pads() {
                    plan.pad(&self.prefix[..w], 1, &mut self.scratch);
                    &self.scratch
                } else {
                    &self.prefix
                };
                if s == 32 && isa.pools_in_conv_tiles() && pools_in_tiles(self.model, start) {
                    // The ReLU and the max pooling after it fused: the pooled block is written, not the
                    // convolution's full-resolution one.
                    let [c, oh, ow] = self.model.layer_images(start).1;
                    // Only instruction sets with fused multiply-adds pool in the tiles.
                    let kernels = (&weights[..], &bias[..]);
                    crate::kernels::conv2d_block_pooled::<true>(plan, (image, false), kernels, &mut self.block_a);
                    width = c * (oh / 2) * (ow / 2);
                    Activation::Relu.apply(&mut self.block_a[..width * s]);
                    start += 3;
                } else {
                    let out = (&mut self.block_a[..], self.conv_room.as_deref_mut());
                    conv2d(isa.fused(), plan, (image, false), s, (weights, bias, s), out);
                    width = plan.output_len();
                    start += 1;
                }
            }
            _ => {
                for (row, v) in self.block_a[..w * s].chunks_exact_mut(s).zip(&self.prefix[..w]) {
                    row.fill(*v);
                }
            }
        }
        let (a, b) = (&mut self.block_a, &mut self.block_b);
        // The first layer after those a fused convolution took (its ReLU and pooling).
        let mut resume = start;
        for (index, layer) in layers.iter().enumerate().skip(start) {
            if index < resume {
                continue;
            }
            match layer {
                Layer::BayesianDense(l) => {
                    l.forward_local_reparam_block(isa, a, s, &mut self.block_scratch, b, noise);
                    width = l.out_features();
                    core::mem::swap(a, b);
                }
                Layer::Dropout(d) => d.apply_sampled(&mut a[..width * s], noise.rng()),
                Layer::Conv2d(_) | Layer::BayesianConv2d(_) => {
                    // One call of the (inlined) kernels for both kinds: the library stays smaller.
                    let kernels = match layer {
                        Layer::BayesianConv2d(l) => {
                            // Each sample's own kernels, used at every position: exact, unlike independent noise
                            // per output (see `layers/conv.rs`).
                            let (weights, bias) = self.block_kernels.split_at_mut(l.weight_mu().len() * s);
                            l.sample_kernels(isa, s, (weights, bias), noise.rng());
                            (&weights[..], &bias[..], s)
                        }
                        Layer::Conv2d(l) => (l.weight(), l.bias(), 1),
                        _ => continue, // not reached: the arm takes convolutions only
                    };
                    let plan = &self.plans[index];
                    // Not where the convolution regroups its samples (every kernel weight live): the regrouped
                    // kernel was faster there (benches/README, session 42).
                    let regroups = self.conv_room.is_some() && plan.regroups();
                    if kernels.2 == 32 && isa.pools_in_conv_tiles() && !regroups && pools_in_tiles(self.model, index) {
                        width = convolve_pooled(isa, plan, (a, b), (kernels.0, kernels.1));
                        resume = index + 3;
                    } else {
                        let room = self.conv_room.as_deref_mut();
                        width = convolve(isa.fused(), plan, (a, b), s, kernels, room);
                    }
                }
                fixed => {
                    width = fixed_block_layer(
                        self.model,
                        isa,
                        (index, fixed),
                        (a, b, s),
                        width,
                        &mut self.block_scratch.live,
                    )
                }
            }
        }
    }
}

/// Layer `index` of `model` on the block `a` (`[width × s]`, `b` its partner) where it draws nothing: a fixed dense
/// layer, an activation, pooling or flatten (the callers take every other kind themselves: its width is returned
/// unchanged). Leaves the output in `a` and returns its width; `live` is scratch.
#[inline(always)]
pub(super) fn fixed_block_layer(
    model: &Model,
    isa: Isa,
    (index, layer): (usize, &Layer),
    (a, b, s): (&mut LineAligned, &mut LineAligned, usize),
    width: usize,
    live: &mut [u32],
) -> usize {
    match layer {
        Layer::Dense(l) => {
            l.forward_block(isa, a, s, live, b);
            core::mem::swap(a, b);
            l.out_features()
        }
        Layer::Activation(f) => {
            if !relu_before_max_pool(model, index) {
                f.apply(&mut a[..width * s]);
            }
            width
        }
        Layer::Pool2d(p) => {
            let width = pool(model, index, p, a, s, b);
            core::mem::swap(a, b);
            if index > 0 && relu_before_max_pool(model, index - 1) {
                Activation::Relu.apply(&mut a[..width * s]);
            }
            width
        }
        _ => width,
    }
}

/// Whether layer `index` is a ReLU that a max pooling follows: the block loop then applies it after the pooling,
/// to a quarter of the values (2 x 2 windows) — they commute, `max(relu a, relu b) = relu(max(a, b))` — and a
/// non-finite value still makes the whole block NaN, as pooling checks its input and ReLU its output. (A ReLU
/// applied twice, where an earlier pass took it already, changes nothing.)
#[inline(always)]
fn relu_before_max_pool(model: &Model, index: usize) -> bool {
    let layers = model.layers();
    matches!(
        (layers.get(index), layers.get(index + 1)),
        (Some(Layer::Activation(Activation::Relu)), Some(Layer::Pool2d(p))) if p.kind == PoolKind::Max
    )
}

/// Whether convolution `index` can run with the ReLU and the max pooling after it fused
/// ([`conv2d_block_pooled`](crate::kernels::conv2d_block_pooled)): a ReLU, then 2 x 2 windows with stride 2 and
/// no padding over an output of even sides (the windows tile it).
#[inline(always)]
fn pools_in_tiles(model: &Model, index: usize) -> bool {
    let [_, oh, ow] = model.layer_images(index).1;
    relu_before_max_pool(model, index + 1)
        && matches!(model.layers().get(index + 2), Some(Layer::Pool2d(p)) if p.geometry.tiles_in_pairs([oh, ow]))
}

/// One block of local-reparameterization samples, as work for [`Isa::run`].
struct BlockDraw<'p, 'm, 'r, 'n> {
    predictor: &'p mut Predictor<'m>,
    s: usize,
    noise: &'r mut Noise<'n>,
}

impl Compiled for BlockDraw<'_, '_, '_, '_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.predictor.draw_block_inline(self.s, self.noise)
    }
}
