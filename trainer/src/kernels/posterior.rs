//! The two fused passes over one parameter tensor of a Bayesian layer (its weights or its biases), on plain
//! slices:
//!
//! - [`forward_values`] makes the tensor the forward pass multiplies with: the variances `sigma^2` (local
//!   reparameterization) or a weight sample `mu + sigma * eps` (weight sampling), pruned entries 0.
//! - [`step`] takes the gradients of the loss with respect to those forward tensors (from the step's
//!   hand-written backward pass),
//!   adds the KL term's own gradients (closed form for a Gaussian prior, the one-sample Monte-Carlo estimate for
//!   the scale mixture), applies the chain rule through `sigma = softplus(rho)`, and hands each element's
//!   gradients with respect to `mu` and `rho` to Adam (or to a test), returning the KL value.
//!
//! Each pass computes `softplus` and its derivative once per element, with the branch-free functions of
//! [`super::math`], and runs over chunks of [`CHUNK`] elements on rayon's threads. A chunk's noise comes from its
//! own seeded stream ([`chunk_noise`]), so the values never depend on the number of threads, and the composed
//! reference path can make the very same noise as a tensor ([`noise_values`]).

use super::isa::widest;
use super::math::{exp_nonpositive, ln_1p_and_reciprocal, ln_positive, softplus_sigmoid};
use crate::optim::AdamStep;
use crate::recipe::PriorSpec;
use bnn_runtime::SeededRng;
use rayon::prelude::*;

/// Elements per chunk: a unit of work for one thread and of one noise stream.
pub const CHUNK: usize = 4096;

/// The prior's constants, as the per-element formulas use them.
#[derive(Debug, Clone, Copy)]
pub enum PriorTerms {
    /// `N(0, s^2)`, KL in closed form: `ln s - ln sigma + (sigma^2 + mu^2) k - 1/2` with `k = 1 / (2 s^2)`.
    Gaussian { ln_s: f32, k: f32 },
    /// `pi N(0, s1^2) + (1 - pi) N(0, s2^2)`, KL by one sample `w`: `-ln sigma - eps^2 / 2 - ln p(w)`, with
    /// `ln p(w) = logsumexp(c1 - k1 w^2, c2 - k2 w^2)` (the `-1/2 ln 2 pi` constants of both densities cancel).
    /// A component of weight 0 has `c = -inf` and drops out.
    Mixture { c1: f32, k1: f32, c2: f32, k2: f32 },
}

impl PriorTerms {
    pub fn new(prior: &PriorSpec) -> Self {
        let k = |s: f32| (0.5 / (s as f64 * s as f64)) as f32;
        match *prior {
            PriorSpec::Gaussian { sigma } => PriorTerms::Gaussian { ln_s: (sigma as f64).ln() as f32, k: k(sigma) },
            PriorSpec::ScaleMixture { pi, sigma1, sigma2 } => {
                let c = |w: f32, s: f32| ((w as f64).max(0.0).ln() - (s as f64).ln()) as f32;
                PriorTerms::Mixture { c1: c(pi, sigma1), k1: k(sigma1), c2: c(1.0 - pi, sigma2), k2: k(sigma2) }
            }
        }
    }

    /// Whether the KL is estimated from a weight sample (and so needs noise under local reparameterization).
    pub fn is_monte_carlo(&self) -> bool {
        matches!(self, PriorTerms::Mixture { .. })
    }
}

/// The standard-normal noise of chunk `chunk` of a parameter tensor whose noise key is `key`.
pub fn chunk_noise(key: u64, chunk: usize, out: &mut [f32]) {
    let seed = key ^ (chunk as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03);
    SeededRng::new(seed).fill_gaussian(out);
}

/// The whole noise tensor of `n` elements for `key`, as [`forward_values`] and [`step`] use it chunk by chunk.
pub fn noise_values(key: u64, n: usize) -> Vec<f32> {
    let mut out = vec![0.0; n];
    for (c, chunk) in out.chunks_mut(CHUNK).enumerate() {
        chunk_noise(key, c, chunk);
    }
    out
}

/// One parameter tensor: means, rhos and the pruning mask (1 = present, 0 = pruned; `None`: all present).
pub struct Posterior<'a> {
    pub mu: &'a mut [f32],
    pub rho: &'a mut [f32],
    pub mask: Option<&'a [f32]>,
}

/// How the forward pass used the tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardUse {
    /// Local reparameterization: means and variances `sigma^2`.
    Moments,
    /// Weight sampling: one sample `mu + sigma * eps` with the noise of this key.
    Sample { key: u64 },
    /// The means and the standard deviations `sigma` used apart, with noise the layer draws itself (Flipout's
    /// perturbation, per-example bias noise).
    Scale,
}

