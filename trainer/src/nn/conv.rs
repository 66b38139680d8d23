//! Convolutional layers of the trainer: the Bayes-by-Backprop [`BayesConv2d`] (a Gaussian posterior per kernel
//! weight and bias), the deterministic [`Conv2d`], pooling and the checks of what candle's operations can train.
//!
//! A convolution reuses its kernel at every position, so the model's predictive distribution samples each kernel
//! once per input. Local reparameterization (independent noise per output) would train a different model, so the
//! per-example estimator here is **Flipout** (Wen et al. 2018) with one sign per example and channel: the example's
//! kernel is `mu + (sigma ∘ eps) ∘ (s_out s_in^T)`, which, the noise being symmetric, is an exact posterior sample
//! for every example, and the examples of a minibatch get decorrelated kernels from one draw of `eps`.

use super::gaussian_posterior::{GaussianPosterior, WeightSample};
use super::linear::initial_weights;
use super::noise::Noise;
use crate::kernels::conv::conv2d;
use bnn_runtime::{ConvGeometry, PoolGeometry, PoolKind, SeededRng};
use candle_core::{Device, Result, Tensor, Var};

/// Checks that candle can train pooling of `geometry` over `[height, width]` feature maps: no padding, stride =
/// window, and the window tiles the map (its backward pass upsamples by the window).
pub(crate) fn check_trainable_pool(geometry: &PoolGeometry, input: [usize; 2]) -> std::result::Result<(), String> {
    let k = geometry.kernel;
    if geometry.padding != [0, 0] || geometry.step() != k {
        return Err(format!("the trainer pools without padding and with stride = window, found {geometry:?}"));
    }
    if !input[0].is_multiple_of(k[0]) || !input[1].is_multiple_of(k[1]) {
        return Err(format!("a {k:?} pooling window must tile the {input:?} feature maps it pools when training"));
    }
    Ok(())
}

/// Max or average pooling of candle tensors (shape checked by [`check_trainable_pool`]). Max pooling is a
/// maximum over each window's axes of the reshaped maps, not candle's `max_pool2d`, whose backward pass (candle
/// 0.11) scales the gradient of a window's maximum by `1 / window size` instead of passing it on whole (test
/// below).
pub(crate) fn pool(x: &Tensor, kind: PoolKind, geometry: &PoolGeometry) -> Result<Tensor> {
    let ([kh, kw], [sh, sw]) = (geometry.kernel, geometry.step());
    match kind {
        PoolKind::Max => {
            let (n, c, h, w) = x.dims4()?;
            x.reshape((n, c, h / kh, kh, w / kw, kw))?.max(5)?.max(3)
        }
        PoolKind::Avg => x.avg_pool2d_with_stride((kh, kw), (sh, sw)),
    }
}

/// `conv(x, w) + b` with `b` broadcast over positions.
fn convolve(x: &Tensor, w: &Tensor, bias: &Tensor, g: &ConvGeometry) -> Result<Tensor> {
    conv2d(x, w, g)?.broadcast_add(&bias.reshape((1, g.out_channels, 1, 1))?)
}

/// Kernel means (or weights) for a fresh layer: N(0, (scale / sqrt(fan_in))^2), fan_in = `in / groups · kh · kw`.
fn initial_kernel(g: &ConvGeometry, scale: f32, rng: &mut SeededRng, device: &Device) -> Result<Tensor> {
    let [o, i, kh, kw] = g.weight_shape();
    initial_weights(i * kh * kw, o, scale, rng, device)?.reshape((o, i, kh, kw))
}

/// A convolution with a factorised Gaussian posterior over its kernel `[out, in / groups, kh, kw]` and biases.
pub struct BayesConv2d {
    pub(crate) geometry: ConvGeometry,
    pub(crate) posterior: GaussianPosterior,
}

