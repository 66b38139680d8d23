//! Convolution and pooling over a block of samples: images stored NCHW, one row of `s` samples per value
//! (`[channels × height × width × s]`, the layout of every block of the predictor). Plain multiply-then-add in a
//! fixed order (bias, then input channel, kernel row, kernel column), never fused: the same bits on every CPU.

use crate::layers::{ConvGeometry, PoolGeometry, PoolKind};

/// A convolution's sizes for one input: `[channels, height, width]` in, `[height, width]` out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvShape<'g> {
    pub geometry: &'g ConvGeometry,
    pub input: [usize; 3],
    pub output: [usize; 2],
}

/// `out[(o, y, x), t] = bias[o, t] + sum_{i, ky, kx} w[(o, i, ky, kx), t] * in[(c, iy, ix), t]` for a block of `s`
/// samples, with `c` the `i`-th input channel of output channel `o`'s group, `iy = y stride + ky dilation -
/// padding` (likewise `ix`), positions outside the input left out (zero padding). `weights` and `bias` hold
/// `per` values per weight: `s` (a kernel per sample) or 1 (one kernel for all). Each output's sum starts at the
/// bias and adds the taps in order (input channel, kernel row, kernel column), whatever the block size.
#[inline(always)]
pub(crate) fn conv2d_block(
    shape: ConvShape<'_>,
    input: &[f32],
    s: usize,
    (weights, bias, per): (&[f32], &[f32], usize),
    out: &mut [f32],
) {
    // The sums of a whole block row stay in registers for the two sizes that matter: the full sample block and
    // the single sample of `Mean` and weight sampling; other sizes share one loop over slices.
    match (s, per == 1) {
        (32, true) => conv_fixed::<32, false>(shape, input, weights, bias, out),
        (32, false) => conv_fixed::<32, true>(shape, input, weights, bias, out),
        (1, _) => conv_single(shape, input, weights, bias, out),
        _ => conv_any(shape, input, s, (weights, bias, per), out),
    }
}

/// The output positions `o` along dimension `d` (of `outs`) whose input `o stride + k dilation - padding` lies in
/// `0..n`, as a range (the valid positions of one kernel offset are contiguous).
#[inline(always)]
fn valid(g: &ConvGeometry, d: usize, k: usize, n: usize, outs: usize) -> core::ops::Range<usize> {
    let offset = k * g.dilation[d];
    // First o with o stride + offset >= padding, and first o with o stride + offset >= padding + n.
    let first = |bound: usize| bound.saturating_sub(offset).div_ceil(g.stride[d]).min(outs);
    first(g.padding[d])..first(g.padding[d] + n)
}

/// [`conv2d_block`] for a block of `N` samples, each output's `N` sums in registers. `PER_SAMPLE`: `weights`
/// and `bias` hold `N` values per weight, else one.
#[inline(always)]
fn conv_fixed<const N: usize, const PER_SAMPLE: bool>(
    shape: ConvShape<'_>,
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    out: &mut [f32],
) {
    let g = shape.geometry;
    let ([_, h, w], [oh, ow]) = (shape.input, shape.output);
    let (cpg, opg, [kh, kw]) = (g.channels_per_group(), g.out_channels / g.groups, g.kernel);
    let input = input.as_chunks::<N>().0;
    let out = out.as_chunks_mut::<N>().0;
    let per = if PER_SAMPLE { N } else { 1 };
    for o in 0..g.out_channels {
        let first_channel = (o / opg) * cpg;
        let b = &bias[o * per..(o + 1) * per];
        for y in 0..oh {
            for x in 0..ow {
                let mut acc = [0.0f32; N];
                for (t, a) in acc.iter_mut().enumerate() {
                    *a = b[if PER_SAMPLE { t } else { 0 }];
                }
                for i in 0..cpg {
                    let c = first_channel + i;
                    for ky in 0..kh {
                        let Some(iy) =
                            (y * g.stride[0] + ky * g.dilation[0]).checked_sub(g.padding[0]).filter(|v| *v < h)
                        else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) =
                                (x * g.stride[1] + kx * g.dilation[1]).checked_sub(g.padding[1]).filter(|v| *v < w)
                            else {
                                continue;
                            };
                            let k = ((o * cpg + i) * kh + ky) * kw + kx;
                            let src = &input[(c * h + iy) * w + ix];
                            let wk = &weights[k * per..(k + 1) * per];
                            for t in 0..N {
                                acc[t] += wk[if PER_SAMPLE { t } else { 0 }] * src[t];
                            }
                        }
                    }
                }
                out[(o * oh + y) * ow + x] = acc;
            }
        }
    }
}

