//! Shared weights ([`Sampler::SharedWeights`](crate::Sampler::SharedWeights)): the inputs of a batch see the same
//! Monte-Carlo networks, as in a framework's forward pass of a batch.
//!
//! Each sample's network — every stochastic layer after a first Bayesian dense one — is drawn once for the batch
//! where all of them fit in [`NETWORKS_IN_MEMORY`] and the batch has several chunks of [`CHUNK`] inputs, else once
//! per chunk as its samples run (so that it is used while it is in the cache; each thread of a parallel batch
//! draws them for its own inputs), and the inputs run through it [`GROUP`] at a time as one block: they sit in the
//! columns where local reparameterization puts its samples, so the same block kernels read each stored weight once
//! and multiply a row of inputs with it (one multiply-add per weight and input, where local reparameterization does a
//! mean, a square and a variance per weight, sample and input). A first Bayesian dense layer draws each input's
//! pre-activations from their exact moments, as local reparameterization does, `m + sd · e` per unit, with one
//! standard-normal `e` per unit and sample that the network holds and every input uses; the moments of a group's
//! inputs come from the same block kernels, the inputs in the columns (fused where the instruction set fuses, so
//! not the bits of a single local-reparameterization prediction's moments). Each input's
//! pre-activations are then exact draws, independent across units and of the later layers' weights (drawn
//! apart), so each input's samples are exact draws of its predictive distribution; the inputs share that noise as
//! they share the later weights, and a unit's noise is drawn once per sample, not once per input and sample.
//! Sample `t`'s network comes from its own stream (seed `seed + t`, jumped), and the block kernels give a column the
//! same bits whatever the block's width. So an item's result depends on the seed and its input only: not on its
//! neighbours, its index or the number of threads (which cut batches at whole groups).

use super::block::fixed_block_layer;
use super::conv::convolve;
use super::{finite, PredictOptions, Predictor, SampleCount};
use crate::error::PredictError;
use crate::kernels::{Compiled, Isa, BLOCK_SIZES, SAMPLE_BLOCK};
use crate::layers::{sample_from_moments, BayesianDense, Layer, RawZeroExpansion};
use crate::model::Model;
use crate::prelude::*;
use crate::sample::{Noise, SeededRng};
use crate::uncertainty::{Accumulator, Prediction};
use core::ops::Range;

/// Inputs that run as one block and share a stream for their first layer's noise.
pub(crate) const GROUP: usize = SAMPLE_BLOCK;

/// Inputs whose networks are drawn together where the batch's networks do not fit in [`NETWORKS_IN_MEMORY`].
const CHUNK: usize = 4 * GROUP;

/// The per-call state of a shared-weights batch (sized once per call, never per sample).
struct Chunk {
    /// Each group's prepared prefixes, or its first layer's pre-activation means then standard deviations, a
    /// column per input: `[groups × 2 · width × GROUP]`. The columns past the batch's end that a block reads hold
    /// zeros (prefixes) or the moments of an empty column (a first layer's); the others are never read.
    prefix: Vec<f32>,
    /// Each input's head outputs of the current group of samples: `[inputs × SAMPLE_BLOCK × head]`.
    heads: Vec<f32>,
}

impl Chunk {
    /// The means and standard deviations of the group of input `i`, each `[w × GROUP]` (room for `items` inputs).
    fn group_prefix(&mut self, i: usize, w: usize, items: usize) -> (&mut [f32], &mut [f32]) {
        self.prefix.resize(self.prefix.len().max(items.div_ceil(GROUP) * 2 * w * GROUP), 0.0);
        self.prefix[i / GROUP * 2 * w * GROUP..][..2 * w * GROUP].split_at_mut(w * GROUP)
    }