impl BayesConv2d {
    /// Means as [`Conv2d::new`] initialises weights, biases' means 0, every rho = `rho`.
    pub fn new(g: ConvGeometry, mu_scale: f32, rho: f32, rng: &mut SeededRng, device: &Device) -> Result<Self> {
        let mu = initial_kernel(&g, mu_scale, rng, device)?;
        Ok(Self { geometry: g, posterior: GaussianPosterior::new(&mu, g.out_channels, rho)? })
    }

    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }

    /// Fixes the pruning pattern of the kernel (`[out, in / groups, kh, kw]`): weights where `mask` is 0 stay
    /// absent.
    pub fn set_mask(&mut self, mask: Tensor) -> Result<()> {
        self.posterior.set_mask(mask)
    }

    /// The convolution with the posterior means.
    pub fn forward_mean(&self, x: &Tensor) -> Result<Tensor> {
        convolve(x, &self.posterior.weight_mu()?, self.posterior.bias_mu.as_tensor(), &self.geometry)
    }

    /// The convolution with one weight sample for the whole minibatch.
    pub fn forward_with(&self, x: &Tensor, sample: &WeightSample) -> Result<Tensor> {
        convolve(x, &sample.weight, &sample.bias, &self.geometry)
    }

    /// Flipout (see the module documentation): every example's kernel an exact posterior sample,
    /// `conv(x, mu) + (conv(x ∘ s_in, sigma ∘ eps) ∘ s_out)`, biases drawn independently per example. Returns the
    /// output and the shared draw (`mu + sigma ∘ eps`, for the Monte-Carlo KL).
    pub fn forward_flipout(&self, x: &Tensor, noise: &mut Noise) -> Result<(Tensor, WeightSample)> {
        let g = &self.geometry;
        let n = x.dim(0)?;
        let sample = self.posterior.sample(noise)?;
        let delta = (self.posterior.weight_sigma()? * &sample.eps_weight)?;
        let sign_in = noise.signs(&[n, g.in_channels, 1, 1])?;
        let sign_out = noise.signs(&[n, g.out_channels, 1, 1])?;
        let mean = self.forward_mean(x)?;
        let perturbation = conv2d(&x.broadcast_mul(&sign_in)?, &delta, g)?.broadcast_mul(&sign_out)?;
        let bias_noise = (noise
            .gaussian(&[n, g.out_channels, 1, 1])?
            .broadcast_mul(&self.posterior.bias_sigma()?.reshape((1, g.out_channels, 1, 1))?))?;
        Ok(((mean + perturbation)?.broadcast_add(&bias_noise)?, sample))
    }
}

/// A convolution with point-estimate weights (deterministic and MC-dropout CNNs).
pub struct Conv2d {
    pub(crate) geometry: ConvGeometry,
    pub(crate) weight: Var,
    pub(crate) bias: Var,
}

