//! 2-D convolution for training: [`ConvShape`]'s products on plain slices (what the fused step calls) — the whole
//! minibatch unfolded once (im2col, `[kernel taps, examples × positions]`) and multiplied through
//! [`super::matmul::product`] (the `gemm` crate), the kernel gradient as [`row_products`] over fixed blocks of the
//! minibatch on all threads — and, on them, [`conv2d`], a candle op with its own backward pass for the composed path.
//! Candle's own CPU convolution runs the input gradient as a direct transposed convolution and the kernel gradient as a
//! convolution with a minibatch-sized kernel; on LeNet-5 that made a Bayes-by-Backprop step several times slower than
//! this (`benches/README.md`). Any [`ConvGeometry`] the runtime runs (non-square strides, padding and dilation, groups)
//! trains; the gradients are checked against candle's convolution and against finite differences (tests below).

use super::matmul::{product, Matrix};
use super::row_products::row_products;
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
    let shape = ConvShape::new(geometry, n, [h, wd]).map_err(candle_core::Error::Msg)?;
    x.apply_op2(w, Im2colConv { shape })
}

/// The blocks of the minibatch's positions whose kernel gradients are computed apart, on rayon's threads, and
/// added (a fixed number, so the bits do not depend on the number of threads).
const KERNEL_GRADIENT_PIECES: usize = 16;

/// One convolution over a minibatch of `n` images of `input` size, and its products on plain slices. Two
/// layouts appear: the input and the output in NCHW order, and the **unfolded** forms the products read, by
/// channel and then example: the unfolded input `[groups · taps, n · positions]` (row `group · taps + tap`)
/// and the output by channel `[out, n · positions]`.
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    geometry: ConvGeometry,
    n: usize,
    input: [usize; 2],
    output: [usize; 2],
}

