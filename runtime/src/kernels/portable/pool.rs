//! Max and average pooling over a block of samples (`[channels × height × width × s]`, the predictor's layout),
//! one sample's windows a row at a time.

use crate::kernels::SAMPLE_BLOCK;
use crate::layers::{PoolGeometry, PoolKind};
use crate::math::{any_non_finite, non_finite_bit};

/// The offsets `k < kernel` of a window starting at `start` (in padded coordinates) whose input `start + k -
/// padding` lies in `0..n`.
#[inline(always)]
pub(super) fn inside(start: usize, padding: usize, kernel: usize, n: usize) -> core::ops::Range<usize> {
    let first = padding.saturating_sub(start).min(kernel);
    first..(n + padding).saturating_sub(start).clamp(first, kernel)
}

/// One sample's pooling windows folded by `step` from `init` (a maximum by a plain comparison: a NaN is dealt
/// with by the caller; or a sum), a row of outputs at a time: each window value, kernel row by kernel row and
/// column by column as in the block loop, goes to every output of the row whose window holds it.
#[inline(always)]
fn pool_single(
    g: &PoolGeometry,
    [c, h, w]: [usize; 3],
    [oh, ow]: [usize; 2],
    input: &[f32],
    out: &mut [f32],
    (init, step): (f32, impl Fn(f32, f32) -> f32),
) {
    let ([kh, kw], [sy, sx], [ph, pw]) = (g.kernel, g.step(), g.padding);
    for (ch, rows_out) in out.chunks_exact_mut(oh * ow).take(c).enumerate() {
        for (y, dst) in rows_out.chunks_exact_mut(ow).enumerate() {
            dst.fill(init);
            for ky in inside(y * sy, ph, kh, h) {
                let row = &input[(ch * h + y * sy + ky - ph) * w..][..w];
                for kx in 0..kw {
                    // The outputs whose column `x * sx + kx - pw` lies in the row: all but a few at either end
                    // (found by stepping in from the ends: a division here costs more than the row).
                    let mut first = 0;
                    while first < ow && first * sx + kx < pw {
                        first += 1;
                    }
                    let mut end = ow;
                    while end > first && (end - 1) * sx + kx >= w + pw {
                        end -= 1;
                    }
                    for x in first..end {
                        dst[x] = step(dst[x], row[x * sx + kx - pw]);
                    }
                }
            }
        }
    }
}

/// The maximum of four inputs, sample by sample, into `dst` (folded from -inf in the order given, as the block
/// loop folds a window); returns a non-zero bit if any input is not finite.
#[inline(always)]
pub(crate) fn max_of_four(dst: &mut [f32], [a, b, c, d]: [&[f32]; 4]) -> u32 {
    let mut bad = 0;
    let pairs = a.iter().zip(b).zip(c.iter().zip(d));
    dst.iter_mut().zip(pairs).for_each(|(v, ((a, b), (c, d)))| {
        bad |= non_finite_bit(*a) | non_finite_bit(*b) | non_finite_bit(*c) | non_finite_bit(*d);
        *v = f32::NEG_INFINITY.max(*a).max(*b).max(*c).max(*d)
    });
    bad
}