/// The tensor the forward pass multiplies with (see [`ForwardUse`]; the standard deviations for `Scale`), written
/// to `out`, from the means, rhos and pruning mask (1 = present, 0 = pruned; `None`: all present) of one parameter
/// tensor; pruned entries are 0.
pub fn forward_values(mu: &[f32], rho: &[f32], mask: Option<&[f32]>, usage: ForwardUse, out: &mut [f32]) {
    let n = out.len();
    assert!(mu.len() == n && rho.len() == n && mask.is_none_or(|m| m.len() == n));
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, out)| {
        widest(
            #[inline(always)]
            || {
                let at = c * CHUNK;
                let n = out.len();
                let (mu, rho) = (&mu[at..at + n], &rho[at..at + n]);
                let mask = mask.map_or(&ONES[..n], |m| &m[at..at + n]);
                match usage {
                    ForwardUse::Moments => {
                        for i in 0..n {
                            let sigma = softplus_sigmoid(rho[i]).0;
                            out[i] = if mask[i] != 0.0 { sigma * sigma } else { 0.0 };
                        }
                    }
                    ForwardUse::Scale => {
                        for i in 0..n {
                            out[i] = if mask[i] != 0.0 { softplus_sigmoid(rho[i]).0 } else { 0.0 };
                        }
                    }
                    ForwardUse::Sample { key } => {
                        let mut eps = [0.0f32; CHUNK];
                        let eps = &mut eps[..n];
                        chunk_noise(key, c, eps);
                        for i in 0..n {
                            let sigma = softplus_sigmoid(rho[i]).0;
                            out[i] = if mask[i] != 0.0 { mu[i] + sigma * eps[i] } else { 0.0 };
                        }
                    }
                }
            },
        )
    });
}

/// The gradients of the data term with respect to the forward tensors, and what the KL term needs.
#[derive(Clone, Copy)]
pub struct StepInputs<'a> {
    /// d loss / d (the means the forward pass used) for `Moments` and `Scale`, or d loss / d (the weight sample)
    /// for `Sample`.
    pub grad_mean: &'a [f32],
    /// d loss / d (the variances) for `Moments`, d loss / d (the standard deviations) for `Scale`.
    pub grad_var: Option<&'a [f32]>,
    pub usage: ForwardUse,
    pub prior: PriorTerms,
    /// The noise key of the Monte-Carlo KL's weight sample for `Moments` and `Scale` (with a mixture prior).
    pub kl_key: Option<u64>,
    /// The weight of the KL term in the loss.
    pub kl_weight: f32,
}

/// Where each element's gradients go.
pub enum GradientSink<'a> {
    /// One Adam update of `mu` and `rho` in place, with their first and second moments.
    Adam { step: AdamStep, mu_moments: [&'a mut [f32]; 2], rho_moments: [&'a mut [f32]; 2] },
    /// Written out (gradient checks).
    Store { mu: &'a mut [f32], rho: &'a mut [f32] },
}