    /// Keeps input `i`'s prepared prefix `mean` (and `sd`, the moments' standard deviations) in its group's column.
    fn put_prefix(&mut self, i: usize, mean: &[f32], sd: &[f32], items: usize) {
        let (means, sds) = self.group_prefix(i, mean.len(), items);
        let rows = means.chunks_exact_mut(GROUP).zip(sds.chunks_exact_mut(GROUP));
        for ((m_row, s_row), (m, s)) in rows.zip(mean.iter().zip(sd)) {
            (m_row[i % GROUP], s_row[i % GROUP]) = (*m, *s);
        }
    }
}

impl Predictor<'_> {
    /// The predictions of a row-major batch with shared weights, with the networks `drawn` (by the threads of a
    /// parallel batch), or drawn here.
    pub(crate) fn predict_shared(
        &mut self,
        inputs: &[f32],
        options: &PredictOptions,
        drawn: Option<&dyn DrawnNetworks>,
    ) -> Result<Vec<Prediction>, PredictError> {
        let items = inputs.len() / self.model.input_dim();
        // A batch of several chunks draws every network once, where they fit, rather than once per chunk.
        let len = network_len(self.model);
        let all = match (drawn, networks_in_memory(self.model, options)) {
            (None, Some(total)) if items > CHUNK => {
                let mut all = vec![0.0; total];
                draw_networks(self.model, self.isa, options.seed, 0..total / len, &mut all);
                all
            }
            _ => Vec::new(),
        };
        let all = AllDrawn { all: &all, len };
        let drawn = drawn.or_else(|| (!all.all.is_empty()).then_some(&all as &dyn DrawnNetworks));
        let mut sink = Predictions {
            accs: (0..items.min(CHUNK)).map(|_| Accumulator::new(self.model.task(), SAMPLE_BLOCK, self.isa)).collect(),
            out: Vec::with_capacity(items),
            interval_level: options.interval_level,
        };
        self.sample_shared(inputs, options, drawn, &mut sink)?;
        Ok(sink.out)
    }

    /// Runs the shared-weights samples of `inputs` chunk by chunk into `sink`, with the networks `drawn` or drawn
    /// here.
    pub(super) fn sample_shared(
        &mut self,
        inputs: &[f32],
        options: &PredictOptions,
        drawn: Option<&dyn DrawnNetworks>,
        sink: &mut dyn SharedSink,
    ) -> Result<(), PredictError> {
        options.validate()?;
        let SampleCount::Fixed(samples) = options.samples else {
            return Err(PredictError::InvalidOptions(
                "shared weights take a fixed sample count (an adaptive one would let an input's neighbours decide \
                 how many samples it gets)"
                    .into(),
            ));
        };
        let d = self.model.input_dim();
        if !inputs.len().is_multiple_of(d) {
            return Err(PredictError::BatchLength { input_dim: d, found: inputs.len() });
        }
        let head = self.model.head_width();
        let len = network_len(self.model);
        let mut network = vec![0.0; len];
        let chunk_items = (inputs.len() / d).min(CHUNK);
        let mut chunk = Chunk { prefix: Vec::new(), heads: vec![0.0; chunk_items * SAMPLE_BLOCK * head] };
        // A first Bayesian dense layer's moments are taken a group of inputs at a time, as one block.
        let first = match (self.model.layers().first(), self.model.first_moments()) {
            (Some(Layer::BayesianDense(layer)), Some(expansion)) => Some((layer, expansion)),
            _ => None,
        };
        for group in inputs.chunks(d * CHUNK) {
            let n = group.len() / d;
            if first.is_none() {
                // An input's column gets its prefix alone; the block's columns past the group's end hold 0.
                chunk.prefix.fill(0.0);
            }
            for (q, inputs) in group.chunks(d * GROUP).enumerate() {
                match first {
                    Some((layer, expansion)) => {
                        for x in inputs.chunks_exact(d) {
                            finite(x)?;
                        }
                        let w = layer.out_features();
                        let (means, sds) = chunk.group_prefix(q * GROUP, w, chunk_items);
                        let isa = self.isa;
                        isa.run(GroupMoments { predictor: self, layer, expansion, inputs, means, sds });
                        self.prefix_width = w;
                    }
                    None => {
                        for (i, x) in inputs.chunks_exact(d).enumerate() {
                            self.prepare(x, crate::Sampler::LocalReparam)?;
                            let w = self.prefix_width;
                            let (mean, sd) = (&self.prefix[..w], &self.prefix_sd[..w]);
                            chunk.put_prefix(q * GROUP + i, mean, sd, chunk_items);
                        }
                    }
                }
            }
            for t in 0..samples {
                let network = match drawn {
                    Some(networks) => networks.network(t, self.isa, &mut network),
                    None => {
                        draw_networks(self.model, self.isa, options.seed, t..t + 1, &mut network);
                        &network[..]
                    }
                };
                let isa = self.isa;
                isa.run(SharedSample { predictor: self, chunk: &mut chunk, n, slot: t % SAMPLE_BLOCK, network });
                let filled = t % SAMPLE_BLOCK + 1;
                if filled == SAMPLE_BLOCK || t + 1 == samples {
                    for (i, heads) in chunk.heads.chunks_exact(SAMPLE_BLOCK * head).take(n).enumerate() {
                        sink.add(i, &heads[..filled * head])?;
                    }
                }
            }
            sink.chunk_done(n);
        }
        Ok(())
    }

    /// One sample of a chunk: runs the chunk's inputs through the sample's `network` a block at a time and puts
    /// each input's head outputs in its `slot` of `chunk.heads`.
    #[inline(always)]
    fn shared_sample_inline(&mut self, chunk: &mut Chunk, n: usize, slot: usize, network: &[f32]) {
        let (layers, isa) = (self.model.layers(), self.isa);
        let start = self.first_stochastic;
        let per_input = matches!(layers[start], Layer::BayesianDense(_));
        let (later, first_noise) = (start + usize::from(per_input), draws_from(self.model).0);
        let head = self.model.head_width();
        let w = self.prefix_width;
        for q in 0..n.div_ceil(GROUP) {
            // The block: the group's inputs in its first columns.
            let inputs = (n - q * GROUP).min(GROUP);
            let s = block_width(inputs);
            let (a, b) = (&mut self.block_a, &mut self.block_b);
            let (means, sds) = chunk.prefix[q * 2 * w * GROUP..][..2 * w * GROUP].split_at(w * GROUP);
            let rows = a[..w * s].chunks_exact_mut(s).zip(means.chunks_exact(GROUP));
            if per_input {
                // Pre-activations from their moments, with the sample's noise of each unit (the network's first
                // values) for every input.
                for ((row, m), (d, e)) in rows.zip(sds.chunks_exact(GROUP).zip(&network[..first_noise])) {
                    for ((y, m), d) in row.iter_mut().zip(&m[..s]).zip(&d[..s]) {
                        *y = m + d * e;
                    }
                }
            } else {
                for (row, m) in rows {
                    row.copy_from_slice(&m[..s]);
                }
            }
            let mut width = w;
            let mut at = first_noise;
            for (index, layer) in layers.iter().enumerate().skip(later) {
                match layer {
                    Layer::BayesianDense(l) => {
                        let (nw, nb) = (l.weight_mu().len(), l.bias_mu().len());
                        let (weights, bias) = network[at..at + nw + nb].split_at(nw);
                        let h = &a[..l.in_features() * s];
                        l.layout().affine_block(isa, (weights, bias), (h, s), &mut self.block_scratch.live, b);
                        at += nw + nb;
                        width = l.out_features();
                        core::mem::swap(a, b);
                    }
                    Layer::Dropout(_) => {
                        let mask = &network[at..at + self.model.max_width()];
                        for (row, m) in a[..width * s].chunks_exact_mut(s).zip(mask) {
                            row.iter_mut().for_each(|v| *v *= m);
                        }
                        at += mask.len();
                    }
                    Layer::Conv2d(_) | Layer::BayesianConv2d(_) => {
                        let kernels = match layer {
                            Layer::BayesianConv2d(l) => {
                                let (nw, nb) = (l.weight_mu().len(), l.bias_mu().len());
                                let (weights, bias) = network[at..at + nw + nb].split_at(nw);
                                at += nw + nb;
                                (weights, bias, 1)
                            }
                            Layer::Conv2d(l) => (l.weight(), l.bias(), 1),
                            _ => continue, // not reached: the arm takes convolutions only
                        };
                        let room = self.conv_room.as_deref_mut();
                        width = convolve(isa.fused(), &self.plans[index], (a, b), s, kernels, room);
                    }
                    fixed => {
                        let live = &mut self.block_scratch.live;
                        width = fixed_block_layer(self.model, isa, (index, fixed), (a, b, s), width, live);
                    }
                }
            }
            for i in 0..inputs {
                let out = &mut chunk.heads[((q * GROUP + i) * SAMPLE_BLOCK + slot) * head..][..head];
                for (k, v) in out.iter_mut().enumerate() {
                    *v = a[k * s + i];
                }
            }
        }
    }
}

