//! Monte-Carlo prediction: [`PredictOptions`], and the [`Predictor`] that owns the buffers so that no
//! sample allocates.
//!
//! Layers before the first stochastic layer run once per input. With [`Sampler::LocalReparam`], when
//! that first stochastic layer is Bayesian, its pre-activation moments are also computed once and each
//! sample only draws `mean + sd * eps`; the later layers process up to [`SAMPLE_BLOCK`] samples at a time,
//! one matrix product per layer for the whole block.

use crate::aligned::LineAligned;
use crate::error::PredictError;
use crate::kernels::{
    conv2d_block, pool2d_block, Compiled, ConvPlan, Isa, Lanes, BLOCK_SIZES, INPUT_LANES, SAMPLE_BLOCK,
};
use crate::layers::{sample_from_moments, BlockScratch, Layer, Pool2d};
use crate::model::Model;
use crate::prelude::*;
use crate::sample::{Sampler, SeededRng};
use crate::uncertainty::{Accumulator, Prediction};
use core::ops::{DerefMut, Range};

/// Fewest samples an adaptive prediction draws before it may stop.
pub const ADAPTIVE_MIN_SAMPLES: usize = 8;

/// How many Monte-Carlo samples to draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleCount {
    /// Exactly this many (at least 1).
    Fixed(usize),
    /// Draw until the Monte-Carlo standard error of every entry of the predictive mean is at most
    /// `tolerance` (after at least [`ADAPTIVE_MIN_SAMPLES`]), or until `max` samples.
    Adaptive { max: usize, tolerance: f32 },
}

/// Options of one prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    pub samples: SampleCount,
    /// Seed of the random stream; the same seed gives bit-identical results.
    pub seed: u64,
    pub sampler: Sampler,
    /// Probability mass of the regression interval, in (0, 1).
    pub interval_level: f32,
}

impl Default for PredictOptions {
    /// 32 local-reparameterization samples, seed 0, 95% intervals.
    fn default() -> Self {
        Self { samples: SampleCount::Fixed(32), seed: 0, sampler: Sampler::LocalReparam, interval_level: 0.95 }
    }
}

impl PredictOptions {
    pub fn samples(mut self, n: usize) -> Self {
        self.samples = SampleCount::Fixed(n);
        self
    }
    pub fn adaptive(mut self, max: usize, tolerance: f32) -> Self {
        self.samples = SampleCount::Adaptive { max, tolerance };
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }
    pub fn interval_level(mut self, level: f32) -> Self {
        self.interval_level = level;
        self
    }

    fn validate(&self) -> Result<(), PredictError> {
        let bad = |m: String| Err(PredictError::InvalidOptions(m));
        match self.samples {
            SampleCount::Fixed(0) | SampleCount::Adaptive { max: 0, .. } => return bad("zero samples requested".into()),
            SampleCount::Adaptive { tolerance, .. } if !(tolerance.is_finite() && tolerance > 0.0) => {
                return bad(format!("adaptive tolerance must be finite and > 0, found {tolerance}"))
            }
            _ => {}
        }
        if !(self.interval_level > 0.0 && self.interval_level < 1.0) {
            return bad(format!("interval level must lie in (0, 1), found {}", self.interval_level));
        }
        Ok(())
    }
}

