//! Monte-Carlo prediction: [`PredictOptions`], and the [`Predictor`] that owns the buffers so that no
//! sample allocates.
//!
//! Layers before the first stochastic layer run once per input. With [`Sampler::LocalReparam`], when
//! that first stochastic layer is Bayesian, its pre-activation moments are also computed once and each
//! sample only draws `mean + sd * eps`; the later layers process up to [`SAMPLE_BLOCK`] samples at a time,
//! one matrix product per layer for the whole block.
//!
//! Here: the [`Predictor`] and its Monte-Carlo loop; `options.rs` the options, `batch.rs` a batch's first layer
//! eight inputs at a time, `block.rs` a block of local-reparameterization samples, `single.rs` one sample's
//! layers (`Mean`, weight sampling), `shared.rs` a batch whose inputs share each sample's network, `conv.rs` the
//! convolutions' plans and calls.

mod batch;
mod block;
mod conv;
mod options;
mod shared;
mod single;

pub use options::{PredictOptions, SampleCount, ADAPTIVE_MIN_SAMPLES};
#[cfg(feature = "parallel")]
pub(crate) use shared::{draw_networks, network_len, networks_fit, DrawnNetworks, GROUP as SHARED_GROUP};

use crate::aligned::LineAligned;
use crate::error::PredictError;
use crate::kernels::{ConvPlan, Isa, BLOCK_SIZES, SAMPLE_BLOCK};
use crate::layers::{BlockScratch, ExpansionScratch, Layer};
use crate::model::Model;
use crate::prelude::*;
use crate::sample::{Noise, NoiseTape, Sampler, SeededRng};
use crate::uncertainty::{Accumulator, Prediction};
use conv::{conv_plans, conv_room};