/// The pre-activation moments of a group of up to [`GROUP`] inputs (`inputs`, row-major, every value finite)
/// through a first Bayesian dense layer, as one block: each input, normalised and expanded as for one input, fills
/// a column of the block, and two block products give every input's moments at once, into the group's prefix
/// (`means`, `sds`: `[width × GROUP]`). Work for [`Isa::run`]: the element-wise passes compiled for the
/// instruction set.
struct GroupMoments<'p, 'm, 'a> {
    predictor: &'p mut Predictor<'m>,
    layer: &'m BayesianDense,
    expansion: &'m RawZeroExpansion,
    inputs: &'a [f32],
    means: &'a mut [f32],
    sds: &'a mut [f32],
}

/// Features of a group's inputs transposed into the block together: their rows of the block (a row per feature,
/// a column per input) stay in the L1 cache while the inputs fill them, are normalised and expanded.
const FEATURE_TILE: usize = 16;

impl Compiled for GroupMoments<'_, '_, '_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let GroupMoments { predictor: p, layer, expansion, inputs, means, sds } = self;
        let (model, isa) = (p.model, p.isa);
        let d = model.input_dim();
        let n = inputs.len() / d;
        let s = block_width(n);
        let (u, z) = (&mut p.block_scratch.sq[..d * s], &mut p.block_scratch.noise[..d * s]);
        for first in (0..d).step_by(FEATURE_TILE) {
            let features = first..(first + FEATURE_TILE).min(d);
            let (u, z) = (&mut u[first * s..features.end * s], &mut z[first * s..features.end * s]);
            for (i, x) in inputs.chunks_exact(d).enumerate() {
                for (row, v) in u.chunks_exact_mut(s).zip(&x[features.clone()]) {
                    row[i] = *v;
                }
            }
            if let Some(normalization) = model.normalization() {
                for (c, row) in features.clone().zip(u.chunks_exact_mut(s)) {
                    normalization.apply_to_feature(c, &mut row[..n]);
                }
            }
            expansion.shift_rows(first, u, z, s);
            // Columns past the group's end hold nothing (a group of 17 runs as a block of 32).
            if n < s {
                for row in u.chunks_exact_mut(s).chain(z.chunks_exact_mut(s)) {
                    row[n..].fill(0.0);
                }
            }
        }
        let w = layer.out_features();
        let (live, biases) = (&mut p.block_scratch.live, expansion.biases());
        if s == GROUP {
            layer.moments_block(isa, (u, z, s), biases, live, (means, sds));
            return;
        }
        let (mean, sd) = (&mut p.block_a[..w * s], &mut p.block_b[..w * s]);
        layer.moments_block(isa, (u, z, s), biases, live, (mean, sd));
        let rows = means.chunks_exact_mut(GROUP).zip(sds.chunks_exact_mut(GROUP));
        for ((m_row, s_row), (m, v)) in rows.zip(mean.chunks_exact(s).zip(sd.chunks_exact(s))) {
            m_row[..s].copy_from_slice(m);
            s_row[..s].copy_from_slice(v);
        }
    }
}