/// The fused backward pass and update of one parameter tensor (see the module documentation). Returns the KL
/// term `KL(q || p)` of the tensor (a one-sample estimate for the mixture prior), before the update.
pub fn step(p: Posterior, inputs: &StepInputs, sink: GradientSink) -> f64 {
    let n = p.mu.len();
    assert!(p.rho.len() == n && inputs.grad_mean.len() == n && inputs.grad_var.is_none_or(|g| g.len() == n));
    assert!(p.mask.is_none_or(|m| m.len() == n));
    let noise_key = match inputs.usage {
        ForwardUse::Sample { key } => Some(key),
        ForwardUse::Moments | ForwardUse::Scale => inputs.kl_key,
    };
    let sampled = matches!(inputs.usage, ForwardUse::Sample { .. });
    assert!(sampled != inputs.grad_var.is_some(), "a second gradient comes with `Moments` and `Scale` only");
    assert!(noise_key.is_some() || !inputs.prior.is_monte_carlo(), "a Monte-Carlo KL needs its noise key");
    let chunks: Vec<ChunkSink> = match sink {
        GradientSink::Adam { step, mu_moments: [mm, mv], rho_moments: [rm, rv] } => {
            assert!(mm.len() == n && mv.len() == n && rm.len() == n && rv.len() == n);
            mm.chunks_mut(CHUNK)
                .zip(mv.chunks_mut(CHUNK))
                .zip(rm.chunks_mut(CHUNK).zip(rv.chunks_mut(CHUNK)))
                .map(|((mm, mv), (rm, rv))| ChunkSink::Adam(step, [mm, mv, rm, rv]))
                .collect()
        }
        GradientSink::Store { mu, rho } => {
            assert!(mu.len() == n && rho.len() == n);
            mu.chunks_mut(CHUNK).zip(rho.chunks_mut(CHUNK)).map(|(m, r)| ChunkSink::Store([m, r])).collect()
        }
    };
    let partial: Vec<f64> = p
        .mu
        .chunks_mut(CHUNK)
        .zip(p.rho.chunks_mut(CHUNK))
        .zip(chunks)
        .enumerate()
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(c, ((mu, rho), sink))| {
            widest(
                #[inline(always)]
                || {
                    let at = c * CHUNK;
                    let len = mu.len();
                    let mut eps = [0.0f32; CHUNK];
                    let eps = &mut eps[..len];
                    if let Some(key) = noise_key {
                        chunk_noise(key, c, eps);
                    }
                    let chunk = Chunk {
                        mask: p.mask.map(|m| &m[at..at + len]),
                        grad_mean: &inputs.grad_mean[at..at + len],
                        grad_var: inputs.grad_var.map(|g| &g[at..at + len]),
                        eps,
                    };
                    let (w, prior) = (inputs.kl_weight, inputs.prior);
                    match inputs.usage {
                        ForwardUse::Moments => chunk.run_prior(mu, rho, sink, w, prior, |_, gv, _| Data::Moments(gv)),
                        ForwardUse::Sample { .. } => {
                            chunk.run_prior(mu, rho, sink, w, prior, |gm, _, e| Data::Sample(gm, e))
                        }
                        ForwardUse::Scale => chunk.run_prior(mu, rho, sink, w, prior, |_, gv, _| Data::Scale(gv)),
                    }
                },
            )
        })
        .collect();
    partial.iter().sum()
}

/// The mask of a tensor without one.
static ONES: [f32; CHUNK] = [1.0; CHUNK];

