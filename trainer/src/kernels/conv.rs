//! 2-D convolution for training as a candle op with its own backward pass: the whole minibatch unfolded once
//! (im2col, `[kernel taps, examples × positions]`) and multiplied through [`matmul::product`] (the `gemm`
//! crate), forward and backward. Candle's own CPU convolution runs the input gradient as a direct transposed
//! convolution and the kernel gradient as a convolution with a minibatch-sized kernel; on LeNet-5 that made a
//! Bayes-by-Backprop step several times slower than this (`benches/README.md`). Any [`ConvGeometry`] the runtime
//! runs (non-square strides, padding and dilation, groups) trains; the gradients are checked against candle's
//! convolution and against finite differences (tests below).

use super::matmul::{product, Matrix};
use super::tensor_values::{storage_values, values};
use bnn_runtime::ConvGeometry;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::ops::Range;

/// `conv(x, w)` (no bias) for `x` `[n, c, h, w]` and `w` `[out, c / groups, kh, kw]`, differentiable in both.
pub fn conv2d(x: &Tensor, w: &Tensor, geometry: &ConvGeometry) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    if c != geometry.in_channels || w.dims() != geometry.weight_shape() {
        bail!("conv2d: input {:?} and kernel {:?} do not fit {geometry:?}", x.dims(), w.dims());
    }
    let output = geometry.output_size([h, wd]).map_err(candle_core::Error::Msg)?;
    x.apply_op2(w, Im2colConv { sizes: Sizes { geometry: *geometry, n, input: [h, wd], output } })
}

/// The sizes of one convolution call.
#[derive(Clone, Copy)]
struct Sizes {
    geometry: ConvGeometry,
    n: usize,
    input: [usize; 2],
    output: [usize; 2],
}

impl Sizes {
    /// Output positions per example.
    fn positions(&self) -> usize {
        self.output[0] * self.output[1]
    }
    /// Kernel taps per output channel: `c / groups · kh · kw`.
    fn taps(&self) -> usize {
        let g = &self.geometry;
        g.channels_per_group() * g.kernel[0] * g.kernel[1]
    }
    /// Input values per example.
    fn input_len(&self) -> usize {
        self.geometry.in_channels * self.input[0] * self.input[1]
    }

    /// Where tap `(i, ky, kx)` (`tap` in that order) of group `group` reads: the input channel, and per dimension
    /// the output positions whose input lies inside the image (a contiguous range; the others read the zero
    /// padding) with the input index of the range's first position.
    fn tap_source(&self, group: usize, tap: usize) -> (usize, [(Range<usize>, usize); 2]) {
        let g = &self.geometry;
        let [kh, kw] = g.kernel;
        let (i, k) = (tap / (kh * kw), [tap / kw % kh, tap % kw]);
        let out = self.output;
        let along = |d: usize| {
            let offset = k[d] * g.dilation[d];
            // The first position o with o · stride + offset >= bound.
            let first = |bound: usize| bound.saturating_sub(offset).div_ceil(g.stride[d]).min(out[d]);
            let range = first(g.padding[d])..first(g.padding[d] + self.input[d]);
            let start = (range.start * g.stride[d] + offset).saturating_sub(g.padding[d]);
            (range, start)
        };
        (group * g.channels_per_group() + i, [along(0), along(1)])
    }

    /// Calls `f(output row y, input row, output columns, first input column)` for every output row of tap `tap`
    /// that reads inside the image.
    #[inline(always)]
    fn for_each_row(&self, group: usize, tap: usize, mut f: impl FnMut(usize, usize, Range<usize>, usize)) {
        let (_, [(ys, y0), (xs, x0)]) = self.tap_source(group, tap);
        if !xs.is_empty() {
            for (j, y) in ys.enumerate() {
                f(y, y0 + j * self.geometry.stride[0], xs.clone(), x0);
            }
        }
    }

    /// The input of group `group` unfolded: row `tap`, column `example · positions + position`.
    fn im2col(&self, x: &[f32], group: usize, cols: &mut [f32]) {
        let (p, [h, w], ow, sx) = (self.positions(), self.input, self.output[1], self.geometry.stride[1]);
        cols.par_chunks_mut(self.n * p).enumerate().for_each(|(tap, row)| {
            row.fill(0.0);
            let (channel, _) = self.tap_source(group, tap);
            for (e, out) in row.chunks_exact_mut(p).enumerate() {
                let plane = &x[e * self.input_len() + channel * h * w..][..h * w];
                self.for_each_row(group, tap, |y, iy, xs, ix0| {
                    let (src, dst) = (&plane[iy * w..(iy + 1) * w], &mut out[y * ow..(y + 1) * ow]);
                    for (j, d) in dst[xs].iter_mut().enumerate() {
                        *d = src[ix0 + j * sx];
                    }
                });
            }
        });
    }

