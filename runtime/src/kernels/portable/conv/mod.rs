//! Convolution over a block of samples: images stored NCHW, one row of `s` samples per value (`[channels ×
//! height × width × s]`, the layout of every block of the predictor). Here: the [`ConvPlan`], the dispatch to a
//! kernel ([`conv2d_block`]) and the plain loop every kernel must match ([`conv_any`]); the tiled kernels live in
//! `tiles.rs` (a block's samples in registers), `grouped.rs` (samples regrouped in eights) and `single.rs` (one
//! sample in wide rows), and `background.rs` finds and fills the outputs that read only a shared image's
//! background.
//!
//! A convolution runs from a [`ConvPlan`]: its input is first zero-padded into a buffer of its own, so that every
//! tap of every output reads inside the image and no kernel tests a bound, and each output channel keeps a list of
//! its live taps (the kernel weights not pruned), each with the offset it reads from the output's window. Every
//! output is its bias plus its channel's taps in order (input channel, kernel row, kernel column), each `w * x`
//! added with one rounding when `FUSED` and two otherwise; a padded position adds `w * 0`. The block kernels keep
//! a tile of outputs × samples in registers (or, given room, first copy a block's samples into groups of eight
//! and keep a tile of channels × positions of one group: [`conv_grouped`]), the single-sample kernel runs of
//! consecutive positions; every path gives the bits of [`conv_any`], the plain loop.

mod background;
#[cfg(any(test, target_arch = "x86_64"))]
mod grouped;
mod single;
mod tiles;

use super::block::madd;
use crate::layers::ConvGeometry;
use crate::math::any_non_finite;
use crate::prelude::*;
use background::{fill_background, LitSpans};
#[cfg(any(test, target_arch = "x86_64"))]
use grouped::{conv_grouped, GROUP_TILE};
use single::conv_single;
use tiles::{conv_tiles, conv_tiles_pooled};

/// A convolution as its kernels see it, for one input size: the padded input, the output, and each output
/// channel's live taps.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConvPlan {
    input: [usize; 3],
    padding: [usize; 2],
    /// Height and width of the zero-padded input.
    padded: [usize; 2],
    stride: [usize; 2],
    /// Output channels, height and width.
    output: [usize; 3],
    /// Output channel `o`'s taps are `taps[first_tap[o]..first_tap[o + 1]]`.
    first_tap: Vec<usize>,
    /// A tap: the index of its kernel weight, and the offset (in values of the padded input) of the input it
    /// multiplies from the top-left corner of the output's window.
    taps: Vec<[usize; 2]>,
    /// Each tap's input channel, and its row and column from the window's first.
    tap_windows: Vec<[usize; 3]>,
    /// Kernel weights (live or not).
    weights: usize,
    /// One past the furthest value of a padded sample that a tap of an output reads.
    reach: usize,
    /// The furthest row and column, from the window's first, that a tap reads.
    extent: [usize; 2],
    /// Whether every output channel reads the same inputs with all of its kernel weights (one group, nothing
    /// pruned): channel `o`'s tap `j` is then weight `o * taps + j` at channel 0's offset of tap `j`.
    #[cfg(any(test, target_arch = "x86_64"))]
    dense: bool,
}