/// Max pooling by 2 x 2 windows that tile the image (stride 2, no padding, even sides) of a block of `s` samples,
/// `input` `[c × h × w × s]` into `out`, a pair of input rows (never two channels': `h` is even) for each row of
/// outputs, walked without an index; returns a non-zero bit if any input is not finite. Force-inlined on x86-64
/// only, where `Isa::run` compiles it per instruction set; one copy elsewhere (the phones' library size).
#[cfg_attr(target_arch = "x86_64", inline(always))]
fn max_pool_tiles(input: &[f32], w: usize, s: usize, out: &mut [f32]) -> u32 {
    let mut bad = 0;
    for (rows, dst) in input.chunks_exact(2 * w * s).zip(out.chunks_exact_mut(w / 2 * s)) {
        let (top, bottom) = rows.split_at(w * s);
        let windows = top.chunks_exact(2 * s).zip(bottom.chunks_exact(2 * s));
        for ((top, bottom), dst) in windows.zip(dst.chunks_exact_mut(s)) {
            let ((a, b), (c, d)) = (top.split_at(s), bottom.split_at(s));
            bad |= max_of_four(dst, [a, b, c, d]);
        }
    }
    bad
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
    let input = &input[..c * h * w * s];
    let out = &mut out[..c * oh * ow * s];
    let [kh, kw] = g.kernel;
    let step = g.step();
    let count = (kh * kw) as f32;
    let init = if kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 };
    // Windows that tile the image: 2 x 2, stride 2, no padding, even sides (a block of samples only).
    let tiled = s > 1 && kind == PoolKind::Max && g.tiles_in_pairs([h, w]) && w > 0;
    let mut bad = 0;
    if s == 1 {
        match kind {
            PoolKind::Max => pool_single(g, [c, h, w], [oh, ow], input, out, (init, |m, v| if v > m { v } else { m })),
            PoolKind::Avg => {
                pool_single(g, [c, h, w], [oh, ow], input, out, (init, |m, v| m + v));
                out.iter_mut().for_each(|d| *d /= count);
            }
        }
    } else if tiled {
        // Each input is read once, by the one-pass maximum, which checks it for non-finite values as it goes.
        bad = if s == SAMPLE_BLOCK {
            // A block's 32 samples: a count known here, so each window is two vectors, no remainder.
            max_pool_tiles(input, w, SAMPLE_BLOCK, out)
        } else {
            max_pool_tiles(input, w, s, out)
        };
    } else {
        for ch in 0..c {
            for y in 0..oh {
                let rows = inside(y * step[0], g.padding[0], kh, h);
                for x in 0..ow {
                    let columns = inside(x * step[1], g.padding[1], kw, w);
                    let dst = &mut out[((ch * oh + y) * ow + x) * s..][..s];
                    let at = |ky: usize, kx: usize| {
                        let row = ch * h + y * step[0] + ky - g.padding[0];
                        (row * w + x * step[1] + kx - g.padding[1]) * s
                    };
                    if kind == PoolKind::Max && rows.len() == 2 && columns.len() == 2 {
                        // A 2 x 2 window inside the image (most of them): one pass over the four inputs.
                        let [r0, r1] = [rows.start, rows.start + 1];
                        let [c0, c1] = [columns.start, columns.start + 1];
                        let corners = [at(r0, c0), at(r0, c1), at(r1, c0), at(r1, c1)];
                        max_of_four(dst, corners.map(|k| &input[k..][..s]));
                        continue;
                    }
                    dst.fill(init);
                    for ky in rows.clone() {
                        for kx in columns.clone() {
                            let src = &input[at(ky, kx)..][..s];
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
    }
    if (tiled && bad != 0) || (!tiled && any_non_finite(input)) {
        out.fill(f32::NAN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

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
        // One sample takes its own path: the same windows.
        let mut one = vec![0.0; 3];
        pool2d_block((PoolKind::Max, &g), [1, 3, 4], out_hw, &img, 1, &mut one);
        assert_eq!(one, [4.0, 6.0, 7.0]);
        pool2d_block((PoolKind::Avg, &g), [1, 3, 4], out_hw, &img, 1, &mut one);
        assert_eq!(one, [1.0, 3.5, 2.5]);
    }

    #[test]
    fn windows_that_tile_the_image_check_every_input_as_they_take_the_maximum() {
        // 4x4, 2x2 windows with stride 2: every input lies in one window, checked in that pass; three samples, and
        // a block's 32 (a loop of known length).
        let img: Vec<f32> = (0..16).map(|k| ((k * 7) % 16) as f32 - 5.0).collect();
        let g = PoolGeometry::new([2, 2]);
        let mut one = vec![0.0; 4];
        pool2d_block((PoolKind::Max, &g), [1, 4, 4], [2, 2], &img, 1, &mut one);
        assert_eq!(one, [7.0, 9.0, 10.0, 8.0]);
        for s in [3, 32] {
            // Sample j scales the image by (j + 1) / 2 and flips its sign when j is odd.
            let scale = |j: usize| (j as f32 + 1.0) * 0.5 * if j % 2 == 1 { -1.0 } else { 1.0 };
            let input: Vec<f32> = img.iter().flat_map(|v| (0..s).map(move |j| v * scale(j))).collect();
            let mut out = vec![0.0; 4 * s];
            pool2d_block((PoolKind::Max, &g), [1, 4, 4], [2, 2], &input, s, &mut out);
            for (p, window) in [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]].iter().enumerate() {
                for j in 0..s {
                    let want = window.iter().map(|k| img[*k] * scale(j)).fold(f32::NEG_INFINITY, f32::max);
                    assert_eq!(out[p * s + j], want, "s = {s}, window {p}, sample {j}");
                }
            }
            // A non-finite value anywhere, in any sample, makes every output NaN (a max would drop NaN and -inf).
            for at in [0, s * 5 + 1, s * 15 + s - 1] {
                for bad in [f32::NAN, f32::NEG_INFINITY, f32::INFINITY] {
                    let mut x = input.clone();
                    x[at] = bad;
                    pool2d_block((PoolKind::Max, &g), [1, 4, 4], [2, 2], &x, s, &mut out);
                    assert!(out.iter().all(|v| v.is_nan()), "s = {s}: {bad} at {at}");
                }
            }
        }
    }

    /// One sample's pooling (a row of outputs at a time) gives the bits of the block loop's, for windows with
    /// and without padding and overlap, on two channels of odd sizes.
    #[test]
    fn one_sample_pools_with_the_bits_of_the_block_loop() {
        let geometries = [
            PoolGeometry::new([2, 2]),
            PoolGeometry::new([3, 3]).stride([2, 2]).padding([1, 1]),
            PoolGeometry::new([3, 2]).stride([1, 2]).padding([1, 0]),
            PoolGeometry::new([2, 3]).stride([3, 1]).padding([0, 1]),
        ];
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for g in geometries {
            for [h, w] in [[5, 7], [6, 4]] {
                let [oh, ow] = g.output_size([h, w]).unwrap();
                let x: Vec<f32> = (0..2 * h * w).map(|k| ((k * 7) as f32 * 0.37).sin()).collect();
                for kind in [PoolKind::Max, PoolKind::Avg] {
                    // The image twice per value: a block of two samples.
                    let twice: Vec<f32> = x.iter().flat_map(|v| [*v, *v]).collect();
                    let (mut one, mut block) = (vec![f32::NAN; 2 * oh * ow], vec![f32::NAN; 4 * oh * ow]);
                    pool2d_block((kind, &g), [2, h, w], [oh, ow], &x, 1, &mut one);
                    pool2d_block((kind, &g), [2, h, w], [oh, ow], &twice, 2, &mut block);
                    let first: Vec<f32> = block.iter().step_by(2).copied().collect();
                    assert_eq!(bits(&one), bits(&first), "{g:?} {h}x{w} {kind:?}");
                }
            }
        }
    }
}