    /// Adds the unfolded gradient of group `group` (laid out as [`Sizes::im2col`]'s) back onto the input's
    /// gradient, example by example in parallel, each value's terms in tap order (the same bits on any number of
    /// threads).
    fn col2im_add(&self, cols: &[f32], group: usize, grad_x: &mut [f32]) {
        let (p, [h, w], ow, sx) = (self.positions(), self.input, self.output[1], self.geometry.stride[1]);
        let width = self.n * p;
        grad_x.par_chunks_mut(self.input_len()).enumerate().for_each(|(e, example)| {
            for tap in 0..self.taps() {
                let row = &cols[tap * width + e * p..][..p];
                let (channel, _) = self.tap_source(group, tap);
                let plane = &mut example[channel * h * w..][..h * w];
                self.for_each_row(group, tap, |y, iy, xs, ix0| {
                    let dst = &mut plane[iy * w..(iy + 1) * w];
                    for (j, v) in row[y * ow..(y + 1) * ow][xs].iter().enumerate() {
                        dst[ix0 + j * sx] += v;
                    }
                });
            }
        });
    }
}

/// The convolution op (see the module documentation).
struct Im2colConv {
    sizes: Sizes,
}

impl CustomOp2 for Im2colConv {
    fn name(&self) -> &'static str {
        "im2col-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let s = self.sizes;
        let (x, w) = (storage_values(s1, l1)?, storage_values(s2, l2)?);
        let g = &s.geometry;
        let (opg, taps, p) = (g.out_channels / g.groups, s.taps(), s.positions());
        let mut cols = vec![0.0f32; taps * s.n * p];
        // Per group, `[out / groups, taps] x [taps, n · p]`, then each example's block moved to NCHW.
        let mut by_channel = vec![0.0f32; g.out_channels * s.n * p];
        for group in 0..g.groups {
            s.im2col(x, group, &mut cols);
            let kernel = Matrix::new(&w[group * opg * taps..(group + 1) * opg * taps], opg, taps);
            let out = &mut by_channel[group * opg * s.n * p..(group + 1) * opg * s.n * p];
            product(out, kernel, Matrix::new(&cols, taps, s.n * p), false);
        }
        let mut out = vec![0.0f32; s.n * g.out_channels * p];
        swap_leading(&by_channel, [g.out_channels, s.n], p, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((s.n, g.out_channels, s.output[0], s.output[1]))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let s = self.sizes;
        let g = &s.geometry;
        let (opg, taps, p) = (g.out_channels / g.groups, s.taps(), s.positions());
        // The output gradient as `[out, n · p]`, the layout of the forward product.
        let mut grad_by_channel = vec![0.0f32; g.out_channels * s.n * p];
        values(grad, |v| swap_leading(v, [s.n, g.out_channels], p, &mut grad_by_channel))?;
        let mut grad_w = vec![0.0f32; g.out_channels * taps];
        let mut grad_x = vec![0.0f32; s.n * s.input_len()];
        let mut cols = vec![0.0f32; taps * s.n * p];
        values(x, |x| -> Result<()> {
            values(w, |w| {
                for group in 0..g.groups {
                    let grad_out =
                        Matrix::new(&grad_by_channel[group * opg * s.n * p..][..opg * s.n * p], opg, s.n * p);
                    // dL/dW = dL/dout · cols^T.
                    s.im2col(x, group, &mut cols);
                    let gw = &mut grad_w[group * opg * taps..(group + 1) * opg * taps];
                    product(gw, grad_out, Matrix::new(&cols, taps, s.n * p).t(), false);
                    // dL/dcols = W^T · dL/dout, folded back onto the input.
                    let kernel = Matrix::new(&w[group * opg * taps..(group + 1) * opg * taps], opg, taps);
                    product(&mut cols, kernel.t(), grad_out, false);
                    s.col2im_add(&cols, group, &mut grad_x);
                }
            })
        })??;
        let grad_x = Tensor::from_vec(grad_x, x.shape(), x.device())?;
        let grad_w = Tensor::from_vec(grad_w, w.shape(), w.device())?;
        Ok((Some(grad_x), Some(grad_w)))
    }
}

