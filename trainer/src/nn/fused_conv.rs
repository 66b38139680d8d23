//! The convolutional layers' part of the fused CPU step, on plain NCHW slices: the forward and backward passes
//! of a Bayesian convolution (Flipout or one weight sample, drawing the same noise in the same order as
//! `BayesConv2d`'s composed passes), of a deterministic convolution, and of pooling. The products are
//! [`ConvShape`]'s; the unfolded input is kept from the forward pass for the backward one.

use super::conv::{BayesConv2d, Conv2d};
use super::fused_layers::{forward_tensor, BayesGradients, TensorGradients, TensorUse, PARALLEL_MIN};
use super::noise::Noise;
use crate::kernels::conv::ConvShape;
use crate::kernels::posterior::{noise_values, ForwardUse};
use crate::kernels::tensor_values::values;
use crate::recipe::Estimator;
use bnn_runtime::{PoolGeometry, PoolKind};
use candle_core::Result;
use rayon::prelude::*;

/// What a convolution's forward pass keeps for its backward pass.
pub(crate) struct ConvRecord {
    shape: ConvShape,
    /// The unfolded input.
    cols: Vec<f32>,
    weights: ConvWeights,
}

/// What a convolution multiplied with.
enum ConvWeights {
    /// A deterministic convolution's kernel, or one weight sample of a Bayesian one with its two noise keys
    /// (weights, biases).
    Plain {
        kernel: Vec<f32>,
        keys: Option<[u64; 2]>,
    },
    Flipout(Box<FlipoutRecord>),
}

/// One Flipout pass: `conv(x, mu) + s_out ∘ conv(s_in ∘ x, sigma ∘ eps) + mu_b + sigma_b ∘ e` (see `nn::conv`).
struct FlipoutRecord {
    keys: [u64; 2],
    /// The kernel means (0 where pruned), the kernel noise `eps` and the perturbation `sigma ∘ eps`.
    mean: Vec<f32>,
    eps: Vec<f32>,
    delta: Vec<f32>,
    /// The input signs `[n, in]` and the unfolded input with each example's channels signed by them; `None`
    /// for an input of one channel, whose sign is folded into `sign_out` (`s_out s_in conv(x, delta)`).
    signed_input: Option<SignedInput>,
    /// `[n, out]`: the output signs (times the input's sign for one input channel) and the biases' noise.
    sign_out: Vec<f32>,
    bias_noise: Vec<f32>,
}

struct SignedInput {
    signs: Vec<f32>,
    cols: Vec<f32>,
}

/// The data term's gradients of a convolution: with respect to the kernel and biases it multiplied with (the
/// means, under Flipout), and under Flipout with respect to their standard deviations.
pub(crate) struct ConvGradients {
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) scale: Option<[Vec<f32>; 2]>,
}

impl ConvGradients {
    /// As the fused update of a Bayesian layer takes them.
    pub(crate) fn into_bayes(self) -> BayesGradients {
        let [weight_scale, bias_scale] = self.scale.map_or([None, None], |[w, b]| [Some(w), Some(b)]);
        BayesGradients {
            weight: TensorGradients { mean: self.weight, var: weight_scale },
            bias: TensorGradients { mean: self.bias, var: bias_scale },
        }
    }
}

/// Writes `v` into `out`, block `e` (of `block` values) of row `r` multiplied by `factor(r, e)`: a copy of
/// `v` (row-major, `rows` rows) with each example's signs applied.
fn scaled_blocks(v: &[f32], out: &mut [f32], rows: usize, block: usize, factor: impl Fn(usize, usize) -> f32 + Sync) {
    let per_row = v.len() / rows / block;
    let blocks = v.par_chunks_exact(block).zip(out.par_chunks_exact_mut(block));
    blocks.enumerate().with_min_len(PARALLEL_MIN / block.max(1)).for_each(|(i, (b, o))| {
        let f = factor(i / per_row, i % per_row);
        o.iter_mut().zip(b).for_each(|(o, v)| *o = v * f);
    });
}