/// Reusable prediction state for one model: every buffer is sized once, here.
/// One per thread; the [`Model`] itself is shared.
#[derive(Debug, Clone)]
pub struct Predictor<'m> {
    model: &'m Model,
    /// The instruction set of every kernel this predictor runs, detected when it is made.
    pub(crate) isa: Isa,
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
    /// Scratch of the first stochastic layer's moments.
    moments_scratch: ExpansionScratch,
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
    /// The last local-reparameterization prediction's noise, for the next with the same seed and sample count
    /// (networks of Bayesian dense layers only; room for a block's noise).
    tape: NoiseTape,
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
            moments_scratch: ExpansionScratch::new(model.first_moments()),
            block_a: block(),
            block_b: block(),
            block_scratch: BlockScratch::new(w, SAMPLE_BLOCK),
            kernel: vec![0.0; model.max_kernels()],
            block_kernels: LineAligned::new(model.max_kernels() * SAMPLE_BLOCK),
            conv_room: conv_room(model, &plans, isa),
            plans,
            group: vec![0.0; model.head_width() * SAMPLE_BLOCK],
            acc: Accumulator::new(model.task(), SAMPLE_BLOCK, isa),
            tape: NoiseTape::new(taped_noise_per_sample(model), SAMPLE_BLOCK),
        }
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Predicts one input with Monte-Carlo uncertainty. Adaptive sampling checks its tolerance after every
    /// [`ADAPTIVE_MIN_SAMPLES`] samples.
    pub fn predict(&mut self, input: &[f32], options: &PredictOptions) -> Result<Prediction, PredictError> {
        if self.shares_weights(options.sampler) {
            self.one_input(input)?;
            return self.predict_shared(input, options, None).map(|mut p| p.remove(0));
        }
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
        // A fixed count of local-reparameterization samples whose noise fits on the tape: replayed or recorded.
        let taped = pass == Pass::LocalReparam && tolerance.is_none() && self.tape.fits(max);
        let mut tape = core::mem::take(&mut self.tape);
        let mut noise = match taped {
            true => tape.noise(&mut rng, options.seed, max),
            false => Noise::Stream(&mut rng),
        };
        let recording = matches!(noise, Noise::Record(..));
        let result = self.sample_groups(pass, (draws, group), (max, tolerance), &mut noise);
        if recording {
            tape.recorded(options.seed, max, result.is_ok());
        }
        self.tape = tape;
        result.map(|()| self.acc.finish(options.interval_level))
    }

    /// Adds `draws` samples, `group` at a time, to the accumulator; with a `tolerance`, stops early once the
    /// Monte-Carlo standard error is below it (after at least [`ADAPTIVE_MIN_SAMPLES`] of the `max`).
    fn sample_groups(
        &mut self,
        pass: Pass,
        (draws, group): (usize, usize),
        (max, tolerance): (usize, Option<f64>),
        noise: &mut Noise,
    ) -> Result<(), PredictError> {
        let mut done = 0;
        while done < draws {
            let (n, w) = self.next_group(pass, group.min(draws - done), noise);
            self.acc.add(&self.group[..n * w])?;
            done += n;
            if let Some(tol) = tolerance {
                if done >= ADAPTIVE_MIN_SAMPLES.min(max) && self.acc.max_standard_error() <= tol {
                    break;
                }
            }
        }
        Ok(())
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
        if self.shares_weights(sampler) && samples > 0 {
            self.one_input(input)?;
            let options = PredictOptions::default().sampler(sampler).seed(seed).samples(samples);
            return self.sample_shared(input, &options, None, out);
        }
        let mut rng = SeededRng::new(seed);
        let pass = self.prepare(input, sampler)?;
        out.reserve(samples * self.model.head_width());
        let mut done = 0;
        while done < samples {
            let (n, w) = self.next_group(pass, SAMPLE_BLOCK.min(samples - done), &mut Noise::Stream(&mut rng));
            out.extend_from_slice(&self.group[..n * w]);
            done += n;
        }
        Ok(())
    }

    /// Checks and normalises the input and runs the deterministic prefix once.
    fn prepare(&mut self, input: &[f32], sampler: Sampler) -> Result<Pass, PredictError> {
        let model = self.model;
        let d = self.one_input(input)?;
        finite(input)?;
        match model.normalization() {
            Some(n) => n.apply(input, &mut self.a[..d]),
            None => self.a[..d].copy_from_slice(input),
        }
        let pass = self.pass(sampler);
        self.finish_prefix(pass, 0, d);
        Ok(pass)
    }

    /// The input size, or the error for an `input` that is not one input long.
    fn one_input(&self, input: &[f32]) -> Result<usize, PredictError> {
        let d = self.model.input_dim();
        if input.len() != d {
            return Err(PredictError::InputLength { expected: d, found: input.len() });
        }
        Ok(d)
    }

    /// The pass `sampler` asks for (`Mean` for a model that draws nothing). Shared weights prepare each input as
    /// local reparameterization does; [`Self::predict_shared`] runs their samples.
    fn pass(&self, sampler: Sampler) -> Pass {
        match sampler {
            _ if self.first_stochastic == self.model.layers().len() => Pass::Mean,
            Sampler::Mean => Pass::Mean,
            Sampler::LocalReparam | Sampler::SharedWeights => Pass::LocalReparam,
            Sampler::WeightSampling => Pass::WeightSampling,
        }
    }

    /// Whether `sampler` runs shared weights on this model (which draws something).
    fn shares_weights(&self, sampler: Sampler) -> bool {
        sampler == Sampler::SharedWeights && self.first_stochastic < self.model.layers().len()
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
        let first = (self.model.layers().get(prefix_end), self.model.first_moments());
        if let (Pass::LocalReparam, (Some(Layer::BayesianDense(l)), Some(expansion))) = (pass, first) {
            let (mean, sd) = (&mut self.prefix[..], &mut self.prefix_sd[..]);
            expansion.moments(l, self.isa, &self.a[..width], &mut self.moments_scratch, (mean, sd));
            self.prefix_width = l.out_features();
        } else {
            self.prefix[..width].copy_from_slice(&self.a[..width]);
        }
    }

    /// Draws up to `want` samples into `self.group` (sample-major); returns how many and the head width.
    fn next_group(&mut self, pass: Pass, want: usize, noise: &mut Noise) -> (usize, usize) {
        let w = self.model.head_width();
        match pass {
            Pass::Mean => {
                self.group[..w].copy_from_slice(&self.prefix[..w]);
                (1, w)
            }
            Pass::WeightSampling => {
                self.draw_weight_sample(noise.rng());
                self.group[..w].copy_from_slice(&self.a[..w]);
                (1, w)
            }
            Pass::LocalReparam => {
                let s = BLOCK_SIZES.into_iter().find(|b| *b <= want).unwrap_or(1);
                self.draw_block(s, noise);
                for (t, head) in self.group[..s * w].chunks_exact_mut(w).enumerate() {
                    for (k, v) in head.iter_mut().enumerate() {
                        *v = self.block_a[k * s + t];
                    }
                }
                (s, w)
            }
        }
    }
}

/// The noise values one local-reparameterization sample of `model` draws, where all of its stochastic layers are
/// Bayesian dense (the only ones whose noise a [`NoiseTape`] replays: the stream then draws nothing else); else 0.
fn taped_noise_per_sample(model: &Model) -> usize {
    let mut stochastic = model.layers().iter().filter(|l| l.is_stochastic());
    stochastic
        .try_fold(0, |sum, l| match l {
            Layer::BayesianDense(d) => Some(sum + d.out_features()),
            _ => None,
        })
        .unwrap_or(0)
}

