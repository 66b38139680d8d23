//! The convolutions and pooling layers as the predictor calls them: each convolution's plan, the room to
//! regroup a block's samples, and the calls of the kernels on a block.

use crate::aligned::LineAligned;
use crate::kernels::{conv2d_block, conv2d_block_pooled_per_sample, pool2d_block, ConvPlan, Isa, SAMPLE_BLOCK};
use crate::layers::Activation;
use crate::layers::{Layer, Pool2d};
use crate::model::Model;
use crate::prelude::*;
use core::ops::DerefMut;

/// The plan of every convolution of `model`, by layer index (an empty plan for other layers). A Bayesian
/// kernel weight is live unless its mean and standard deviation are both 0 (pruned); a fixed one unless it is 0.
pub(super) fn conv_plans(model: &Model) -> Vec<ConvPlan> {
    let plan = |index: usize, g, live: &dyn Fn(usize) -> bool| {
        let (input, output) = model.layer_images(index);
        ConvPlan::new(g, input, output, live)
    };
    let layers = model.layers().iter().enumerate();
    layers
        .map(|(index, layer)| match layer {
            Layer::Conv2d(l) => plan(index, l.geometry(), &|k| l.weight()[k] != 0.0),
            Layer::BayesianConv2d(l) => {
                plan(index, l.geometry(), &|k| l.weight_mu()[k] != 0.0 || l.weight_sigma()[k] != 0.0)
            }
            _ => ConvPlan::default(),
        })
        .collect()
}

/// The room the Bayesian convolutions of `model` (`plans` by layer index) take to regroup a block of samples on
/// `isa`: none where the instruction set does not regroup, or no convolution can.
pub(super) fn conv_room(model: &Model, plans: &[ConvPlan], isa: Isa) -> Option<Vec<f32>> {
    if !isa.regroups_conv_samples() {
        return None;
    }
    let bayesian = model.layers().iter().zip(plans).filter(|(l, _)| matches!(l, Layer::BayesianConv2d(_)));
    let most = bayesian.map(|(_, plan)| plan.regroup_len(SAMPLE_BLOCK)).max().unwrap_or(0);
    (most > 0).then(|| vec![0.0; most])
}

/// The convolution of `plan` on a block of `s` samples in `a`, with `kernels` and `room` as [`conv2d_block`]
/// takes them, fused or not; leaves the output in `a` (the padded input goes to `b` first, or else the output,
/// and the two swap) and returns its width.
#[inline(always)]
pub(super) fn convolve<T: DerefMut<Target = [f32]>>(
    fused: bool,
    plan: &ConvPlan,
    (a, b): (&mut T, &mut T),
    s: usize,
    kernels: (&[f32], &[f32], usize),
    room: Option<&mut [f32]>,
) -> usize {
    // No closure here: a closure is compiled for the baseline, not for the caller's instruction set.
    let (x, out) = if plan.pads() {
        plan.pad(a, s, b);
        (&**b, &mut **a)
    } else {
        (&**a, &mut **b)
    };
    conv2d(fused, plan, (x, true), s, kernels, (out, room));
    if !plan.pads() {
        core::mem::swap(a, b);
    }
    plan.output_len()
}

/// [`convolve`] of a block of 32 samples, each with its image and kernels (`kernels`: weights and biases), followed
/// by a ReLU and max pooling in 2 x 2 windows of stride 2, in one kernel
/// ([`conv2d_block_pooled_per_sample`]); leaves the pooled block in `a` and returns its width. Out of line: inlined
/// into the predictor's block, it slowed the convolutions it does not take (`benches/README.md`, session 43).
#[inline(never)]
pub(super) fn convolve_pooled(
    isa: Isa,
    plan: &ConvPlan,
    (a, b): (&mut LineAligned, &mut LineAligned),
    kernels: (&[f32], &[f32]),
) -> usize {
    let s = SAMPLE_BLOCK;
    let (x, out) = if plan.pads() {
        plan.pad(a, s, b);
        (&**b, &mut **a)
    } else {
        (&**a, &mut **b)
    };
    conv2d_block_pooled_per_sample(isa, plan, x, kernels, out);
    if !plan.pads() {
        core::mem::swap(a, b);
    }
    let width = plan.output_len() / 4;
    Activation::Relu.apply(&mut a[..width * s]);
    width
}

/// [`conv2d_block`], fused or not.
#[inline(always)]
pub(super) fn conv2d(
    fused: bool,
    plan: &ConvPlan,
    x: (&[f32], bool),
    s: usize,
    kernels: (&[f32], &[f32], usize),
    (out, room): (&mut [f32], Option<&mut [f32]>),
) {
    if fused {
        conv2d_block::<true>(plan, x, s, kernels, out, room);
    } else {
        conv2d_block::<false>(plan, x, s, kernels, out, room);
    }
}

/// Pooling layer `index` of `model` on a block of `s` samples from `input` into `out`; returns the output width.
#[inline(always)]
pub(super) fn pool(model: &Model, index: usize, p: &Pool2d, input: &[f32], s: usize, out: &mut [f32]) -> usize {
    let (image, [c, oh, ow]) = model.layer_images(index);
    pool2d_block((p.kind, &p.geometry), image, [oh, ow], input, s, out);
    c * oh * ow
}