/// Reusable prediction state for one model: every buffer is sized once, here.
/// One per thread; the [`Model`] itself is shared.
#[derive(Debug, Clone)]
pub struct Predictor<'m> {
    model: &'m Model,
    /// The instruction set of every kernel this predictor runs, detected when it is made.
    isa: Isa,
    /// Index of the first layer that draws random numbers (`layers.len()` if none).
    first_stochastic: usize,
    /// One activation vector and its partner, for `Mean` and weight sampling.
    a: Vec<f32>,
    b: Vec<f32>,
    scratch: Vec<f32>,
    /// Output of the deterministic prefix (or, for local reparameterization, the first stochastic layer's
    /// pre-activation means), and its width.
    prefix: Vec<f32>,
    prefix_width: usize,
    prefix_sd: Vec<f32>,
    /// A block of activations `[width × samples]` and its partners, for local reparameterization.
    block_a: LineAligned,
    block_b: LineAligned,
    block_scratch: BlockScratch,
    /// Sampled kernel weights and biases of a Bayesian convolution: one sample (weight sampling) and one per
    /// sample of a block (`[weights × samples]`, then `[biases × samples]`).
    kernel: Vec<f32>,
    block_kernels: LineAligned,
    /// Each convolution's plan (its live taps and padded input), by layer index; empty for other layers.
    plans: Vec<ConvPlan>,
    /// Room for a block convolution to regroup its samples, where the instruction set does
    /// ([`Isa::regroups_conv_samples`]) and a Bayesian convolution can.
    conv_room: Option<Vec<f32>>,
    /// The head outputs of the last group of samples, sample after sample.
    group: Vec<f32>,
    acc: Accumulator,
}

#[derive(Clone, Copy, PartialEq)]
enum Pass {
    Mean,
    LocalReparam,
    WeightSampling,
}

impl<'m> Predictor<'m> {
    pub fn new(model: &'m Model) -> Self {
        Self::on(model, Isa::detected())
    }