/// `out[b, a, :] = v[a, b, :]` for `v` of `[dims[0], dims[1], inner]`.
fn swap_leading(v: &[f32], [d0, d1]: [usize; 2], inner: usize, out: &mut [f32]) {
    out.par_chunks_mut(d0 * inner).enumerate().for_each(|(b, block)| {
        for a in 0..d0 {
            block[a * inner..(a + 1) * inner].copy_from_slice(&v[(a * d1 + b) * inner..(a * d1 + b + 1) * inner]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_runtime::SeededRng;
    use candle_core::{Device, Var};

    fn random(shape: &[usize], rng: &mut SeededRng) -> Tensor {
        let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.gaussian()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Output and both gradients of `sum(conv(x, w) * r)` for a random `r`, ours and candle's.
    #[test]
    fn forward_and_gradients_equal_candles_convolution() {
        let mut rng = SeededRng::new(3);
        for (c, o, k, stride, padding, dilation, groups, hw) in [
            (1, 6, 5, 1, 2, 1, 1, 12),
            (6, 16, 5, 1, 0, 1, 1, 9),
            (4, 6, 3, 2, 1, 1, 2, 9),
            (3, 3, 3, 1, 2, 2, 3, 7),
            (2, 4, 2, 3, 0, 1, 1, 8),
        ] {
            let g = ConvGeometry::new(c, o, [k, k])
                .stride([stride; 2])
                .padding([padding; 2])
                .dilation([dilation; 2])
                .groups(groups);
            let x = Var::from_tensor(&random(&[3, c, hw, hw], &mut rng)).unwrap();
            let w = Var::from_tensor(&random(&g.weight_shape(), &mut rng)).unwrap();
            let ours = conv2d(&x, &w, &g).unwrap();
            let theirs = x.conv2d(&w, padding, stride, dilation, groups).unwrap();
            assert_eq!(ours.dims(), theirs.dims(), "{g:?}");
            assert!(max_difference(&ours, &theirs) < 1e-4, "{g:?}: forward differs");
            let r = random(ours.dims(), &mut rng);
            let (a, b) = ((ours * &r).unwrap().sum_all().unwrap(), (theirs * &r).unwrap().sum_all().unwrap());
            let (ga, gb) = (a.backward().unwrap(), b.backward().unwrap());
            for v in [&x, &w] {
                let d = max_difference(ga.get(v.as_tensor()).unwrap(), gb.get(v.as_tensor()).unwrap());
                assert!(d < 1e-3, "{g:?}: gradient differs by {d}");
            }
        }
    }

    /// A geometry candle cannot run (different stride, padding and dilation per dimension): the gradients against
    /// central differences of the loss in f64.
    #[test]
    fn gradients_of_a_non_square_geometry_match_finite_differences() {
        let g = ConvGeometry::new(2, 3, [3, 2]).stride([2, 1]).padding([1, 0]).dilation([1, 2]);
        let mut rng = SeededRng::new(5);
        let x = Var::from_tensor(&random(&[2, 2, 7, 6], &mut rng)).unwrap();
        let w = Var::from_tensor(&random(&g.weight_shape(), &mut rng)).unwrap();
        let r = random(conv2d(&x, &w, &g).unwrap().dims(), &mut rng);
        let loss = |x: &Tensor, w: &Tensor| -> f64 {
            let out: Vec<f32> = conv2d(x, w, &g).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let r: Vec<f32> = r.flatten_all().unwrap().to_vec1().unwrap();
            out.iter().zip(&r).map(|(a, b)| *a as f64 * *b as f64).sum()
        };
        let grads = (conv2d(&x, &w, &g).unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (v, other) in [(&x, &w), (&w, &x)] {
            let analytic: Vec<f32> = grads.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for i in (0..base.len()).step_by(7) {
                let h = 1e-2f32;
                let at = |d: f32| {
                    let mut b = base.clone();
                    b[i] += d;
                    let t = Tensor::from_vec(b, v.dims(), &Device::Cpu).unwrap();
                    if std::ptr::eq(v, &x) {
                        loss(&t, other.as_tensor())
                    } else {
                        loss(other.as_tensor(), &t)
                    }
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h as f64);
                assert!((numeric - analytic[i] as f64).abs() < 1e-2, "element {i}: {numeric} vs {}", analytic[i]);
            }
        }
    }
}