/// The columns of the block that runs `n` inputs of a group: the smallest block kernel's that takes them (two for
/// one input: a block of one would take the single-vector products, whose sums run in another order).
fn block_width(n: usize) -> usize {
    BLOCK_SIZES.into_iter().rev().find(|b| *b >= n).unwrap_or(GROUP).max(2)
}

/// One shared-weights sample of a chunk, as work for [`Isa::run`](crate::kernels::Isa::run): the block's
/// element-wise passes compiled for the predictor's instruction set.
struct SharedSample<'p, 'm, 'c, 'n> {
    predictor: &'p mut Predictor<'m>,
    chunk: &'c mut Chunk,
    n: usize,
    slot: usize,
    network: &'n [f32],
}

impl Compiled for SharedSample<'_, '_, '_, '_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.predictor.shared_sample_inline(self.chunk, self.n, self.slot, self.network)
    }
}

/// The length of one network's draws under shared weights: a first Bayesian dense layer's noise (a value per unit),
/// then the weights and biases of every later Bayesian layer and a mask per dropout layer.
pub(crate) fn network_len(model: &Model) -> usize {
    let (first_noise, later) = draws_from(model);
    first_noise
        + later
            .iter()
            .map(|layer| match layer {
                Layer::BayesianDense(l) => l.weight_mu().len() + l.bias_mu().len(),
                Layer::BayesianConv2d(l) => l.weight_mu().len() + l.bias_mu().len(),
                Layer::Dropout(_) => model.max_width(),
                _ => 0,
            })
            .sum::<usize>()
}