    /// A predictor whose kernels run on `isa`.
    fn on(model: &'m Model, isa: Isa) -> Self {
        let w = model.max_width();
        let first_stochastic = model.layers().iter().position(Layer::is_stochastic).unwrap_or(model.layers().len());
        let block = || LineAligned::new(w * SAMPLE_BLOCK);
        let plans = conv_plans(model);
        Self {
            model,
            isa,
            first_stochastic,
            a: vec![0.0; w],
            b: vec![0.0; w],
            scratch: vec![0.0; w],
            prefix: vec![0.0; w],
            prefix_width: 0,
            prefix_sd: vec![0.0; w],
            block_a: block(),
            block_b: block(),
            block_scratch: BlockScratch::new(w, SAMPLE_BLOCK),
            kernel: vec![0.0; model.max_kernels()],
            block_kernels: LineAligned::new(model.max_kernels() * SAMPLE_BLOCK),
            conv_room: conv_room(model, &plans, isa),
            plans,
            group: vec![0.0; model.head_width() * SAMPLE_BLOCK],
            acc: Accumulator::new(model.task(), SAMPLE_BLOCK, isa),
        }
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Predicts one input with Monte-Carlo uncertainty. Adaptive sampling checks its tolerance after every
    /// [`ADAPTIVE_MIN_SAMPLES`] samples.
    pub fn predict(&mut self, input: &[f32], options: &PredictOptions) -> Result<Prediction, PredictError> {
        options.validate()?;
        let pass = self.prepare(input, options.sampler)?;
        self.sample_prepared(pass, options)
    }

    /// The Monte-Carlo loop of [`Self::predict`] from a prepared input (`options` already checked).
    fn sample_prepared(&mut self, pass: Pass, options: &PredictOptions) -> Result<Prediction, PredictError> {
        let (max, tolerance) = match options.samples {
            SampleCount::Fixed(n) => (n, None),
            SampleCount::Adaptive { max, tolerance } => (max, Some(tolerance as f64)),
        };
        let mut rng = SeededRng::new(options.seed);
        self.acc.reset();
        let draws = if pass == Pass::Mean { 1 } else { max };
        let group = if tolerance.is_some() { ADAPTIVE_MIN_SAMPLES } else { SAMPLE_BLOCK };
        let mut done = 0;
        while done < draws {
            let (n, w) = self.next_group(pass, group.min(draws - done), &mut rng);
            self.acc.add(&self.group[..n * w])?;
            done += n;
            if let Some(tol) = tolerance {
                if done >= ADAPTIVE_MIN_SAMPLES.min(max) && self.acc.max_standard_error() <= tol {
                    break;
                }
            }
        }
        Ok(self.acc.finish(options.interval_level))
    }

    /// Predicts every input of a row-major batch (`inputs.len()` a multiple of the input size). Item `i`
    /// uses seed `options.seed + i` (wrapping), so it equals [`Predictor::predict`] with that seed. A dense first
    /// layer that runs once per input (deterministic, or Bayesian with its mean weights or its moments for local
    /// reparameterization) runs for eight inputs at a time: its weights are read once per group, with the same
    /// bits.
    pub fn predict_batch(&mut self, inputs: &[f32], options: &PredictOptions) -> Result<Vec<Prediction>, PredictError> {
        let d = self.model.input_dim();
        if !inputs.len().is_multiple_of(d) {
            return Err(PredictError::BatchLength { input_dim: d, found: inputs.len() });
        }
        let item = |i: usize| options.seed(options.seed.wrapping_add(i as u64));
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
            lanes.transpose(self.model, group, &mut self.a[..d]);
            let items = group.chunks_exact(d).enumerate().map(|(i, x)| (i, k * INPUT_LANES + i, x));
            if !self.isa.run(FirstLayer { layer: first, moments, lanes: &mut lanes }) {
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

    /// The raw head outputs of `samples` Monte-Carlo passes, appended row-major (`samples x head_width`) to
    /// `out`: the logits, or the means followed by raw scales. For custom statistics. The samples are the
    /// ones [`Predictor::predict`] with a fixed sample count and the same seed would use.
    pub fn sample_outputs(
        &mut self,
        input: &[f32],
        sampler: Sampler,
        seed: u64,
        samples: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), PredictError> {
        let mut rng = SeededRng::new(seed);
        let pass = self.prepare(input, sampler)?;
        out.reserve(samples * self.model.head_width());
        let mut done = 0;
        while done < samples {
            let (n, w) = self.next_group(pass, SAMPLE_BLOCK.min(samples - done), &mut rng);
            out.extend_from_slice(&self.group[..n * w]);
            done += n;
        }
        Ok(())
    }

    /// Checks and normalises the input and runs the deterministic prefix once.
    fn prepare(&mut self, input: &[f32], sampler: Sampler) -> Result<Pass, PredictError> {
        let model = self.model;
        let d = model.input_dim();
        if input.len() != d {
            return Err(PredictError::InputLength { expected: d, found: input.len() });
        }
        finite(input)?;
        match model.normalization() {
            Some(n) => n.apply(input, &mut self.a[..d]),
            None => self.a[..d].copy_from_slice(input),
        }
        let pass = self.pass(sampler);
        self.finish_prefix(pass, 0, d);
        Ok(pass)
    }

    /// The pass `sampler` asks for (`Mean` for a model that draws nothing).
    fn pass(&self, sampler: Sampler) -> Pass {
        match sampler {
            _ if self.first_stochastic == self.model.layers().len() => Pass::Mean,
            Sampler::Mean => Pass::Mean,
            Sampler::LocalReparam => Pass::LocalReparam,
            Sampler::WeightSampling => Pass::WeightSampling,
        }
    }

    /// The end of the layers that run once per input in `pass` (the deterministic prefix).
    fn prefix_end(&self, pass: Pass) -> usize {
        if pass == Pass::Mean {
            self.model.layers().len()
        } else {
            self.first_stochastic
        }
    }

    /// Runs the deterministic prefix from layer `from` on `self.a[..width]` and keeps its output — or, for local
    /// reparameterization, the next (Bayesian dense) layer's pre-activation moments — for the samples.
    fn finish_prefix(&mut self, pass: Pass, from: usize, width: usize) {
        let prefix_end = self.prefix_end(pass);
        let width = self.run_layers(from..prefix_end, Pass::Mean, width, None);
        self.prefix_width = width;
        if let (Pass::LocalReparam, Some(Layer::BayesianDense(l))) = (pass, self.model.layers().get(prefix_end)) {
            let o = l.out_features();
            l.moments(self.isa, &self.a[..width], &mut self.scratch, &mut self.prefix[..o], &mut self.prefix_sd[..o]);
            self.prefix_width = o;
        } else {
            self.prefix[..width].copy_from_slice(&self.a[..width]);
        }
    }

    /// Draws up to `want` samples into `self.group` (sample-major); returns how many and the head width.
    fn next_group(&mut self, pass: Pass, want: usize, rng: &mut SeededRng) -> (usize, usize) {
        let w = self.model.head_width();
        match pass {
            Pass::Mean => {
                self.group[..w].copy_from_slice(&self.prefix[..w]);
                (1, w)
            }
            Pass::WeightSampling => {
                self.draw_weight_sample(rng);
                self.group[..w].copy_from_slice(&self.a[..w]);
                (1, w)
            }
            Pass::LocalReparam => {
                let s = BLOCK_SIZES.into_iter().find(|b| *b <= want).unwrap_or(1);
                self.draw_block(s, rng);
                for (t, head) in self.group[..s * w].chunks_exact_mut(w).enumerate() {
                    for (k, v) in head.iter_mut().enumerate() {
                        *v = self.block_a[k * s + t];
                    }
                }
                (s, w)
            }
        }
    }

    /// One weight-sampling pass from the prepared prefix; leaves the head in `self.a`.
    fn draw_weight_sample(&mut self, rng: &mut SeededRng) {
        let w = self.prefix_width;
        self.a[..w].copy_from_slice(&self.prefix[..w]);
        self.run_layers(self.first_stochastic..self.model.layers().len(), Pass::WeightSampling, w, Some(rng));
    }

    /// `s` local-reparameterization samples as one block; leaves the head in `self.block_a` as `[head × s]`.
    /// The block's element-wise passes (pre-activations from moments and noise, ReLU, squares, live rows) are
    /// compiled for the predictor's instruction set ([`Isa::run`]): the same operations, so the same bits.
    fn draw_block(&mut self, s: usize, rng: &mut SeededRng) {
        let isa = self.isa;
        isa.run(BlockDraw { predictor: self, s, rng })
    }

    #[inline(always)]
    fn draw_block_inline(&mut self, s: usize, rng: &mut SeededRng) {
        // The Bayesian layers' block kernel is inlined here (`#[inline(always)]`), so its squaring and
        // noise loops are compiled with the caller's features.
        let (layers, isa) = (self.model.layers(), self.isa);
        let w = self.prefix_width;
        let mut start = self.first_stochastic;
        let mut width = w;
        match &layers[start] {
            Layer::BayesianDense(_) => {
                let (mean, sd) = (&self.prefix[..w], &self.prefix_sd[..w]);
                sample_from_moments(isa, mean, sd, s, &mut self.block_a[..w * s], rng);
                start += 1;
            }
            Layer::BayesianConv2d(l) => {
                // Every sample convolves the same image with its own kernels: the kernels read the one image
                // rather than a block of copies of it.
                let plan = &self.plans[start];
                let (weights, bias) = self.block_kernels.split_at_mut(l.weight_mu().len() * s);
                l.sample_kernels(isa, s, (weights, bias), rng);
                let image = if plan.pads() {
                    plan.pad(&self.prefix[..w], 1, &mut self.scratch);
                    &self.scratch
                } else {
                    &self.prefix
                };
                let out = (&mut self.block_a[..], self.conv_room.as_deref_mut());
                conv2d(isa.fused(), plan, (image, false), s, (weights, bias, s), out);
                width = plan.output_len();
                start += 1;
            }
            _ => {
                for (row, v) in self.block_a[..w * s].chunks_exact_mut(s).zip(&self.prefix[..w]) {
                    row.fill(*v);
                }
            }
        }
        let (a, b) = (&mut self.block_a, &mut self.block_b);
        for (index, layer) in layers.iter().enumerate().skip(start) {
            match layer {
                Layer::BayesianDense(l) => {
                    l.forward_local_reparam_block(isa, a, s, &mut self.block_scratch, b, rng);
                    width = l.out_features();
                    core::mem::swap(a, b);
                }
                Layer::Dense(l) => {
                    l.forward_block(isa, a, s, &mut self.block_scratch.live, b);
                    width = l.out_features();
                    core::mem::swap(a, b);
                }
                Layer::Dropout(d) => d.apply_sampled(&mut a[..width * s], rng),
                Layer::Activation(f) => f.apply(&mut a[..width * s]),
                Layer::Conv2d(_) | Layer::BayesianConv2d(_) => {
                    // One call of the (inlined) kernels for both kinds: the library stays smaller.
                    let kernels = match layer {
                        Layer::BayesianConv2d(l) => {
                            // Each sample's own kernels, used at every position: exact, unlike independent noise
                            // per output (see `layers/conv.rs`).
                            let (weights, bias) = self.block_kernels.split_at_mut(l.weight_mu().len() * s);
                            l.sample_kernels(isa, s, (weights, bias), rng);
                            (&weights[..], &bias[..], s)
                        }
                        Layer::Conv2d(l) => (l.weight(), l.bias(), 1),
                        _ => continue, // not reached: the arm takes convolutions only
                    };
                    let room = self.conv_room.as_deref_mut();
                    width = convolve(isa.fused(), &self.plans[index], (a, b), s, kernels, room);
                }
                Layer::Pool2d(p) => {
                    width = pool(self.model, index, p, a, s, b);
                    core::mem::swap(a, b);
                }
                Layer::Flatten => {}
            }
        }
    }

    /// Runs the layers in `range` on `self.a[..width]` (one sample, `Mean` or weight sampling), leaving the result
    /// in `self.a`; returns the output width. Compiled for the predictor's instruction set ([`Isa::run`]): the
    /// single-sample kernels are never fused, so every instruction set gives the same bits.
    fn run_layers(&mut self, range: Range<usize>, pass: Pass, width: usize, rng: Option<&mut SeededRng>) -> usize {
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
                    match (pass, rng.as_deref_mut()) {
                        (Pass::WeightSampling, Some(r)) => l.forward_weight_sampling(x, &mut self.scratch, y, r),
                        _ => l.forward_mean(isa, x, y),
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

/// The plan of every convolution of `model`, by layer index (an empty plan for other layers). A Bayesian
/// kernel weight is live unless its mean and standard deviation are both 0 (pruned); a fixed one unless it is 0.
fn conv_plans(model: &Model) -> Vec<ConvPlan> {
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
fn conv_room(model: &Model, plans: &[ConvPlan], isa: Isa) -> Option<Vec<f32>> {
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
fn convolve<T: DerefMut<Target = [f32]>>(
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

/// [`conv2d_block`], fused or not.
#[inline(always)]
fn conv2d(
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
fn pool(model: &Model, index: usize, p: &Pool2d, input: &[f32], s: usize, out: &mut [f32]) -> usize {
    let (image, [c, oh, ow]) = model.layer_images(index);
    pool2d_block((p.kind, &p.geometry), image, [oh, ow], input, s, out);
    c * oh * ow
}

/// One block of local-reparameterization samples, as work for [`Isa::run`].
struct BlockDraw<'p, 'm, 'r> {
    predictor: &'p mut Predictor<'m>,
    s: usize,
    rng: &'r mut SeededRng,
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

impl Compiled for BlockDraw<'_, '_, '_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.predictor.draw_block_inline(self.s, self.rng)
    }
}

/// `input` itself, or the error naming its first non-finite value.
fn finite(input: &[f32]) -> Result<&[f32], PredictError> {
    match input.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, &value)) => Err(PredictError::NonFiniteInput { index, value }),
        None => Ok(input),
    }
}

/// A group of up to [`INPUT_LANES`] inputs of a batch, transposed for the first layer, and that layer's outputs
/// (or pre-activation moments) of each.
struct InputLanes {
    /// `xt[c][i]`: value `c` of input `i`, normalised (0 in lanes past the group's end and for an input with a
    /// non-finite value, which its own prediction then reports); `xt_sq` the squares.
    xt: Vec<Lanes>,
    xt_sq: Vec<Lanes>,
    /// The layer's outputs, or the means of its pre-activations, and their standard deviations.
    mean: Vec<Lanes>,
    sd: Vec<Lanes>,
}

impl InputLanes {
    fn new(inputs: usize, outputs: usize) -> Self {
        let lanes = |n: usize| vec![[0.0; INPUT_LANES]; n];
        Self { xt: lanes(inputs), xt_sq: lanes(inputs), mean: lanes(outputs), sd: lanes(outputs) }
    }

    /// Loads `group` (up to [`INPUT_LANES`] inputs of `row.len()` values), each normalised by `model` in `row`.
    fn transpose(&mut self, model: &Model, group: &[f32], row: &mut [f32]) {
        self.xt.iter_mut().for_each(|v| *v = [0.0; INPUT_LANES]);
        for (i, x) in group.chunks_exact(row.len()).enumerate() {
            let Ok(x) = finite(x) else { continue };
            match model.normalization() {
                Some(n) => n.apply(x, row),
                None => row.copy_from_slice(x),
            }
            self.xt.iter_mut().zip(&*row).for_each(|(lane, v)| lane[i] = *v);
        }
        for (q, x) in self.xt_sq.iter_mut().zip(&self.xt) {
            *q = x.map(|v| v * v);
        }
    }
}

/// The first layer of a group of inputs — its outputs, or with `moments` its pre-activation moments (a Bayesian
/// dense layer) — compiled for the predictor's instruction set ([`Isa::run`]). `false` where the layer has no
/// such kernel.
struct FirstLayer<'l> {
    layer: &'l Layer,
    moments: bool,
    lanes: &'l mut InputLanes,
}

impl Compiled for FirstLayer<'_> {
    type Output = bool;
    #[inline(always)]
    fn run(self) -> bool {
        let l = self.lanes;
        match (self.layer, self.moments) {
            (Layer::BayesianDense(b), true) => b.moments_lanes(&l.xt, &l.xt_sq, &mut l.mean, &mut l.sd),
            (Layer::BayesianDense(b), false) => b.mean_lanes(&l.xt, &mut l.mean),
            (Layer::Dense(d), false) => d.forward_lanes(&l.xt, &mut l.mean),
            _ => false,
        }
    }
}

impl Model {
    /// Predicts one input. Allocates the buffers of a [`Predictor`] for this call; reuse a `Predictor` to
    /// avoid that.
    pub fn predict(&self, input: &[f32], options: &PredictOptions) -> Result<Prediction, PredictError> {
        Predictor::new(self).predict(input, options)
    }

    /// Predicts a row-major batch; see [`Predictor::predict_batch`].
    pub fn predict_batch(&self, inputs: &[f32], options: &PredictOptions) -> Result<Vec<Prediction>, PredictError> {
        Predictor::new(self).predict_batch(inputs, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Activation, BayesianDense};
    use crate::{Provenance, Task};

    /// A 12 -> 40 -> 40 -> 3 ReLU classifier with random posteriors, about half of the weights pruned.
    fn pruned_network() -> Model {
        let mut rng = SeededRng::new(3);
        let mut layers = Vec::new();
        for (k, (i, o)) in [(12, 40), (40, 40), (40, 3)].into_iter().enumerate() {
            let mut draw = |n: usize, scale: f32| (0..n).map(|_| rng.gaussian() * scale).collect::<Vec<f32>>();
            let (mut mu, mut sigma) = (draw(i * o, 0.5), draw(i * o, 0.1));
            let mask = draw(i * o, 1.0);
            for ((m, s), keep) in mu.iter_mut().zip(&mut sigma).zip(&mask) {
                (*m, *s) = if *keep > 0.0 { (*m, s.abs()) } else { (0.0, 0.0) };
            }
            let bias_sigma = draw(o, 0.1).iter().map(|v| v.abs()).collect();
            layers.push(Layer::BayesianDense(BayesianDense::new(i, o, mu, sigma, draw(o, 0.1), bias_sigma)));
            if k < 2 {
                layers.push(Layer::Activation(Activation::Relu));
            }
        }
        Model::new(layers, Task::Classification { classes: 3, labels: vec![] }, None, Provenance::default()).unwrap()
    }

    /// A 1x12x12 CNN with random posteriors, every third kernel weight pruned if `prune` (else none, so that
    /// the second convolution's block may regroup its samples): Bayesian convolutions with padding (the first,
    /// whose input every sample shares) and without, a fixed 1x1 convolution, max and average pooling, then a
    /// Bayesian dense head of 3.
    fn cnn(prune: bool) -> Model {
        use crate::layers::{BayesianConv2d, Conv2d, ConvGeometry, PoolGeometry, PoolKind};
        let mut rng = SeededRng::new(4);
        let mut draw = |n: usize, scale: f32| (0..n).map(|_| rng.gaussian() * scale).collect::<Vec<f32>>();
        let mut bayesian = |g: ConvGeometry| {
            let n = g.weight_count().unwrap();
            let (mut mu, mut sigma) = (draw(n, 0.4), draw(n, 0.1));
            for (k, (m, s)) in mu.iter_mut().zip(&mut sigma).enumerate() {
                (*m, *s) = if prune && k % 3 == 1 { (0.0, 0.0) } else { (*m, s.abs()) };
            }
            let (bias, bias_sigma) = (draw(g.out_channels, 0.1), vec![0.05; g.out_channels]);
            Layer::BayesianConv2d(BayesianConv2d::new(g, mu, sigma, bias, bias_sigma))
        };
        let pool = |kind| Layer::Pool2d(Pool2d { kind, geometry: PoolGeometry::new([2, 2]) });
        let layers = vec![
            bayesian(ConvGeometry::new(1, 3, [3, 3]).padding([1, 1])),
            Layer::Activation(Activation::Relu),
            pool(PoolKind::Max),
            bayesian(ConvGeometry::new(3, 4, [3, 3])),
            Layer::Conv2d(Conv2d::new(
                ConvGeometry::new(4, 2, [1, 1]),
                vec![0.5, -0.25, 1.0, 0.75, 0.0, 1.5, -1.0, 0.5],
                vec![0.1, -0.1],
            )),
            pool(PoolKind::Avg),
            Layer::Flatten,
            Layer::BayesianDense(BayesianDense::new(8, 3, draw(24, 0.5), vec![0.05; 24], vec![0.0; 3], vec![0.01; 3])),
        ];
        let task = Task::Classification { classes: 3, labels: vec![] };
        Model::new_image(layers, [1, 12, 12], task, None, Provenance::default()).unwrap()
    }

    /// Every instruction set draws the bits of the portable build of its kind (fused or not), for every sampler
    /// and block size, dense or sparse, fully connected or convolutional; `Mean` and weight sampling are never
    /// fused.
    #[test]
    fn every_instruction_set_draws_the_bits_of_its_portable_kind() {
        let dense = pruned_network();
        // 32 + 8 + 2 + 1: blocks of every kind the kernels treat differently.
        let samples = if cfg!(miri) { 7 } else { 43 };
        for model in [dense.clone(), dense.sparsified(), cnn(true), cnn(false)] {
            let d = model.input_dim();
            let input: Vec<f32> = (0..d).map(|i| ((i % 12) as f32 - 5.0) / 3.0).collect();
            let draw = |isa: Isa, sampler: Sampler| {
                let mut out = Vec::new();
                Predictor::on(&model, isa).sample_outputs(&input, sampler, 5, samples, &mut out).unwrap();
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let reference = |fused: bool| Isa::available().into_iter().find(|i| i.fused() == fused).unwrap();
            for sampler in [Sampler::LocalReparam, Sampler::WeightSampling, Sampler::Mean] {
                let (unfused, fused) = (draw(reference(false), sampler), draw(reference(true), sampler));
                assert_eq!(unfused == fused, sampler != Sampler::LocalReparam, "{sampler:?}");
                for isa in Isa::available() {
                    let want = if isa.fused() { &fused } else { &unfused };
                    assert_eq!(&draw(isa, sampler), want, "{isa:?}, {sampler:?}");
                }
            }
        }
    }
}
