//! A measurement sketch for issue #23's batch target, outside the runtime: a batch of 64 inputs at S = 32 where
//! each Monte-Carlo sample draws the weights of the layers after the first **once for the whole batch** (a
//! framework's forward pass of a batch), the first layer by local reparameterization per input, against the
//! runtime's `predict_batch` (local reparameterization per input) in the same run, one thread, rounds
//! alternating. Both are exact Monte-Carlo estimates of each input's predictive distribution: sharing a sample's
//! weights across inputs correlates the inputs' estimates, not any one input's samples. The sketch also checks
//! that the two agree: the largest |difference| of a mean class probability over its Monte-Carlo standard error.
//!
//! Only for the pruned MNIST MLP's shape (three CSR Bayesian dense layers, ReLU between) on x86-64 with AVX-512F;
//! the softmax is scalar and nothing here is tuned past the products. `benches/README.md`, session 30, has its
//! figures and what a runtime sampler would need.
//!
//! BNN_MNIST_DIR=../shared/data/mnist cargo run --release -p bnn-benches --example shared_draws -- \
//!     models/mnist-bbb-snr95-f16.safetensors [ROUNDS]

#[cfg(target_arch = "x86_64")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    sketch::main()
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    eprintln!("shared_draws: an x86-64 sketch (AVX-512F)");
    std::process::exit(2);
}

#[cfg(target_arch = "x86_64")]
mod sketch {
    use bnn_runtime::{BayesianDense, Layer, Model, PredictOptions, Predictor, SeededRng, WeightLayout};
    use std::path::PathBuf;
    use std::time::Instant;

    /// Inputs side by side in one group: two 16-lane vectors.
    const G: usize = 32;
    const BATCH: usize = 64;
    const SAMPLES: usize = 32;

    /// One value per input of a group, aligned to a cache line.
    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    struct Row([f32; G]);