/// `sum` of each row of the row-major `v` of `rows` rows.
fn row_sums(v: &[f32], rows: usize) -> Vec<f32> {
    v.chunks_exact(v.len() / rows).map(|r| r.iter().sum()).collect()
}

impl ConvRecord {
    /// `conv(x, kernel) + bias`, NCHW, keeping the unfolded input.
    fn plain(shape: ConvShape, x: &[f32], kernel: Vec<f32>, bias: &[f32], keys: Option<[u64; 2]>) -> (Vec<f32>, Self) {
        let cols = shape.unfold(x);
        let mut out = shape.multiply(&kernel, &cols);
        for (row, b) in out.chunks_exact_mut(shape.output_len() / bias.len()).zip(bias) {
            row.iter_mut().for_each(|v| *v += b);
        }
        (shape.by_example(&out), Self { shape, cols, weights: ConvWeights::Plain { kernel, keys } })
    }

    /// How a Bayesian convolution's pass used its weights and biases (for the fused update).
    pub(crate) fn tensor_uses(&self) -> Option<[TensorUse; 2]> {
        match &self.weights {
            ConvWeights::Plain { keys: Some([w, b]), .. } => {
                Some([w, b].map(|&key| TensorUse { usage: ForwardUse::Sample { key }, kl_key: None }))
            }
            ConvWeights::Plain { keys: None, .. } => None,
            ConvWeights::Flipout(f) => {
                Some(f.keys.map(|key| TensorUse { usage: ForwardUse::Scale, kl_key: Some(key) }))
            }
        }
    }

    /// The data term's gradients from `g = d loss / d output` (NCHW), and with `input_grad` the input's.
    pub(crate) fn backward(&self, g: &[f32], input_grad: bool) -> (ConvGradients, Option<Vec<f32>>) {
        let s = &self.shape;
        let g = s.by_channel(g);
        let out_channels = self.out_channels();
        let weight = s.kernel_gradient(&g, &self.cols);
        let bias = row_sums(&g, out_channels);
        match &self.weights {
            ConvWeights::Plain { kernel, .. } => {
                let grad_x = input_grad.then(|| s.fold(&s.unfolded_gradient(kernel, &g)));
                (ConvGradients { weight, bias, scale: None }, grad_x)
            }
            ConvWeights::Flipout(f) => {
                let p = s.positions();
                let n = f.sign_out.len() / out_channels;
                let mut signed_g = vec![0.0f32; g.len()];
                scaled_blocks(&g, &mut signed_g, out_channels, p, |o, e| f.sign_out[e * out_channels + o]);
                let signed_cols = f.signed_input.as_ref().map_or(&self.cols, |i| &i.cols);
                let mut weight_scale = s.kernel_gradient(&signed_g, signed_cols);
                weight_scale.iter_mut().zip(&f.eps).for_each(|(g, e)| *g *= e);
                let bias_scale = (0..out_channels)
                    .map(|o| {
                        let row = &g[o * n * p..][..n * p];
                        row.chunks_exact(p)
                            .enumerate()
                            .map(|(e, b)| f.bias_noise[e * out_channels + o] * b.iter().sum::<f32>())
                            .sum()
                    })
                    .collect();
                let grad_x = input_grad.then(|| {
                    let mut cols = s.unfolded_gradient(&f.mean, &g);
                    match &f.signed_input {
                        // Channel by channel: `delta_c^T (s_out ∘ s_in[:, c] ∘ g)`.
                        Some(input) => {
                            let in_channels = input.signs.len() / n;
                            let mut channel_g = vec![0.0f32; g.len()];
                            for c in 0..in_channels {
                                let sign = |_, e| input.signs[e * in_channels + c];
                                scaled_blocks(&signed_g, &mut channel_g, out_channels, p, sign);
                                s.add_channel_gradient(&f.delta, c, &channel_g, &mut cols);
                            }
                        }
                        None => {
                            let perturbed = s.unfolded_gradient(&f.delta, &signed_g);
                            cols.iter_mut().zip(&perturbed).for_each(|(c, v)| *c += v);
                        }
                    }
                    s.fold(&cols)
                });
                (ConvGradients { weight, bias, scale: Some([weight_scale, bias_scale]) }, grad_x)
            }
        }
    }