impl ConvPlan {
    /// The plan of convolution `g` on `input` (`[channels, height, width]`) giving `output` (`[channels,
    /// height, width]`), both as the model validated them; `live(k)` says whether kernel weight `k` can be
    /// non-zero (a pruned weight is zero in every sample, and its tap is left out).
    pub(crate) fn new(g: &ConvGeometry, input: [usize; 3], output: [usize; 3], live: impl Fn(usize) -> bool) -> Self {
        let padded = [input[1] + 2 * g.padding[0], input[2] + 2 * g.padding[1]];
        let (cpg, opg, [kh, kw]) = (g.channels_per_group(), g.out_channels / g.groups.max(1), g.kernel);
        let (mut first_tap, mut taps, mut tap_windows, mut extent) = (vec![0], Vec::new(), Vec::new(), [0, 0]);
        for o in 0..output[0] {
            let first_channel = (o / opg.max(1)) * cpg;
            for i in 0..cpg {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let k = ((o * cpg + i) * kh + ky) * kw + kx;
                        if live(k) {
                            let [dy, dx] = [ky * g.dilation[0], kx * g.dilation[1]];
                            extent = [extent[0].max(dy), extent[1].max(dx)];
                            taps.push([k, ((first_channel + i) * padded[0] + dy) * padded[1] + dx]);
                            tap_windows.push([first_channel + i, dy, dx]);
                        }
                    }
                }
            }
            first_tap.push(taps.len());
        }
        let (padding, stride) = (g.padding, g.stride);
        let mut plan =
            Self { input, padding, padded, stride, output, first_tap, taps, tap_windows, extent, ..Self::default() };
        plan.weights = output[0] * cpg * kh * kw;
        #[cfg(any(test, target_arch = "x86_64"))]
        {
            plan.dense = g.groups <= 1 && plan.taps.len() == plan.weights;
        }
        let last_window = plan.origin(output[1].saturating_sub(1), output[2].saturating_sub(1));
        plan.reach = plan.taps.iter().map(|[_, offset]| last_window + offset + 1).max().unwrap_or(0);
        plan
    }

    /// Whether the input is padded (else the kernels read it as it is).
    pub(crate) fn pads(&self) -> bool {
        self.padding != [0, 0]
    }

    /// Values of one sample of the padded input.
    pub(crate) fn padded_len(&self) -> usize {
        self.input[0] * self.padded[0] * self.padded[1]
    }

    /// Values of one sample of the output.
    pub(crate) fn output_len(&self) -> usize {
        self.output.iter().product()
    }

    /// Values of room [`conv2d_block`] takes to regroup a block of `s` samples (see [`conv_grouped`]): none
    /// for a plan it does not regroup.
    pub(crate) fn regroup_len(&self, s: usize) -> usize {
        if self.regroups() {
            (self.padded_len() + self.weights) * s
        } else {
            0
        }
    }

    /// The output rows (`axis` 0) or columns (1) whose windows lie wholly inside the image (not in the padding).
    fn interior(&self, axis: usize) -> core::ops::Range<usize> {
        let (n, pad, step, extent) = (self.input[axis + 1], self.padding[axis], self.stride[axis], self.extent[axis]);
        // Output `i` reads padded `i * step ..= i * step + extent`, inside the image from `pad` to `n + pad - 1`.
        let end = if n + pad > extent { (n + pad - extent - 1) / step + 1 } else { 0 };
        pad.div_ceil(step).min(end)..end.min(self.output[axis + 1])
    }

    /// Whether [`conv2d_block`] regroups a block of 32 samples, each with its image and kernels, when given
    /// room: every kernel weight live, one group, and at least a tile of output channels and of a row (never
    /// where the regrouping kernel is not built).
    pub(crate) fn regroups(&self) -> bool {
        #[cfg(any(test, target_arch = "x86_64"))]
        return self.dense && self.output[0] >= GROUP_TILE[0] && self.output[2] >= GROUP_TILE[1];
        #[cfg(not(any(test, target_arch = "x86_64")))]
        false
    }

    fn taps(&self, o: usize) -> &[[usize; 2]] {
        &self.taps[self.first_tap[o]..self.first_tap[o + 1]]
    }

    /// Output channel `o`'s taps' input channels, rows and columns (see `tap_windows`).
    fn tap_windows(&self, o: usize) -> &[[usize; 3]] {
        &self.tap_windows[self.first_tap[o]..self.first_tap[o + 1]]
    }

    /// Output position `(y, x)`'s window: its first value in the padded input.
    #[inline(always)]
    fn origin(&self, y: usize, x: usize) -> usize {
        y * self.stride[0] * self.padded[1] + x * self.stride[1]
    }

    /// Copies the input block `x` (`[c × h × w × s]`) into `out` with its zero border: `[c × h' × w' × s]`.
    pub(crate) fn pad(&self, x: &[f32], s: usize, out: &mut [f32]) {
        let ([c, h, w], [ph, pw], [hp, wp]) = (self.input, self.padding, self.padded);
        let out = &mut out[..c * hp * wp * s];
        for (channel, padded) in x.chunks_exact(h * w * s).zip(out.chunks_exact_mut(hp * wp * s)) {
            let (top, rest) = padded.split_at_mut(ph * wp * s);
            let (middle, bottom) = rest.split_at_mut(h * wp * s);
            top.fill(0.0);
            bottom.fill(0.0);
            for (row, padded_row) in channel.chunks_exact(w * s).zip(middle.chunks_exact_mut(wp * s)) {
                let (left, rest) = padded_row.split_at_mut(pw * s);
                let (inside, right) = rest.split_at_mut(w * s);
                left.fill(0.0);
                inside.copy_from_slice(row);
                right.fill(0.0);
            }
        }
    }
}