/// The most floats the networks of a shared-weights batch take when they are drawn once for the whole batch (16
/// MiB); more, and each chunk of inputs draws them as it goes.
const NETWORKS_IN_MEMORY: usize = 1 << 22;

/// The length of every sample's network for `options` (a fixed count) where it fits in [`NETWORKS_IN_MEMORY`] and
/// is not 0.
fn networks_in_memory(model: &Model, options: &PredictOptions) -> Option<usize> {
    let SampleCount::Fixed(samples) = options.samples else { return None };
    samples.checked_mul(network_len(model)).filter(|n| (1..=NETWORKS_IN_MEMORY).contains(n))
}

/// What a shared-weights network holds: the noise of a first stochastic layer that is Bayesian dense (its width; 0
/// for any other), whose pre-activations each input draws from their moments, and the layers whose weights or masks
/// it draws (the stochastic layers after that one, or from the first stochastic one on).
fn draws_from(model: &Model) -> (usize, &[Layer]) {
    let layers = model.layers();
    let start = layers.iter().position(Layer::is_stochastic).unwrap_or(layers.len());
    match layers.get(start) {
        Some(Layer::BayesianDense(l)) => (l.out_features(), &layers[start + 1..]),
        _ => (0, &layers[start..]),
    }
}

/// Every sample's network of a shared-weights batch, drawn before the samples run or as they need them.
pub(crate) trait DrawnNetworks: Sync {
    /// Sample `t`'s network: [`network_len`] values, the bits [`draw_networks`] gives; `own` (that long) is room
    /// to draw it in, on `isa`.
    fn network<'a>(&'a self, t: usize, isa: Isa, own: &'a mut [f32]) -> &'a [f32];
}

/// Networks drawn one after the other into one buffer.
struct AllDrawn<'a> {
    all: &'a [f32],
    len: usize,
}

impl DrawnNetworks for AllDrawn<'_> {
    fn network<'a>(&'a self, t: usize, _: Isa, _: &'a mut [f32]) -> &'a [f32] {
        &self.all[t * self.len..(t + 1) * self.len]
    }
}