    fn out_channels(&self) -> usize {
        self.shape.geometry().out_channels
    }
}

impl BayesConv2d {
    /// The fused step's forward pass of `x` (NCHW, as `shape` reads it) with `estimator` — Flipout or one
    /// weight sample — drawing the noise of the composed passes in their order: the two parameter keys, then
    /// (Flipout) the input and output signs and the biases' noise.
    pub(crate) fn forward_host(
        &self,
        x: &[f32],
        shape: ConvShape,
        estimator: Estimator,
        noise: &mut Noise,
    ) -> Result<(Vec<f32>, ConvRecord)> {
        let p = &self.posterior;
        let keys = [noise.next_key(), noise.next_key()];
        let mask = p.host_mask.as_deref();
        let kernel_len = p.weight_mu.as_tensor().elem_count();
        let tensor = |mu: &candle_core::Var, rho: &candle_core::Var, mask, usage, len| {
            let mut out = vec![0.0f32; len];
            forward_tensor(mu, rho, mask, usage, &mut out).map(|()| out)
        };
        let bias_len = self.geometry.out_channels;
        if estimator == Estimator::WeightSampling {
            let kernel = tensor(&p.weight_mu, &p.weight_rho, mask, ForwardUse::Sample { key: keys[0] }, kernel_len)?;
            let bias = tensor(&p.bias_mu, &p.bias_rho, None, ForwardUse::Sample { key: keys[1] }, bias_len)?;
            return Ok(ConvRecord::plain(shape, x, kernel, &bias, Some(keys)));
        }
        let mean: Vec<f32> = values(p.weight_mu.as_tensor(), |mu| match mask {
            Some(m) => mu.iter().zip(m).map(|(a, b)| a * b).collect(),
            None => mu.to_vec(),
        })?;
        let eps = noise_values(keys[0], kernel_len);
        let mut delta = tensor(&p.weight_mu, &p.weight_rho, mask, ForwardUse::Scale, kernel_len)?;
        delta.iter_mut().zip(&eps).for_each(|(d, e)| *d *= e);
        let n = shape.examples();
        let (in_channels, out_channels) = (self.geometry.in_channels, self.geometry.out_channels);
        let sign_in = noise.sign_values(n * in_channels);
        let mut sign_out = noise.sign_values(n * out_channels);
        let mut bias_noise = vec![0.0f32; n * out_channels];
        noise.fill_gaussian(&mut bias_noise);
        let bias_sigma = tensor(&p.bias_mu, &p.bias_rho, None, ForwardUse::Scale, bias_len)?;
        let cols = shape.unfold(x);
        let positions = shape.positions();
        let signed_input = if in_channels == 1 {
            sign_out.iter_mut().enumerate().for_each(|(i, s)| *s *= sign_in[i / out_channels]);
            None
        } else {
            let plane = x.len() / (n * in_channels);
            let mut signed_x = vec![0.0f32; x.len()];
            scaled_blocks(x, &mut signed_x, n * in_channels, plane, |r, _| sign_in[r]);
            Some(SignedInput { cols: shape.unfold(&signed_x), signs: sign_in })
        };
        let mut out = shape.multiply(&mean, &cols);
        let perturbation = shape.multiply(&delta, signed_input.as_ref().map_or(&cols, |i| &i.cols));
        values(p.bias_mu.as_tensor(), |bias_mu| {
            let blocks = out.par_chunks_exact_mut(positions).zip(perturbation.par_chunks_exact(positions));
            blocks.enumerate().with_min_len(PARALLEL_MIN / positions.max(1)).for_each(|(i, (b, q))| {
                let (o, e) = (i / n, i % n);
                let at = e * out_channels + o;
                let (sign, shift) = (sign_out[at], bias_mu[o] + bias_sigma[o] * bias_noise[at]);
                b.iter_mut().zip(q).for_each(|(v, q)| *v += sign * q + shift);
            });
        })?;
        let record = FlipoutRecord { keys, mean, eps, delta, signed_input, sign_out, bias_noise };
        Ok((shape.by_example(&out), ConvRecord { shape, cols, weights: ConvWeights::Flipout(Box::new(record)) }))
    }
}