/// [`conv2d_block`] for one sample: tap by tap (in the sums' order), the tap's weight times a row of the input
/// added to a row of the output, which vectorises along the row when the stride is 1.
fn conv_single(shape: ConvShape<'_>, input: &[f32], weights: &[f32], bias: &[f32], out: &mut [f32]) {
    let g = shape.geometry;
    let ([_, h, w], [oh, ow]) = (shape.input, shape.output);
    let (cpg, opg, [kh, kw]) = (g.channels_per_group(), g.out_channels / g.groups, g.kernel);
    for o in 0..g.out_channels {
        let out_o = &mut out[o * oh * ow..(o + 1) * oh * ow];
        out_o.fill(bias[o]);
        for i in 0..cpg {
            let c = (o / opg) * cpg + i;
            for ky in 0..kh {
                for kx in 0..kw {
                    let u = weights[((o * cpg + i) * kh + ky) * kw + kx];
                    let xs = valid(g, 1, kx, w, ow);
                    if xs.is_empty() {
                        continue;
                    }
                    let ix0 = xs.start * g.stride[1] + kx * g.dilation[1] - g.padding[1];
                    for y in valid(g, 0, ky, h, oh) {
                        let iy = y * g.stride[0] + ky * g.dilation[0] - g.padding[0];
                        let src = &input[(c * h + iy) * w + ix0..];
                        let dst = &mut out_o[y * ow + xs.start..y * ow + xs.end];
                        if g.stride[1] == 1 {
                            dst.iter_mut().zip(src).for_each(|(d, v)| *d += u * v);
                        } else {
                            dst.iter_mut().zip(src.iter().step_by(g.stride[1])).for_each(|(d, v)| *d += u * v);
                        }
                    }
                }
            }
        }
    }
}