impl ConvShape {
    /// The convolution of `geometry` over `n` images of `input` (height, width); an error when the kernel does
    /// not fit.
    pub fn new(geometry: &ConvGeometry, n: usize, input: [usize; 2]) -> std::result::Result<Self, String> {
        let output = geometry.output_size(input)?;
        Ok(Self { geometry: *geometry, n, input, output })
    }

    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }
    /// The number of examples.
    pub fn examples(&self) -> usize {
        self.n
    }
    /// The output's height and width.
    pub fn output(&self) -> [usize; 2] {
        self.output
    }
    /// Output positions per example.
    pub fn positions(&self) -> usize {
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
    /// Values of the output (and of the output by channel).
    pub fn output_len(&self) -> usize {
        self.n * self.geometry.out_channels * self.positions()
    }
    /// Values of the unfolded input.
    fn unfolded_len(&self) -> usize {
        self.geometry.groups * self.taps() * self.n * self.positions()
    }

    /// Where row `row` of the unfolded input — tap `(i, ky, kx)` (in that order) of group `row / taps` — reads:
    /// the input channel, and per dimension the output positions whose input lies inside the image (a contiguous
    /// range; the others read the zero padding) with the input index of the range's first position.
    fn row_source(&self, row: usize) -> (usize, [(Range<usize>, usize); 2]) {
        let (group, tap) = (row / self.taps(), row % self.taps());
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

    /// The input `x` (NCHW) unfolded (see [`ConvShape`]). Every value is written once, the zero padding
    /// included, into memory that is not zeroed first (the unfolded minibatch is megabytes per step).
    pub fn unfold(&self, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), self.n * self.input_len(), "the input of {self:?}");
        let (p, [h, w], ow, [sy, sx]) = (self.positions(), self.input, self.output[1], self.geometry.stride);
        let len = self.unfolded_len();
        let mut cols = Vec::with_capacity(len);
        cols.spare_capacity_mut()[..len].par_chunks_mut(self.n * p).enumerate().for_each(|(r, row)| {
            let (channel, [(ys, iy0), (xs, ix0)]) = self.row_source(r);
            for (e, out) in row.chunks_exact_mut(p).enumerate() {
                let plane = &x[e * self.input_len() + channel * h * w..][..h * w];
                for (y, dst) in out.chunks_exact_mut(ow).enumerate() {
                    if !ys.contains(&y) || xs.is_empty() {
                        dst.iter_mut().for_each(|d| _ = d.write(0.0));
                        continue;
                    }
                    let src = &plane[(iy0 + (y - ys.start) * sy) * w..][..w];
                    let (before, rest) = dst.split_at_mut(xs.start);
                    let (inside, after) = rest.split_at_mut(xs.len());
                    before.iter_mut().chain(after).for_each(|d| _ = d.write(0.0));
                    if sx == 1 {
                        inside.iter_mut().zip(&src[ix0..]).for_each(|(d, v)| _ = d.write(*v));
                    } else {
                        inside.iter_mut().enumerate().for_each(|(j, d)| _ = d.write(src[ix0 + j * sx]));
                    }
                }
            }
        });
        // SAFETY: the first `len` values were all written above: the rows of `n · p` values cover `0..len`, an
        // example's `p` values are `oh` output rows of `ow`, and each output row is written whole (padding rows
        // with zeros; others with zeros before and after the columns `xs` that read the image).
        unsafe { cols.set_len(len) };
        cols
    }

    /// The gradient with respect to the input (NCHW) of the unfolded gradient `cols`: every unfolded value added
    /// back where it was read, example by example in parallel, each value's terms in row order (the same bits
    /// on any number of threads).
    pub fn fold(&self, cols: &[f32]) -> Vec<f32> {
        assert_eq!(cols.len(), self.unfolded_len(), "the unfolded gradient of {self:?}");
        let (p, [h, w], ow, [sy, sx]) = (self.positions(), self.input, self.output[1], self.geometry.stride);
        let width = self.n * p;
        let sources: Vec<_> = (0..self.geometry.groups * self.taps()).map(|r| self.row_source(r)).collect();
        let mut grad_x = vec![0.0f32; self.n * self.input_len()];
        grad_x.par_chunks_mut(self.input_len()).enumerate().for_each(|(e, example)| {
            for (r, (channel, [(ys, iy0), (xs, ix0)])) in sources.iter().enumerate() {
                let row = &cols[r * width + e * p..][..p];
                if xs.is_empty() {
                    continue;
                }
                let plane = &mut example[channel * h * w..][..h * w];
                for (j, y) in ys.clone().enumerate() {
                    let iy = iy0 + j * sy;
                    let (src, dst) = (&row[y * ow..(y + 1) * ow][xs.clone()], &mut plane[iy * w..(iy + 1) * w]);
                    if sx == 1 {
                        dst[*ix0..ix0 + src.len()].iter_mut().zip(src).for_each(|(d, v)| *d += v);
                    } else {
                        for (j, v) in src.iter().enumerate() {
                            dst[ix0 + j * sx] += v;
                        }
                    }
                }
            }
        });
        grad_x
    }

    /// Group `group`'s part of the kernel `w` as a `[out / groups, taps]` matrix.
    fn kernel<'a>(&self, w: &'a [f32], group: usize) -> Matrix<'a> {
        let (opg, taps) = (self.geometry.out_channels / self.geometry.groups, self.taps());
        Matrix::new(&w[group * opg * taps..][..opg * taps], opg, taps)
    }

    /// The rows of group `group` in a `[rows per group · groups, n · positions]` slice.
    fn group_rows(&self, v_len: usize, group: usize) -> Range<usize> {
        let per_group = v_len / self.geometry.groups;
        group * per_group..(group + 1) * per_group
    }

    /// The output by channel of kernel `w` on the unfolded input `cols`.
    pub fn multiply(&self, w: &[f32], cols: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; self.output_len()];
        let width = self.n * self.positions();
        for group in 0..self.geometry.groups {
            let c = Matrix::new(&cols[self.group_rows(cols.len(), group)], self.taps(), width);
            let range = self.group_rows(out.len(), group);
            product(&mut out[range], self.kernel(w, group), c, false);
        }
        out
    }

    /// The kernel's gradient `[out, c / groups, kh, kw]` from the output's gradient by channel and the unfolded
    /// input.
    pub fn kernel_gradient(&self, grad_by_channel: &[f32], cols: &[f32]) -> Vec<f32> {
        let (opg, taps) = (self.geometry.out_channels / self.geometry.groups, self.taps());
        let mut grad_w = vec![0.0f32; self.geometry.out_channels * taps];
        for group in 0..self.geometry.groups {
            let g = &grad_by_channel[self.group_rows(grad_by_channel.len(), group)];
            let c = &cols[self.group_rows(cols.len(), group)];
            row_products(&mut grad_w[group * opg * taps..][..opg * taps], g, c, [opg, taps], KERNEL_GRADIENT_PIECES);
        }
        grad_w
    }

    /// The unfolded input's gradient from kernel `w` and the output's gradient by channel.
    pub fn unfolded_gradient(&self, w: &[f32], grad_by_channel: &[f32]) -> Vec<f32> {
        let (opg, width) = (self.geometry.out_channels / self.geometry.groups, self.n * self.positions());
        let mut cols = vec![0.0f32; self.unfolded_len()];
        for group in 0..self.geometry.groups {
            let g = Matrix::new(&grad_by_channel[self.group_rows(grad_by_channel.len(), group)], opg, width);
            let range = self.group_rows(cols.len(), group);
            product(&mut cols[range], self.kernel(w, group).t(), g, false);
        }
        cols
    }

    /// Adds to the unfolded input's gradient `cols` the part of input channel `channel` through kernel `w`:
    /// its rows of `w^T` times the output's gradient by channel `grad_by_channel` (of `channel`'s group).
    pub fn add_channel_gradient(&self, w: &[f32], channel: usize, grad_by_channel: &[f32], cols: &mut [f32]) {
        let g = &self.geometry;
        let (cpg, opg, width) = (g.channels_per_group(), g.out_channels / g.groups, self.n * self.positions());
        let (group, within, kk) = (channel / cpg, channel % cpg, g.kernel[0] * g.kernel[1]);
        let kernel = self.kernel(w, group).column_block(within * kk..(within + 1) * kk).t();
        let grad = Matrix::new(&grad_by_channel[self.group_rows(grad_by_channel.len(), group)], opg, width);
        let rows = (group * self.taps() + within * kk) * width..(group * self.taps() + (within + 1) * kk) * width;
        product(&mut cols[rows], kernel, grad, true);
    }

    /// An output (or its gradient) in NCHW order, by channel.
    pub fn by_channel(&self, nchw: &[f32]) -> Vec<f32> {
        swap_leading(nchw, [self.n, self.geometry.out_channels], self.positions())
    }

    /// An output by channel, in NCHW order.
    pub fn by_example(&self, by_channel: &[f32]) -> Vec<f32> {
        swap_leading(by_channel, [self.geometry.out_channels, self.n], self.positions())
    }
}