impl Conv2d {
    /// The fused step's forward pass of `x` (NCHW, as `shape` reads it).
    pub(crate) fn forward_host(&self, x: &[f32], shape: ConvShape) -> Result<(Vec<f32>, ConvRecord)> {
        let kernel = values(self.weight.as_tensor(), |w| w.to_vec())?;
        values(self.bias.as_tensor(), |b| ConvRecord::plain(shape, x, kernel, b, None))
    }
}

/// What a pooling pass keeps: the input's size per example `[c, h, w]`, and for max pooling the index (in
/// the example's input) each output was taken from.
pub(crate) struct PoolRecord {
    input: [usize; 3],
    kind: PoolKind,
    window: [usize; 2],
    argmax: Vec<u32>,
}

impl PoolRecord {
    /// Pools `x` (NCHW, `input` per example) with a window that tiles the maps (`nn::conv::check_trainable_pool`)
    /// and moves by its own size; returns the output and the record.
    pub(crate) fn forward(x: &[f32], input: [usize; 3], kind: PoolKind, geometry: &PoolGeometry) -> (Vec<f32>, Self) {
        let ([_, h, w], [kh, kw]) = (input, geometry.kernel);
        let (oh, ow) = (h / kh, w / kw);
        let planes = x.len() / (h * w);
        let mut out = vec![0.0f32; planes * oh * ow];
        let window = move |o: usize| {
            let (y0, x0) = (o / ow * kh, o % ow * kw);
            (0..kh).flat_map(move |dy| (0..kw).map(move |dx| (y0 + dy) * w + x0 + dx))
        };
        let (inputs, outputs) = (x.par_chunks_exact(h * w), out.par_chunks_exact_mut(oh * ow));
        let argmax =
            match kind {
                PoolKind::Max => {
                    let mut argmax = vec![0u32; planes * oh * ow];
                    inputs.zip(outputs).zip(argmax.par_chunks_exact_mut(oh * ow)).for_each(|((src, dst), at)| {
                        for (o, (d, a)) in dst.iter_mut().zip(at).enumerate() {
                            let (best, value) = window(o).fold((0, f32::NEG_INFINITY), |(bi, bv), i| {
                                if src[i] > bv {
                                    (i, src[i])
                                } else {
                                    (bi, bv)
                                }
                            });
                            (*d, *a) = (value, best as u32);
                        }
                    });
                    argmax
                }
                PoolKind::Avg => {
                    inputs.zip(outputs).for_each(|(src, dst)| {
                        for (o, d) in dst.iter_mut().enumerate() {
                            *d = window(o).map(|i| src[i]).sum::<f32>() / (kh * kw) as f32;
                        }
                    });
                    Vec::new()
                }
            };
        (out, Self { input, kind, window: geometry.kernel, argmax })
    }

    /// The output size per example.
    pub(crate) fn output(&self) -> [usize; 3] {
        let [c, h, w] = self.input;
        [c, h / self.window[0], w / self.window[1]]
    }

    /// The input's gradient from the output's gradient `g`.
    pub(crate) fn backward(&self, g: &[f32]) -> Vec<f32> {
        let ([_, h, w], [kh, kw]) = (self.input, self.window);
        let (oh, ow) = (h / kh, w / kw);
        let mut grad_x = vec![0.0f32; g.len() * kh * kw];
        let planes = g.par_chunks_exact(oh * ow).zip(grad_x.par_chunks_exact_mut(h * w)).enumerate();
        planes.for_each(|(plane, (src, dst))| {
            for (o, g) in src.iter().enumerate() {
                match self.kind {
                    PoolKind::Max => dst[self.argmax[plane * oh * ow + o] as usize] += g,
                    PoolKind::Avg => {
                        let (y0, x0) = (o / ow * kh, o % ow * kw);
                        for dy in 0..kh {
                            dst[(y0 + dy) * w + x0..][..kw].iter_mut().for_each(|d| *d += g / (kh * kw) as f32);
                        }
                    }
                }
            }
        });
        grad_x
    }
}