    /// A CSR Bayesian layer's parts.
    struct Sparse<'a> {
        row_ptr: &'a [u32],
        col_idx: &'a [u32],
        mu: &'a [f32],
        sigma: &'a [f32],
        bias_mu: &'a [f32],
        bias_sigma: &'a [f32],
        /// The variances, for the first layer's moments.
        var: Vec<f32>,
        bias_var: Vec<f32>,
    }

    impl<'a> Sparse<'a> {
        fn new(l: &'a BayesianDense) -> Result<Self, String> {
            let WeightLayout::Csr { pattern, .. } = l.layout() else {
                return Err("a dense layer: this sketch needs CSR".into());
            };
            Ok(Self {
                row_ptr: pattern.row_ptr(),
                col_idx: pattern.col_idx(),
                mu: l.weight_mu(),
                sigma: l.weight_sigma(),
                bias_mu: l.bias_mu(),
                bias_sigma: l.bias_sigma(),
                var: l.weight_sigma().iter().map(|s| s * s).collect(),
                bias_var: l.bias_sigma().iter().map(|s| s * s).collect(),
            })
        }
        fn outputs(&self) -> usize {
            self.bias_mu.len()
        }
    }

    /// `y[j] = b[j] + sum_k w[k] h[col_idx[k]]` over `layer`'s pattern for every input of a group, ReLU with
    /// `relu`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; every column index is below `h.len()`, `w` has an entry per column index and `b` and `y`
    /// one per row.
    #[target_feature(enable = "avx512f")]
    unsafe fn product(layer: &Sparse, w: &[f32], b: &[f32], h: &[Row], y: &mut [Row], relu: bool) {
        use std::arch::x86_64::*;
        let (row_ptr, col_idx) = (layer.row_ptr, layer.col_idx);
        for (j, out) in y.iter_mut().enumerate().take(b.len()) {
            let (lo, hi) = (row_ptr[j] as usize, row_ptr[j + 1] as usize);
            // Two accumulators per vector: entries alternate between them.
            let (mut a0, mut a1) = ([_mm512_set1_ps(b[j]); 2], [_mm512_setzero_ps(); 2]);
            let mut k = lo;
            while k < hi {
                // SAFETY: the caller's bounds; a row holds 32 aligned floats.
                unsafe {
                    let row = h.get_unchecked(*col_idx.get_unchecked(k) as usize).0.as_ptr();
                    let wv = _mm512_set1_ps(*w.get_unchecked(k));
                    a0[0] = _mm512_fmadd_ps(_mm512_load_ps(row), wv, a0[0]);
                    a0[1] = _mm512_fmadd_ps(_mm512_load_ps(row.add(16)), wv, a0[1]);
                    if k + 1 < hi {
                        let row = h.get_unchecked(*col_idx.get_unchecked(k + 1) as usize).0.as_ptr();
                        let wv = _mm512_set1_ps(*w.get_unchecked(k + 1));
                        a1[0] = _mm512_fmadd_ps(_mm512_load_ps(row), wv, a1[0]);
                        a1[1] = _mm512_fmadd_ps(_mm512_load_ps(row.add(16)), wv, a1[1]);
                    }
                }
                k += 2;
            }
            for (z, (x, y)) in a0.into_iter().zip(a1).enumerate() {
                let mut v = _mm512_add_ps(x, y);
                if relu {
                    v = _mm512_max_ps(v, _mm512_setzero_ps());
                }
                // SAFETY: as above.
                unsafe { _mm512_store_ps(out.0.as_mut_ptr().add(16 * z), v) };
            }
        }
    }

    /// `e = m + s * e` (noise to draws).
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn affine(e: &mut [f32], m: &[f32], s: &[f32]) {
        e.iter_mut().zip(m).zip(s).for_each(|((e, m), s)| *e = s.mul_add(*e, *m));
    }

    /// `e = max(m + s * e, 0)` for a group.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn relu_affine(e: &mut [Row], m: &[Row], s: &[Row]) {
        for ((e, m), s) in e.iter_mut().zip(m).zip(s) {
            for t in 0..G {
                e.0[t] = s.0[t].mul_add(e.0[t], m.0[t]).max(0.0);
            }
        }
    }

    pub fn main() -> Result<(), Box<dyn std::error::Error>> {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return Err("this sketch needs AVX-512F".into());
        }
        let mut args = std::env::args().skip(1);
        let path = args.next().ok_or("usage: shared_draws MODEL.safetensors [ROUNDS]")?;
        let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20).max(1);
        let model = Model::load(path)?;
        let dir = std::env::var_os("BNN_MNIST_DIR").ok_or("set BNN_MNIST_DIR")?;
        let inputs = bnn_trainer::data::load_mnist_test(&PathBuf::from(dir), Some(BATCH))?.inputs;
        let d = model.input_dim();
        let bayes: Vec<&BayesianDense> = model
            .layers()
            .iter()
            .filter_map(|l| if let Layer::BayesianDense(b) = l { Some(b) } else { None })
            .collect();
        if bayes.len() != 3 || model.layers().len() != 5 {
            return Err("this sketch needs Bayesian dense, ReLU, Bayesian dense, ReLU, Bayesian dense".into());
        }
        let layers = [Sparse::new(bayes[0])?, Sparse::new(bayes[1])?, Sparse::new(bayes[2])?];
        let (width, hidden, classes) = (layers[0].outputs(), layers[1].outputs(), layers[2].outputs());

        // Each group's inputs, normalised and transposed, and their squares.
        let mut x = inputs.clone();
        if let Some(n) = model.normalization() {
            x.chunks_exact_mut(d).for_each(|xi| n.apply_in_place(xi));
        }
        let groups = BATCH / G;
        let transposed = |f: fn(f32) -> f32| -> Vec<Row> {
            let mut t = vec![Row([0.0; G]); groups * d];
            for (n, xi) in x.chunks_exact(d).enumerate() {
                for (c, v) in xi.iter().enumerate() {
                    t[(n / G) * d + c].0[n % G] = f(*v);
                }
            }
            t
        };
        let (xt, xt_sq) = (transposed(|v| v), transposed(|v| v * v));

        let mut mean = vec![Row([0.0; G]); groups * width];
        let mut sd = vec![Row([0.0; G]); groups * width];
        let mut h1 = vec![Row([0.0; G]); width];
        let mut h2 = vec![Row([0.0; G]); hidden];
        let mut logits = vec![Row([0.0; G]); classes];
        let mut w: Vec<Vec<f32>> = layers[1..].iter().map(|l| vec![0.0; l.mu.len()]).collect();
        let mut b: Vec<Vec<f32>> = layers[1..].iter().map(|l| vec![0.0; l.outputs()]).collect();
        // Sums over every round's samples of each input's class probabilities and their squares, and of each
        // sample's entropy (the runtime's expected entropy: computed so that both sides do the same work).
        let mut p_sum = vec![0f64; BATCH * classes];
        let mut p_sq = vec![0f64; BATCH * classes];
        let mut entropy = vec![0f64; BATCH];
        let mut rng = SeededRng::new(1);
        let mut parts = [0f64; 5];
        let mut times = (Vec::new(), Vec::new());
        let mut predictor = Predictor::new(&model);
        let options = PredictOptions::default().samples(SAMPLES);
        for _ in 0..rounds {
            let start = Instant::now();
            let mut clock = Instant::now();
            let mut lap = |k: usize| {
                parts[k] += clock.elapsed().as_secs_f64();
                clock = Instant::now();
            };
            let first = &layers[0];
            for g in 0..groups {
                let (m, s) = (&mut mean[g * width..][..width], &mut sd[g * width..][..width]);
                // SAFETY: AVX-512F checked above; a valid model's CSR indices are in range.
                unsafe {
                    product(first, first.mu, first.bias_mu, &xt[g * d..][..d], m, false);
                    product(first, &first.var, &first.bias_var, &xt_sq[g * d..][..d], s, false);
                }
                s.iter_mut().flat_map(|r| r.0.iter_mut()).for_each(|v| *v = v.sqrt());
            }
            lap(0);
            for _ in 0..SAMPLES {
                for (l, (w, b)) in layers[1..].iter().zip(w.iter_mut().zip(b.iter_mut())) {
                    rng.fill_gaussian(w);
                    rng.fill_gaussian(b);
                    // SAFETY: AVX-512F checked above.
                    unsafe {
                        affine(w, l.mu, l.sigma);
                        affine(b, l.bias_mu, l.bias_sigma);
                    }
                }
                lap(1);
                for g in 0..groups {
                    let flat = h1.as_flattened_mut_rows();
                    rng.fill_gaussian(flat);
                    let (m, s) = (&mean[g * width..][..width], &sd[g * width..][..width]);
                    // SAFETY: AVX-512F checked above.
                    unsafe { relu_affine(&mut h1, m, s) };
                    lap(2);
                    // SAFETY: as above.
                    unsafe {
                        product(&layers[1], &w[0], &b[0], &h1, &mut h2, true);
                        product(&layers[2], &w[1], &b[1], &h2, &mut logits, false);
                    }
                    lap(3);
                    for t in 0..G {
                        let n = g * G + t;
                        let top = logits.iter().map(|r| r.0[t]).fold(f32::NEG_INFINITY, f32::max);
                        let z: f64 = logits.iter().map(|r| ((r.0[t] - top) as f64).exp()).sum();
                        for (c, r) in logits.iter().enumerate() {
                            let p = ((r.0[t] - top) as f64).exp() / z;
                            p_sum[n * classes + c] += p;
                            p_sq[n * classes + c] += p * p;
                            if p > 0.0 {
                                entropy[n] -= p * p.ln();
                            }
                        }
                    }
                    lap(4);
                }
            }
            std::hint::black_box(&entropy);
            times.0.push(start.elapsed().as_secs_f64());
            let start = Instant::now();
            std::hint::black_box(predictor.predict_batch(&inputs, &options)?);
            times.1.push(start.elapsed().as_secs_f64());
        }
        let per = |t: &mut Vec<f64>| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2] * 1e6 / BATCH as f64
        };
        let (shared, runtime) = (per(&mut times.0), per(&mut times.1));
        let k = 1e6 / (rounds * BATCH) as f64;
        println!(
        "shared draws: {shared:.1} µs per prediction (means of the parts: first-layer moments {:.1}, weight draws {:.1}, first-layer draws {:.1}, products {:.1}, softmax {:.1})",
        parts[0] * k,
        parts[1] * k,
        parts[2] * k,
        parts[3] * k,
        parts[4] * k
    );
        println!("predict_batch: {runtime:.1} µs per prediction; ratio {:.2}x (medians of {rounds} alternating rounds, one thread)", runtime / shared);

        // Agreement: both estimate the same predictive mean; compare with many samples each.
        let n = (rounds * SAMPLES) as f64;
        let reference =
            predictor.predict_batch(&inputs, &PredictOptions::default().samples(rounds * SAMPLES).seed(2))?;
        let (mut worst, mut compared) = (0f64, 0);
        for (i, p) in reference.iter().enumerate() {
            let c = p.as_classification().ok_or("not a classifier")?;
            for (k, q) in c.probabilities.iter().enumerate() {
                let m = p_sum[i * classes + k] / n;
                let var = (p_sq[i * classes + k] / n - m * m).max(0.0);
                let se = (2.0 * var / n).sqrt().max(1e-9);
                if var.sqrt() >= 0.01 {
                    worst = worst.max((m - *q as f64).abs() / se);
                    compared += 1;
                }
            }
        }
        println!(
        "largest |mean probability difference| / standard error: {worst:.2} over the {compared} of {BATCH} x {classes} probabilities whose sampled sd is at least 0.01 ({n} samples each; heavier tails make the standard error of the others meaningless)"
    );
        Ok(())
    }

    /// A group buffer as one flat slice, for the bulk Gaussian draws.
    trait Flat {
        fn as_flattened_mut_rows(&mut self) -> &mut [f32];
    }

    impl Flat for Vec<Row> {
        fn as_flattened_mut_rows(&mut self) -> &mut [f32] {
            let len = self.len() * G;
            // SAFETY: `Row` is `repr(C)` around `[f32; G]` with no padding (64-byte alignment, 128 bytes).
            unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr().cast::<f32>(), len) }
        }
    }
}