/// The convolution op (see the module documentation).
struct Im2colConv {
    shape: ConvShape,
}

impl CustomOp2 for Im2colConv {
    fn name(&self) -> &'static str {
        "im2col-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let s = &self.shape;
        let (x, w) = (storage_values(s1, l1)?, storage_values(s2, l2)?);
        let out = s.by_example(&s.multiply(w, &s.unfold(x)));
        Ok((CpuStorage::F32(out), Shape::from((s.n, s.geometry.out_channels, s.output[0], s.output[1]))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let s = &self.shape;
        let grad_by_channel = values(grad, |v| s.by_channel(v))?;
        let cols = values(x, |x| s.unfold(x))?;
        let grad_w = s.kernel_gradient(&grad_by_channel, &cols);
        let grad_x = values(w, |w| s.fold(&s.unfolded_gradient(w, &grad_by_channel)))?;
        let grad_x = Tensor::from_vec(grad_x, x.shape(), x.device())?;
        let grad_w = Tensor::from_vec(grad_w, w.shape(), w.device())?;
        Ok((Some(grad_x), Some(grad_w)))
    }
}

/// `v[a, b, :]` at `[b, a, :]` for `v` of `[d0, d1, inner]`: every value copied once into memory that is not
/// zeroed first.
fn swap_leading(v: &[f32], [d0, d1]: [usize; 2], inner: usize) -> Vec<f32> {
    let len = d0 * d1 * inner;
    assert_eq!(v.len(), len, "[{d0}, {d1}, {inner}] values");
    let mut out = Vec::with_capacity(len);
    if len == 0 {
        return out;
    }
    out.spare_capacity_mut()[..len].par_chunks_mut(d0 * inner).enumerate().for_each(|(b, block)| {
        for (a, dst) in block.chunks_exact_mut(inner).enumerate() {
            dst.iter_mut().zip(&v[(a * d1 + b) * inner..][..inner]).for_each(|(d, v)| _ = d.write(*v));
        }
    });
    // SAFETY: the `d1` blocks of `d0 · inner` values cover `0..len`, and each block's `d0` runs of `inner`
    // values were all written above.
    unsafe { out.set_len(len) };
    out
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