/// `out[(o, y, x), t]` for a block of `s` samples (see the module documentation for the sum): `x` is the padded
/// input, one image per sample (`[c × h' × w' × s]`) or, when `x_per_sample` is false, one image for every
/// sample (`[c × h' × w']`); `weights` and `bias` hold `per` values per weight: `s` (a kernel per sample) or 1
/// (one kernel for all). A non-finite input value makes every output NaN: a pruned tap would otherwise drop an
/// overflow that the dense kernel would pass on. With `room` (at least [`ConvPlan::regroup_len`] values), a
/// block of 32 samples with an image and kernels per sample and a plan that allows it runs [`conv_grouped`].
#[inline(always)]
pub(crate) fn conv2d_block<const FUSED: bool>(
    plan: &ConvPlan,
    (x, x_per_sample): (&[f32], bool),
    s: usize,
    (weights, bias, per): (&[f32], &[f32], usize),
    out: &mut [f32],
    room: Option<&mut [f32]>,
) {
    // The tiled kernels read `x` and `weights` without bounds checks; these three lines make that sound: every
    // tap of every output reads below `reach` of a padded sample, and every tap's weight is below `weights`.
    let x = &x[..plan.padded_len() * if x_per_sample { s } else { 1 }];
    let weights = &weights[..plan.weights * per];
    assert!(plan.reach <= plan.padded_len(), "a convolution plan reads outside its input");
    let out = &mut out[..plan.output_len() * s];
    if any_non_finite(x) {
        out.fill(f32::NAN);
        return;
    }
    // One image for every sample, each with its kernels: the kernels skip the windows that read only the
    // image's background, filled afterwards (`background.rs`).
    let spans = if s == 32 && per != 1 && !x_per_sample { LitSpans::new(plan, x) } else { None };
    match (s, per == 1, x_per_sample, room) {
        // Built where an instruction set regroups (`Isa::regroups_conv_samples`), and in tests.
        #[cfg(any(test, target_arch = "x86_64"))]
        (32, false, true, Some(room)) if plan.regroups() => {
            conv_grouped::<32, true, FUSED>(plan, x, (weights, bias), out, room, None)
        }
        #[cfg(any(test, target_arch = "x86_64"))]
        (32, false, false, Some(room)) if plan.regroups() => {
            conv_grouped::<32, false, FUSED>(plan, x, (weights, bias), out, room, spans.as_ref())
        }
        (32, false, true, _) => conv_tiles::<32, true, true, FUSED>(plan, x, (weights, bias), out, None),
        (32, false, false, _) => conv_tiles::<32, true, false, FUSED>(plan, x, (weights, bias), out, spans.as_ref()),
        (32, true, true, _) => conv_tiles::<32, false, true, FUSED>(plan, x, (weights, bias), out, None),
        // Other block sizes (adaptive sampling's groups of eight, the rest of a sample count) and strided
        // convolutions of one sample take the plain loop: more tiled kernels grew the phones' library past its budget
        // (benches/README, session 16).
        (1, _, _, _) if plan.stride == [1, 1] => conv_single::<FUSED>(plan, x, weights, bias, out),
        _ => conv_any::<FUSED>(plan, (x, x_per_sample), s, (weights, bias, per), out),
    }
    if let Some(spans) = &spans {
        fill_background::<32, FUSED>(plan, x, spans, (weights, bias), out);
    }
}