/// [`conv2d_block`] for any block size: the taps in the same order, each added to a whole output row of the
/// block.
fn conv_any(
    shape: ConvShape<'_>,
    input: &[f32],
    s: usize,
    (weights, bias, per): (&[f32], &[f32], usize),
    out: &mut [f32],
) {
    let g = shape.geometry;
    let ([_, h, w], [oh, ow]) = (shape.input, shape.output);
    let (cpg, opg) = (g.channels_per_group(), g.out_channels / g.groups);
    let [kh, kw] = g.kernel;
    for o in 0..g.out_channels {
        let out_o = &mut out[o * oh * ow * s..(o + 1) * oh * ow * s];
        let b = &bias[o * per..(o + 1) * per];
        for row in out_o.chunks_exact_mut(s) {
            for (t, v) in row.iter_mut().enumerate() {
                *v = b[if per == 1 { 0 } else { t }];
            }
        }
        for i in 0..cpg {
            let c = (o / opg) * cpg + i;
            for ky in 0..kh {
                for kx in 0..kw {
                    let k = ((o * cpg + i) * kh + ky) * kw + kx;
                    let wk = &weights[k * per..(k + 1) * per];
                    for y in valid(g, 0, ky, h, oh) {
                        let iy = y * g.stride[0] + ky * g.dilation[0] - g.padding[0];
                        for x in valid(g, 1, kx, w, ow) {
                            let ix = x * g.stride[1] + kx * g.dilation[1] - g.padding[1];
                            let src = &input[((c * h + iy) * w + ix) * s..][..s];
                            let dst = &mut out_o[(y * ow + x) * s..][..s];
                            if per == 1 {
                                let u = wk[0];
                                dst.iter_mut().zip(src).for_each(|(d, v)| *d += u * v);
                            } else {
                                dst.iter_mut().zip(src).zip(wk).for_each(|((d, v), u)| *d += u * v);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Max or average pooling of a block of `s` samples, channel by channel (`input` is `[c × h × w × s]`, `out`
/// `[c × oh × ow × s]`). A non-finite input value makes every output NaN, as an activation does: `max` would
/// otherwise drop a NaN and an overflow would come out as a number.
#[inline(always)]
pub(crate) fn pool2d_block(
    (kind, g): (PoolKind, &PoolGeometry),
    [c, h, w]: [usize; 3],
    [oh, ow]: [usize; 2],
    input: &[f32],
    s: usize,
    out: &mut [f32],
) {
    const EXPONENT: u32 = 0x7f80_0000;
    let input = &input[..c * h * w * s];
    let out = &mut out[..c * oh * ow * s];
    let [kh, kw] = g.kernel;
    let step = g.step();
    let count = (kh * kw) as f32;
    for ch in 0..c {
        for y in 0..oh {
            for x in 0..ow {
                let dst = &mut out[((ch * oh + y) * ow + x) * s..][..s];
                dst.fill(if kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 });
                for ky in 0..kh {
                    let Some(iy) = (y * step[0] + ky).checked_sub(g.padding[0]).filter(|iy| *iy < h) else { continue };
                    for kx in 0..kw {
                        let Some(ix) = (x * step[1] + kx).checked_sub(g.padding[1]).filter(|ix| *ix < w) else {
                            continue;
                        };
                        let src = &input[((ch * h + iy) * w + ix) * s..][..s];
                        match kind {
                            PoolKind::Max => dst.iter_mut().zip(src).for_each(|(d, v)| *d = d.max(*v)),
                            PoolKind::Avg => dst.iter_mut().zip(src).for_each(|(d, v)| *d += v),
                        }
                    }
                }
                if kind == PoolKind::Avg {
                    dst.iter_mut().for_each(|d| *d /= count);
                }
            }
        }
    }
    if input.iter().fold(0u32, |acc, v| acc | ((v.to_bits() & EXPONENT == EXPONENT) as u32)) != 0 {
        out.fill(f32::NAN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one sample, one output at a time, with zero padding made explicit.
    fn naive(g: &ConvGeometry, [c, h, w]: [usize; 3], x: &[f32], weights: &[f32], bias: &[f32]) -> Vec<f32> {
        let [oh, ow] = g.output_size([h, w]).unwrap();
        let (cpg, opg) = (g.channels_per_group(), g.out_channels / g.groups);
        let at = |ch: usize, iy: isize, ix: isize| {
            if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w {
                0.0
            } else {
                x[(ch * h + iy as usize) * w + ix as usize] as f64
            }
        };
        let mut out = Vec::new();
        for (o, b) in bias.iter().enumerate().take(g.out_channels) {
            for y in 0..oh {
                for xx in 0..ow {
                    let mut sum = *b as f64;
                    for i in 0..cpg {
                        for ky in 0..g.kernel[0] {
                            for kx in 0..g.kernel[1] {
                                let iy = (y * g.stride[0] + ky * g.dilation[0]) as isize - g.padding[0] as isize;
                                let ix = (xx * g.stride[1] + kx * g.dilation[1]) as isize - g.padding[1] as isize;
                                let k = ((o * cpg + i) * g.kernel[0] + ky) * g.kernel[1] + kx;
                                sum += weights[k] as f64 * at((o / opg) * cpg + i, iy, ix);
                            }
                        }
                    }
                    out.push(sum);
                }
            }
        }
        let _ = c;
        out.into_iter().map(|v| v as f32).collect()
    }

    #[test]
    fn the_block_convolution_is_the_definition_for_every_sample() {
        let geometries = [
            ConvGeometry::new(2, 3, [3, 3]),
            ConvGeometry::new(2, 4, [3, 2]).stride([2, 1]).padding([1, 1]),
            ConvGeometry::new(3, 3, [3, 3]).padding([2, 2]).dilation([2, 2]).groups(3),
            ConvGeometry::new(4, 2, [1, 1]).groups(2),
        ];
        let (h, w) = (7, 6);
        for (g, s) in geometries.into_iter().flat_map(|g| [(g, 3), (g, 32), (g, 1)]) {
            let input = [g.in_channels, h, w];
            let output = g.output_size([h, w]).unwrap();
            let n_in = g.in_channels * h * w;
            let nw = g.weight_count().unwrap();
            // Sample t's image and kernel.
            let x = |t: usize| (0..n_in).map(|k| ((k * 7 + t * 3) as f32 * 0.37).sin()).collect::<Vec<f32>>();
            let k = |t: usize| (0..nw).map(|k| ((k * 5 + t) as f32 * 0.23).cos()).collect::<Vec<f32>>();
            let b = |t: usize| (0..g.out_channels).map(|o| o as f32 * 0.1 - t as f32).collect::<Vec<f32>>();
            let interleave = |f: &dyn Fn(usize) -> Vec<f32>| {
                let cols: Vec<Vec<f32>> = (0..s).map(f).collect();
                (0..cols[0].len()).flat_map(|r| cols.iter().map(move |c| c[r])).collect::<Vec<f32>>()
            };
            let n_out = g.out_channels * output[0] * output[1];
            let shape = ConvShape { geometry: &g, input, output };
            // One kernel per sample, and one kernel shared by all.
            let mut per_sample = vec![f32::NAN; n_out * s];
            conv2d_block(shape, &interleave(&x), s, (&interleave(&k), &interleave(&b), s), &mut per_sample);
            let mut shared = vec![f32::NAN; n_out * s];
            conv2d_block(shape, &interleave(&x), s, (&k(0), &b(0), 1), &mut shared);
            // The register and single-sample kernels add the taps in the order of the loop over slices: the same
            // bits.
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let mut any = vec![f32::NAN; n_out * s];
            conv_any(shape, &interleave(&x), s, (&interleave(&k), &interleave(&b), s), &mut any);
            assert_eq!(bits(&any), bits(&per_sample), "{g:?}, s = {s}");
            conv_any(shape, &interleave(&x), s, (&k(0), &b(0), 1), &mut any);
            assert_eq!(bits(&any), bits(&shared), "{g:?} shared, s = {s}");
            for t in 0..s {
                let want = naive(&g, input, &x(t), &k(t), &b(t));
                let want_shared = naive(&g, input, &x(t), &k(0), &b(0));
                for (j, (a, b)) in want.iter().zip(&want_shared).enumerate() {
                    assert!((per_sample[j * s + t] - a).abs() < 1e-4, "{g:?} sample {t} output {j}");
                    assert!((shared[j * s + t] - b).abs() < 1e-4, "{g:?} shared, sample {t} output {j}");
                }
            }
        }
    }

    #[test]
    fn pooling_takes_the_maximum_or_the_mean_of_each_window() {
        // One channel, 3x4, two samples (the second the negative of the first); 2x2 windows, stride 2, padding
        // (0, 1): the windows cover columns -1..1 and 1..3.
        let img: Vec<f32> = (0..12).map(|k| k as f32).collect();
        let input: Vec<f32> = img.iter().flat_map(|v| [*v, -*v]).collect();
        let g = PoolGeometry::new([2, 2]).padding([0, 1]);
        let out_hw = g.output_size([3, 4]).unwrap();
        assert_eq!(out_hw, [1, 3]);
        let mut out = vec![0.0; 6];
        pool2d_block((PoolKind::Max, &g), [1, 3, 4], out_hw, &input, 2, &mut out);
        assert_eq!(out, [4.0, 0.0, 6.0, -1.0, 7.0, -3.0]);
        pool2d_block((PoolKind::Avg, &g), [1, 3, 4], out_hw, &input, 2, &mut out);
        assert_eq!(out, [1.0, -1.0, 3.5, -3.5, 2.5, -2.5]);
        let mut bad = input.clone();
        bad[5] = f32::NAN;
        pool2d_block((PoolKind::Max, &g), [1, 3, 4], out_hw, &bad, 2, &mut out);
        assert!(out.iter().all(|v| v.is_nan()));
    }
}