/// A chunk's part of the sink.
enum ChunkSink<'a> {
    Adam(AdamStep, [&'a mut [f32]; 4]),
    Store([&'a mut [f32]; 2]),
}

/// A chunk's read-only inputs.
struct Chunk<'a> {
    mask: Option<&'a [f32]>,
    grad_mean: &'a [f32],
    grad_var: Option<&'a [f32]>,
    eps: &'a [f32],
}

/// What one element contributes: `(kl, d kl / d mu, d kl / d rho, d data / d rho)`; the data term's gradient
/// with respect to mu is the forward tensor's own.
type Element = (f32, f32, f32, f32);

/// How the data term reaches `rho`: through the variance `sigma^2` (its gradient given), through the sample
/// `mu + sigma * eps` (its gradient and the noise given), or through `sigma` itself (its gradient given).
#[derive(Clone, Copy)]
enum Data {
    Moments(f32),
    Sample(f32, f32),
    Scale(f32),
}

impl Data {
    /// d data / d rho, given sigma and its derivative.
    #[inline(always)]
    fn grad_rho(self, sigma: f32, dsigma: f32) -> f32 {
        match self {
            Data::Moments(g_var) => g_var * 2.0 * sigma * dsigma,
            Data::Sample(g_w, eps) => g_w * eps * dsigma,
            Data::Scale(g_sigma) => g_sigma * dsigma,
        }
    }
}

/// The closed-form KL against `N(0, s^2)` (`ln_s = ln s`, `k = 1 / (2 s^2)`) and its gradients.
#[inline(always)]
fn closed_form(mu: f32, rho: f32, data: Data, ln_s: f32, k: f32) -> Element {
    let (sigma, dsigma) = softplus_sigmoid(rho);
    let kl = ln_s - ln_positive(sigma) + (sigma * sigma + mu * mu) * k - 0.5;
    (kl, 2.0 * k * mu, (2.0 * k * sigma - 1.0 / sigma) * dsigma, data.grad_rho(sigma, dsigma))
}

/// The one-sample KL against the scale mixture at `w = mu + sigma * eps` and its gradients (see
/// [`PriorTerms::Mixture`]): `d kl / d mu = h` and `d kl / d rho = (h eps - 1 / sigma) sigma'`, where
/// `h = -d ln p / d w = w (r k1 + (1 - r) k2) * 2` and `r` is the first component's responsibility.
#[inline(always)]
fn monte_carlo(mu: f32, rho: f32, eps: f32, data: Data, [c1, k1, c2, k2]: [f32; 4]) -> Element {
    let (sigma, dsigma) = softplus_sigmoid(rho);
    let w = mu + sigma * eps;
    let w2 = w * w;
    let (a, b) = (c1 - k1 * w2, c2 - k2 * w2);
    let d = a - b;
    // Beyond e^-80 the smaller component changes neither ln p nor r in f32; clamping there keeps every
    // intermediate a normal number (a subnormal result can cost a microcode assist for its whole vector;
    // see the `posterior_passes` bench in benches/README.md).
    let t = exp_nonpositive((-d.abs()).max(-80.0));
    let (ln_1p_t, inv) = ln_1p_and_reciprocal(t);
    let ln_p = a.max(b) + ln_1p_t;
    let r = if d >= 0.0 { inv } else { t * inv };
    let h = 2.0 * w * (r * k1 + (1.0 - r) * k2);
    let kl = -ln_positive(sigma) - 0.5 * eps * eps - ln_p;
    (kl, h, (h * eps - 1.0 / sigma) * dsigma, data.grad_rho(sigma, dsigma))
}

impl Chunk<'_> {
    /// [`Chunk::run`] with the element formula of `prior`, the data term's gradients reaching `rho` as
    /// `data(grad_mean, grad_var, eps)` says.
    #[inline(always)]
    fn run_prior(
        &self,
        mu: &mut [f32],
        rho: &mut [f32],
        sink: ChunkSink,
        kl_weight: f32,
        prior: PriorTerms,
        data: impl Fn(f32, f32, f32) -> Data,
    ) -> f64 {
        match prior {
            PriorTerms::Gaussian { ln_s, k } => self.run(
                mu,
                rho,
                sink,
                kl_weight,
                #[inline(always)]
                |m, r, gm, gv, e| closed_form(m, r, data(gm, gv, e), ln_s, k),
            ),
            PriorTerms::Mixture { c1, k1, c2, k2 } => self.run(
                mu,
                rho,
                sink,
                kl_weight,
                #[inline(always)]
                |m, r, gm, gv, e| monte_carlo(m, r, e, data(gm, gv, e), [c1, k1, c2, k2]),
            ),
        }
    }

    /// Runs `element(mu, rho, grad_mean, grad_var, eps)` over the chunk, sends the gradients (KL weighted by
    /// `kl_weight`) to `sink`, and returns the chunk's KL sum.
    #[inline(always)]
    fn run(
        &self,
        mu: &mut [f32],
        rho: &mut [f32],
        sink: ChunkSink,
        kl_weight: f32,
        element: impl Fn(f32, f32, f32, f32, f32) -> Element,
    ) -> f64 {
        // First the gradients and KL terms into buffers, then the sink: two loops over zipped slices, with no
        // bounds checks and no branches left, which vectorise (one loop doing both did not).
        let n = mu.len();
        let grad_var = self.grad_var.unwrap_or(self.grad_mean);
        let mask = self.mask.unwrap_or(&ONES[..n]);
        let mut buffers = [[0.0f32; CHUNK]; 3];
        let [g_mu, g_rho, terms] = &mut buffers;
        let (g_mu, g_rho, terms) = (&mut g_mu[..n], &mut g_rho[..n], &mut terms[..n]);
        let inputs = mu.iter().zip(rho.iter()).zip(self.grad_mean.iter().zip(grad_var)).zip(self.eps.iter().zip(mask));
        let outputs = g_mu.iter_mut().zip(g_rho.iter_mut()).zip(terms.iter_mut());
        for ((((&mu, &rho), (&grad_mean, &grad_var)), (&eps, &mask)), ((g_mu, g_rho), term)) in inputs.zip(outputs) {
            let (kl, kl_mu, kl_rho, data_rho) = element(mu, rho, grad_mean, grad_var, eps);
            let present = mask != 0.0;
            *term = if present { kl } else { 0.0 };
            *g_mu = if present { grad_mean + kl_weight * kl_mu } else { 0.0 };
            *g_rho = if present { data_rho + kl_weight * kl_rho } else { 0.0 };
        }
        match sink {
            ChunkSink::Adam(step, [mm, mv, rm, rv]) => {
                step.apply_all(mu, mm, mv, g_mu);
                step.apply_all(rho, rm, rv, g_rho);
            }
            ChunkSink::Store([gm, gr]) => {
                gm.copy_from_slice(g_mu);
                gr.copy_from_slice(g_rho);
            }
        }
        sum_f64(terms)
    }
}

/// The sum of `v` in f64, in eight interleaved partial sums (a fixed order, so it vectorises and gives the
/// same bits on every run).
fn sum_f64(v: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut blocks = v.chunks_exact(8);
    for b in &mut blocks {
        for j in 0..8 {
            acc[j] += b[j] as f64;
        }
    }
    acc.iter().sum::<f64>() + blocks.remainder().iter().map(|&x| x as f64).sum::<f64>()
}