/// `input` itself, or the error naming its first non-finite value. The check runs over every value without a
/// branch (the largest magnitude's bits, below infinity's: it vectorises); only a failing input is searched for
/// its first non-finite value.
// Inlined where `Isa::run` compiles a batch's transpose (x86-64); one copy elsewhere (android/README.md, "Size").
#[cfg_attr(target_arch = "x86_64", inline(always))]
fn finite(input: &[f32]) -> Result<&[f32], PredictError> {
    let largest = input.iter().fold(0, |m, v| m.max(v.abs().to_bits()));
    if largest < f32::INFINITY.to_bits() {
        return Ok(input);
    }
    match input.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, &value)) => Err(PredictError::NonFiniteInput { index, value }),
        None => Ok(input),
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

    #[test]
    fn finite_refuses_exactly_the_non_finite_values_and_names_the_first() {
        let special =
            [0.0, -0.0, 1e-45, -1e-45, f32::MIN_POSITIVE, f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY]
                .into_iter()
                .chain([f32::NAN, -f32::NAN, f32::from_bits(0x7f80_0001), f32::from_bits(0xff80_0001)]);
        let special: Vec<f32> = special.collect();
        for &a in &special {
            for &b in &special {
                let x = [1.0, a, -2.0, b, 3.0];
                let first = x.iter().position(|v| !v.is_finite());
                match (finite(&x), first) {
                    (Ok(got), None) => assert_eq!(got.as_ptr(), x.as_ptr()),
                    (Err(PredictError::NonFiniteInput { index, value }), Some(i)) => {
                        assert_eq!((index, value.to_bits()), (i, x[i].to_bits()));
                    }
                    (got, want) => panic!("{x:?}: {got:?}, first non-finite {want:?}"),
                }
            }
        }
    }

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
    /// the second convolution's block regroups its samples where the instruction set does): two padded Bayesian
    /// convolutions (the first's input shared by every sample, the second's a block of them), each followed by a
    /// ReLU and 2 x 2 max pooling (which AVX-512 fuses into a pruned convolution), a fixed 1x1 convolution, average
    /// pooling, then a Bayesian dense head of 3.
    fn cnn(prune: bool) -> Model {
        use crate::layers::{BayesianConv2d, Conv2d, ConvGeometry, Pool2d, PoolGeometry, PoolKind};
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
            bayesian(ConvGeometry::new(3, 4, [3, 3]).padding([1, 1])),
            Layer::Activation(Activation::Relu),
            pool(PoolKind::Max),
            Layer::Conv2d(Conv2d::new(
                ConvGeometry::new(4, 2, [1, 1]),
                vec![0.5, -0.25, 1.0, 0.75, 0.0, 1.5, -1.0, 0.5],
                vec![0.1, -0.1],
            )),
            pool(PoolKind::Avg),
            Layer::Flatten,
            Layer::BayesianDense(BayesianDense::new(2, 3, draw(6, 0.5), vec![0.05; 6], vec![0.0; 3], vec![0.01; 3])),
        ];
        let task = Task::Classification { classes: 3, labels: vec![] };
        Model::new_image(layers, [1, 12, 12], task, None, Provenance::default()).unwrap()
    }

    /// Every instruction set draws the bits of the portable build of its kind (fused or not), for every sampler
    /// and block size, dense or sparse, fully connected or convolutional; `Mean` and weight sampling are never
    /// fused. Shared weights run a batch of 37 inputs, so that their blocks of inputs are 32 and 8 wide.
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
            let references = [reference(false), reference(true)];
            // Under Miri (where only the portable kinds run) shared weights are left to `tests/parallel.rs`, and the
            // references are not drawn twice: those took most of this test's time there (`runtime/miri.sh`).
            let samplers = [Sampler::LocalReparam, Sampler::WeightSampling, Sampler::Mean, Sampler::SharedWeights];
            for sampler in samplers.into_iter().filter(|s| !cfg!(miri) || *s != Sampler::SharedWeights) {
                let (unfused, fused) = (draw(references[0], sampler), draw(references[1], sampler));
                let never_fused = matches!(sampler, Sampler::WeightSampling | Sampler::Mean);
                assert_eq!(unfused == fused, never_fused, "{sampler:?}");
                for isa in Isa::available().into_iter().filter(|i| !cfg!(miri) || !references.contains(i)) {
                    let want = if isa.fused() { &fused } else { &unfused };
                    assert_eq!(&draw(isa, sampler), want, "{isa:?}, {sampler:?}");
                }
            }
            if cfg!(miri) {
                continue;
            }
            let batch: Vec<f32> = (0..d * 37).map(|i| ((i % 29) as f32 - 14.0) / 9.0).collect();
            let options = PredictOptions::default().samples(3).seed(5).sampler(Sampler::SharedWeights);
            let shared = |isa: Isa| Predictor::on(&model, isa).predict_batch(&batch, &options).unwrap();
            let (unfused, fused) = (shared(references[0]), shared(references[1]));
            for isa in Isa::available() {
                assert_eq!(shared(isa), if isa.fused() { fused.clone() } else { unfused.clone() }, "{isa:?}");
            }
        }
    }
}