/// [`conv2d_block`] of 32 samples, each with its kernels, on one image for all or (`x_per_sample`) an image per
/// sample, followed by max pooling in 2 x 2 windows of stride 2 (the output's sides even), into `out` (`[c × oh /
/// 2 × ow / 2 × 32]`): the bits of the two kernels one after the other, without the full-resolution block. A
/// non-finite input or sum makes every output NaN, as either kernel would.
#[inline(always)]
pub(crate) fn conv2d_block_pooled<const FUSED: bool>(
    plan: &ConvPlan,
    (x, x_per_sample): (&[f32], bool),
    (weights, bias): (&[f32], &[f32]),
    out: &mut [f32],
) {
    let x = &x[..plan.padded_len() * if x_per_sample { 32 } else { 1 }];
    let weights = &weights[..plan.weights * 32];
    assert!(plan.reach <= plan.padded_len(), "a convolution plan reads outside its input");
    let out = &mut out[..plan.output_len() / 4 * 32];
    let bad = any_non_finite(x)
        || if x_per_sample {
            conv_tiles_pooled::<32, true, FUSED>(plan, x, (weights, bias), out, None)
        } else {
            let spans = LitSpans::new(plan, x);
            conv_tiles_pooled::<32, false, FUSED>(plan, x, (weights, bias), out, spans.as_ref())
        };
    if bad {
        out.fill(f32::NAN);
    }
}

/// `x[at..at + len]` without a bounds check.
///
/// # Safety
/// `at + len <= x.len()`.
#[inline(always)]
unsafe fn window(x: &[f32], at: usize, len: usize) -> &[f32] {
    debug_assert!(at + len <= x.len());
    // SAFETY: the caller's promise.
    unsafe { x.get_unchecked(at..at + len) }
}