/// The sample count of `options` where every sample's network of `model` fits in [`NETWORKS_IN_MEMORY`] together.
#[cfg(feature = "parallel")]
pub(crate) fn networks_fit(model: &Model, options: &PredictOptions) -> Option<usize> {
    networks_in_memory(model, options).map(|total| total / network_len(model))
}

/// The shared-weights networks of samples `samples` (seed `seed`) of `model`, one after the other into `out` (each
/// [`network_len`] values), on `isa`: network `t` comes from its own stream (seed `seed + t`, jumped 2^128 draws
/// ahead of that seed's), so whoever draws it draws the same bits.
pub(crate) fn draw_networks(model: &Model, isa: Isa, seed: u64, samples: Range<usize>, out: &mut [f32]) {
    isa.run(NetworkDraw { model, isa, seed, samples, out })
}

/// Networks to draw, as work for [`Isa::run`]: their Gaussian transforms compiled for `isa`.
struct NetworkDraw<'m, 'o> {
    model: &'m Model,
    isa: Isa,
    seed: u64,
    samples: Range<usize>,
    out: &'o mut [f32],
}

impl Compiled for NetworkDraw<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (model, isa) = (self.model, self.isa);
        let len = network_len(model);
        let (first_noise, later) = draws_from(model);
        for (t, network) in self.samples.zip(self.out.chunks_exact_mut(len.max(1))) {
            let mut rng = SeededRng::new(self.seed.wrapping_add(t as u64)).jumped();
            if first_noise > 0 {
                rng.fill_gaussian_on(isa, &mut network[..first_noise]);
            }
            let mut at = first_noise;
            for layer in later {
                match layer {
                    Layer::BayesianDense(l) => {
                        let (w, b) = (l.weight_mu().len(), l.bias_mu().len());
                        let (weights, rest) = network[at..].split_at_mut(w);
                        let noise = &mut Noise::Stream(&mut rng);
                        sample_from_moments(isa, l.weight_mu(), l.weight_sigma(), 1, weights, noise);
                        sample_from_moments(isa, l.bias_mu(), l.bias_sigma(), 1, &mut rest[..b], noise);
                        at += w + b;
                    }
                    Layer::BayesianConv2d(l) => {
                        let (w, b) = (l.weight_mu().len(), l.bias_mu().len());
                        let (weights, rest) = network[at..].split_at_mut(w);
                        l.sample_kernels(isa, 1, (weights, &mut rest[..b]), &mut rng);
                        at += w + b;
                    }
                    Layer::Dropout(d) => {
                        let mask = &mut network[at..at + model.max_width()];
                        mask.fill(1.0);
                        d.apply_sampled(mask, &mut rng);
                        at += mask.len();
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Where a chunk's head outputs go.
pub(super) trait SharedSink {
    /// The chunk's input `i`'s head outputs of a group of samples: `[n × head]`, in sample order.
    fn add(&mut self, i: usize, heads: &[f32]) -> Result<(), PredictError>;
    /// The end of a chunk of `n` inputs.
    fn chunk_done(&mut self, n: usize);
}

/// Each input's statistics, and the finished predictions.
struct Predictions {
    accs: Vec<Accumulator>,
    out: Vec<Prediction>,
    interval_level: f32,
}

impl SharedSink for Predictions {
    fn add(&mut self, i: usize, heads: &[f32]) -> Result<(), PredictError> {
        self.accs[i].add(heads)
    }
    fn chunk_done(&mut self, n: usize) {
        for acc in &mut self.accs[..n] {
            self.out.push(acc.finish(self.interval_level));
            acc.reset();
        }
    }
}

/// One input's raw head outputs, sample after sample.
impl SharedSink for Vec<f32> {
    fn add(&mut self, _: usize, heads: &[f32]) -> Result<(), PredictError> {
        self.extend_from_slice(heads);
        Ok(())
    }
    fn chunk_done(&mut self, _: usize) {}
}