impl Conv2d {
    /// Weights ~ N(0, (scale / sqrt(fan_in))^2), fan_in = `in / groups · kh · kw`; biases 0.
    pub fn new(g: ConvGeometry, scale: f32, rng: &mut SeededRng, device: &Device) -> Result<Self> {
        Ok(Self {
            geometry: g,
            weight: Var::from_tensor(&initial_kernel(&g, scale, rng, device)?)?,
            bias: Var::zeros(g.out_channels, candle_core::DType::F32, device)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        convolve(x, self.weight.as_tensor(), self.bias.as_tensor(), &self.geometry)
    }

    /// `sum W^2` (biases are not penalised).
    pub fn squared_norm(&self) -> Result<Tensor> {
        self.weight.as_tensor().sqr()?.sum_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient of a sum of pooled values: 1 at each window's maximum (0 elsewhere), `1 / window size`
    /// everywhere for average pooling; the values equal candle's pooling. Candle's `max_pool2d` gives 1/4 at each
    /// maximum of 2×2 windows.
    #[test]
    fn pooling_passes_the_gradient_of_a_window_on_to_its_maximum_or_spreads_it() {
        let dev = Device::Cpu;
        let mut rng = SeededRng::new(2);
        let v: Vec<f32> = (0..2 * 3 * 4 * 6).map(|_| rng.gaussian()).collect();
        let x = Var::from_vec(v, (2, 3, 4, 6), &dev).unwrap();
        let geometry = PoolGeometry::new([2, 3]);
        let pooled = pool(&x, PoolKind::Max, &geometry).unwrap();
        let theirs = x.max_pool2d_with_stride((2, 3), (2, 3)).unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&pooled), flat(&theirs));
        let grad = flat(pooled.sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap());
        let values = flat(x.as_tensor());
        let maxima = flat(&theirs.upsample_nearest2d(4, 6).unwrap());
        for (i, (g, (v, m))) in grad.iter().zip(values.iter().zip(&maxima)).enumerate() {
            assert_eq!(*g, if v == m { 1.0 } else { 0.0 }, "element {i}");
        }
        let avg = pool(&x, PoolKind::Avg, &geometry).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(flat(avg.get(x.as_tensor()).unwrap()).iter().all(|g| (g - 1.0 / 6.0).abs() < 1e-7));
    }

    /// Flipout's outputs for one example have the model's moments — mean, variance and, what independent noise
    /// per position would miss, the covariance of two positions that share kernel weights — within 5 standard
    /// errors of the closed forms, over independent passes.
    #[test]
    fn flipout_samples_one_kernel_per_example() {
        let dev = Device::Cpu;
        let g = ConvGeometry::new(1, 1, [3, 3]);
        let mut rng = SeededRng::new(8);
        let layer = BayesConv2d::new(g, 1.0, 0.0, &mut rng, &dev).unwrap();
        let rho: Vec<f32> = (0..9).map(|_| rng.uniform() - 1.0).collect();
        layer.posterior.weight_rho.set(&Tensor::from_vec(rho, (1, 1, 3, 3), &dev).unwrap()).unwrap();
        let x: Vec<f32> = (0..16).map(|_| 0.5 + rng.uniform()).collect();
        let input = Tensor::from_slice(&x, (1, 1, 4, 4), &dev).unwrap();
        let p = &layer.posterior;
        let mu: Vec<f32> = p.weight_mu().unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let sigma: Vec<f32> = p.weight_sigma().unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let bias_var = (p.bias_sigma().unwrap().to_vec1::<f32>().unwrap()[0] as f64).powi(2);
        // Output positions (0, 0) and (0, 1) of the 2×2 output read overlapping windows.
        let tap = |p: usize, k: usize| x[(k / 3) * 4 + k % 3 + p] as f64;
        let mean = |p: usize| (0..9).map(|k| mu[k] as f64 * tap(p, k)).sum::<f64>();
        let cov = |p: usize, q: usize| {
            (0..9).map(|k| (sigma[k] as f64).powi(2) * tap(p, k) * tap(q, k)).sum::<f64>() + bias_var
        };
        let n = 20_000;
        let mut noise = Noise::new(5, &dev);
        let draws: Vec<[f64; 2]> = (0..n)
            .map(|_| {
                let out: Vec<f32> =
                    layer.forward_flipout(&input, &mut noise).unwrap().0.flatten_all().unwrap().to_vec1().unwrap();
                [out[0] as f64, out[1] as f64]
            })
            .collect();
        let average = |f: &dyn Fn(&[f64; 2]) -> f64| draws.iter().map(f).sum::<f64>() / n as f64;
        let m = [average(&|d| d[0]), average(&|d| d[1])];
        let within = |what: &str, estimate: f64, exact: f64, terms: &dyn Fn(&[f64; 2]) -> f64| {
            let spread = (average(&|d| (terms(d) - estimate).powi(2)) / n as f64).sqrt();
            assert!((estimate - exact).abs() < 5.0 * spread, "{what}: {estimate} vs {exact} (se {spread})");
        };
        within("mean 0", m[0], mean(0), &|d| d[0]);
        within("mean 1", m[1], mean(1), &|d| d[1]);
        let product = |d: &[f64; 2]| (d[0] - m[0]) * (d[1] - m[1]);
        within("variance 0", average(&|d| (d[0] - m[0]).powi(2)), cov(0, 0), &|d| (d[0] - m[0]).powi(2));
        within("covariance", average(&product), cov(0, 1), &product);
        // Independent noise per position would give a covariance of the bias alone: far outside the bound.
        let se = (average(&|d| (product(d) - cov(0, 1)).powi(2)) / n as f64).sqrt();
        assert!(cov(0, 1) - bias_var > 20.0 * se, "the test must tell shared from independent noise");
    }
}