/// [`conv2d_block`] as a plain loop, for any block size: one output after another, its taps in order, each
/// tap added to the output's `s` sums. The reference of the tiled kernels.
#[inline(always)]
fn conv_any<const FUSED: bool>(
    plan: &ConvPlan,
    (x, x_per_sample): (&[f32], bool),
    s: usize,
    (weights, bias, per): (&[f32], &[f32], usize),
    out: &mut [f32],
) {
    let [channels, oh, ow] = plan.output;
    let x_per = if x_per_sample { s } else { 1 };
    let mut outputs = out.chunks_exact_mut(s);
    for o in 0..channels {
        let b = &bias[o * per..(o + 1) * per];
        for y in 0..oh {
            for xx in 0..ow {
                let Some(dst) = outputs.next() else { return };
                for (t, d) in dst.iter_mut().enumerate() {
                    *d = b[if per == 1 { 0 } else { t }];
                }
                for &[k, offset] in plan.taps(o) {
                    let at = (plan.origin(y, xx) + offset) * x_per;
                    let (w, v) = (&weights[k * per..(k + 1) * per], &x[at..at + x_per]);
                    for (t, d) in dst.iter_mut().enumerate() {
                        let (w, v) = (w[if per == 1 { 0 } else { t }], v[if x_per == 1 { 0 } else { t }]);
                        *d = madd::<FUSED>(*d, w, v);
                    }
                }
            }
        }
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

    /// Every path of the kernel (tiles of 32 samples, single-sample tiles, strided, the plain loop) for
    /// geometries with padding, stride, dilation and groups, rows narrower and wider than a tile, a kernel per
    /// sample or one for all, an image per sample or one for all, pruned taps or none, fused or not, with room to
    /// regroup the samples and without: the bits of the plain loop, and within 1e-4 of the definition in f64.
    #[test]
    fn the_block_convolution_is_the_definition_for_every_sample() {
        let geometries = [
            ConvGeometry::new(2, 3, [3, 3]),
            ConvGeometry::new(2, 4, [3, 2]).stride([2, 1]).padding([1, 1]),
            ConvGeometry::new(3, 3, [3, 3]).padding([2, 2]).dilation([2, 2]).groups(3),
            ConvGeometry::new(4, 2, [1, 1]).groups(2),
            ConvGeometry::new(2, 3, [2, 3]).stride([1, 2]).padding([0, 1]),
            ConvGeometry::new(1, 2, [5, 5]).padding([2, 2]),
        ];
        // Miri (about 1000x slower): one size and two geometries (stride and padding; groups, dilation and
        // padding), every block size, kind and rounding still, so that the unchecked reads of every tile run.
        let (sizes, geometries) = if cfg!(miri) {
            ([(7, 6)].as_slice(), &geometries[1..3])
        } else {
            ([(7, 6), (9, 13), (4, 5)].as_slice(), geometries.as_slice())
        };
        let cases = sizes.iter().flat_map(|hw| geometries.iter().map(move |g| (*g, *hw)));
        let cases = cases.flat_map(|c| [(c, 3), (c, 32), (c, 1)]).flat_map(|c| [(c, true), (c, false)]);
        // Miri: the unpruned kernels (which regroup) at 32 samples only.
        let mut regrouped = 0;
        for (((g, (h, w)), s), prune) in cases.filter(|&((_, s), prune)| prune || s == 32 || !cfg!(miri)) {
            let input = [g.in_channels, h, w];
            let [oh, ow] = g.output_size([h, w]).unwrap();
            let n_in = g.in_channels * h * w;
            let nw = g.weight_count().unwrap();
            // Every fifth kernel weight pruned (or none): zero in every sample, its tap left out.
            let pruned = |k: usize| prune && k % 5 == 2;
            let plan = ConvPlan::new(&g, input, [g.out_channels, oh, ow], |k| !pruned(k));
            // Sample t's image and kernel.
            let x = |t: usize| (0..n_in).map(|k| ((k * 7 + t * 3) as f32 * 0.37).sin()).collect::<Vec<f32>>();
            let k = |t: usize| {
                (0..nw).map(|k| if pruned(k) { 0.0 } else { ((k * 5 + t) as f32 * 0.23).cos() }).collect::<Vec<f32>>()
            };
            let b = |t: usize| (0..g.out_channels).map(|o| o as f32 * 0.1 - t as f32).collect::<Vec<f32>>();
            let interleave = |f: &dyn Fn(usize) -> Vec<f32>| {
                let cols: Vec<Vec<f32>> = (0..s).map(f).collect();
                (0..cols[0].len()).flat_map(|r| cols.iter().map(move |c| c[r])).collect::<Vec<f32>>()
            };
            let padded = |x: &[f32], s: usize| {
                let mut out = vec![f32::NAN; plan.padded_len() * s];
                plan.pad(x, s, &mut out);
                out
            };
            let (xs, x0) = (padded(&interleave(&x), s), padded(&x(0), 1));
            let (ks, bs) = (interleave(&k), interleave(&b));
            let n_out = g.out_channels * oh * ow;
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            // (input, an image per sample), (kernels, biases, values per weight): a kernel per sample, one kernel
            // for all, one image for all.
            let (k0, b0) = (k(0), b(0));
            let kinds = [((&xs, true), (&ks, &bs, s)), ((&xs, true), (&k0, &b0, 1)), ((&x0, false), (&ks, &bs, s))];
            for (kind, ((xin, x_per), (kw, kb, per))) in kinds.into_iter().enumerate() {
                // The definition in f64 for each sample, computed once for the kind's runs; under Miri for
                // three samples (every sample's bits are checked against the plain loop).
                let mut checked: Vec<usize> = if cfg!(miri) { vec![0, s / 2, s - 1] } else { (0..s).collect() };
                checked.dedup();
                let want: Vec<(usize, Vec<f32>)> = checked
                    .into_iter()
                    .map(|t| {
                        let (xt, kt) = if kind == 2 { (x(0), t) } else { (x(t), if kind == 1 { 0 } else { t }) };
                        (t, naive(&g, input, &xt, &k(kt), &b(kt)))
                    })
                    .collect();
                let regroups = kind != 1 && s == 32 && plan.regroups();
                // Miri: pruned kernels without the room (which they do not use), unpruned ones only where they
                // regroup (the other kernels' reads are those of the pruned cases).
                let miri_skips = |regroup: bool| cfg!(miri) && if prune { regroup } else { !(regroup && regroups) };
                let runs = [(false, false), (true, false), (false, true), (true, true)].into_iter();
                for (fused, regroup) in runs.filter(|&(_, regroup)| !miri_skips(regroup)) {
                    let (mut got, mut reference) = (vec![f32::NAN; n_out * s], vec![f32::NAN; n_out * s]);
                    let mut room = vec![f32::NAN; if regroup { plan.regroup_len(s) } else { 0 }];
                    let room = Some(&mut room[..]).filter(|_| regroup);
                    if fused {
                        conv2d_block::<true>(&plan, (xin, x_per), s, (kw, kb, per), &mut got, room);
                        conv_any::<true>(&plan, (xin, x_per), s, (kw, kb, per), &mut reference);
                    } else {
                        conv2d_block::<false>(&plan, (xin, x_per), s, (kw, kb, per), &mut got, room);
                        conv_any::<false>(&plan, (xin, x_per), s, (kw, kb, per), &mut reference);
                    }
                    regrouped += usize::from(regroup && regroups);
                    let case = format!("{g:?} {h}x{w}, s = {s}, kind {kind}, fused {fused}, regroup {regroup}");
                    assert_eq!(bits(&got), bits(&reference), "{case}, pruned {prune}");
                    for (t, want) in &want {
                        for (j, want) in want.iter().enumerate() {
                            let v = got[j * s + t];
                            assert!((v - want).abs() < 1e-4, "{g:?} {h}x{w} kind {kind} sample {t} output {j}: {v}");
                        }
                    }
                }
            }
        }
        assert!(regrouped >= 4, "the regrouped kernel ran in {regrouped} cases");
    }

    #[test]
    fn a_non_finite_input_makes_every_output_nan() {
        let g = ConvGeometry::new(1, 2, [3, 3]);
        // Only the corner tap is live, so the dense sum would never read the infinite value at the centre.
        let plan = ConvPlan::new(&g, [1, 3, 3], [2, 1, 1], |k| k % 9 == 0);
        let mut x = vec![1.0; 9];
        x[4] = f32::INFINITY;
        let mut out = [0.0; 2];
        conv2d_block::<false>(&plan, (&x, true), 1, (&[1.0; 18], &[0.0; 2], 1), &mut out, None);
        assert!(out.iter().all(|v| v.is_nan()), "{out:?}");
    }

    /// The convolution with the max pooling fused gives the bits of the two kernels one after the other (32
    /// samples, a kernel per sample; padding, stride, pruned taps, fused or not; one image for all, lit all over
    /// or a blank page with a lit blob, whose background windows the fused kernel does not compute, or an image
    /// per sample), and a non-finite input, kernel weight or sum makes every output NaN.
    #[test]
    fn the_fused_pooling_has_the_bits_of_the_convolution_then_the_pooling() {
        use crate::layers::{PoolGeometry, PoolKind};
        const S: usize = 32;
        let cases = [
            (ConvGeometry::new(1, 3, [5, 5]).padding([2, 2]), [1, 16, 14]),
            (ConvGeometry::new(2, 4, [3, 3]).padding([1, 1]), [2, 12, 16]),
            (ConvGeometry::new(2, 2, [3, 2]).stride([2, 1]), [2, 17, 13]),
            (ConvGeometry::new(1, 2, [3, 3]).padding([1, 1]), [1, 12, 12]),
        ];
        let pool = PoolGeometry::new([2, 2]);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        // The inputs: one image lit all over, one blank page with a blob, an image per sample.
        let (lit_all_over, blank_page, per_sample) = (0, 1, 2);
        // Miri (about 1000x slower): the smallest case, pruned, fused.
        let (cases, prunes, inputs, roundings) = if cfg!(miri) {
            (&cases[3..], &[true][..], &[blank_page, per_sample][..], &[true][..])
        } else {
            (&cases[..], &[false, true][..], &[lit_all_over, blank_page, per_sample][..], &[false, true][..])
        };
        let variants = cases
            .iter()
            .flat_map(|c| prunes.iter().flat_map(move |&prune| inputs.iter().map(move |&kind| (c, prune, kind))));
        for ((g, input), prune, kind) in variants {
            let [oh, ow] = g.output_size([input[1], input[2]]).unwrap();
            assert!(oh % 2 == 0 && ow % 2 == 0, "{g:?}: the case needs an even output");
            let pruned = |k: usize| prune && k % 3 == 1;
            let plan = ConvPlan::new(g, *input, [g.out_channels, oh, ow], |k| !pruned(k));
            // A blank page is -0.3, lit in rows and columns 5..9 of each channel; an image per sample is sample
            // `t`'s own (`[c × h × w × 32]`).
            let [h, w] = [input[1], input[2]];
            let lit = |k: usize| kind != blank_page || ((5..9).contains(&(k / w % h)) && (5..9).contains(&(k % w)));
            let per = if kind == per_sample { S } else { 1 };
            let image: Vec<f32> = (0..input.iter().product::<usize>() * per)
                .map(|i| if lit(i / per) { ((i * 7) as f32 * 0.31).sin() } else { -0.3 })
                .collect();
            let mut x = vec![0.0; plan.padded_len() * per];
            plan.pad(&image, per, &mut x);
            let x_per_sample = kind == per_sample;
            let nw = g.weight_count().unwrap();
            let weights: Vec<f32> =
                (0..nw * S).map(|i| if pruned(i / S) { 0.0 } else { ((i * 5) as f32 * 0.17).cos() }).collect();
            let bias: Vec<f32> = (0..g.out_channels * S).map(|i| (i as f32 * 0.05).sin() * 0.1).collect();
            let run = |x: &[f32], weights: &[f32], fused: bool| {
                let (mut full, mut want) =
                    (vec![f32::NAN; plan.output_len() * S], vec![f32::NAN; plan.output_len() / 4 * S]);
                let mut got = want.clone();
                if fused {
                    conv2d_block::<true>(&plan, (x, x_per_sample), S, (weights, &bias, S), &mut full, None);
                    conv2d_block_pooled::<true>(&plan, (x, x_per_sample), (weights, &bias), &mut got);
                } else {
                    conv2d_block::<false>(&plan, (x, x_per_sample), S, (weights, &bias, S), &mut full, None);
                    conv2d_block_pooled::<false>(&plan, (x, x_per_sample), (weights, &bias), &mut got);
                }
                let kind = (PoolKind::Max, &pool);
                crate::kernels::pool2d_block(kind, [g.out_channels, oh, ow], [oh / 2, ow / 2], &full, S, &mut want);
                (got, want)
            };
            for &fused in roundings {
                let (got, want) = run(&x, &weights, fused);
                assert!(want.iter().all(|v| v.is_finite()), "{g:?}");
                assert_eq!(bits(&got), bits(&want), "{g:?}, pruned {prune}, input {kind}, fused {fused}");
                // An infinite live kernel weight of one sample (an infinite sum), and a NaN input.
                let mut bad_weights = weights.clone();
                let live = (0..nw).find(|k| !pruned(*k)).unwrap();
                bad_weights[live * S + 7] = f32::INFINITY;
                let mut bad_x = x.clone();
                bad_x[plan.padded_len() / 2] = f32::NAN;
                for (x, w) in [(&x, &bad_weights), (&bad_x, &weights)] {
                    let (got, want) = run(x, w, fused);
                    assert!(got.iter().all(|v| v.is_nan()) && want.iter().all(|v| v.is_nan()), "{g:?}");
                }
            }
        }
    }
}
