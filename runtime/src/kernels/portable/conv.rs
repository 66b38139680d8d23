//! Convolution and pooling over a block of samples: images stored NCHW, one row of `s` samples per value
//! (`[channels × height × width × s]`, the layout of every block of the predictor).
//!
//! A convolution runs from a [`ConvPlan`]: its input is first zero-padded into a buffer of its own, so that every
//! tap of every output reads inside the image and no kernel tests a bound, and each output channel keeps a list of
//! its live taps (the kernel weights not pruned), each with the offset it reads from the output's window. Every
//! output is its bias plus its channel's taps in order (input channel, kernel row, kernel column), each `w * x`
//! added with one rounding when `FUSED` and two otherwise; a padded position adds `w * 0`. The block kernels keep
//! a tile of outputs × samples in registers (or, given room, first copy a block's samples into groups of eight
//! and keep a tile of channels × positions of one group: [`conv_grouped`]), the single-sample kernel runs of
//! consecutive positions; every path gives the bits of [`conv_any`], the plain loop.

use super::block::madd;
use crate::layers::{ConvGeometry, PoolGeometry, PoolKind};
use crate::prelude::*;

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
    /// Kernel weights (live or not).
    weights: usize,
    /// One past the furthest value of a padded sample that a tap of an output reads.
    reach: usize,
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
        let (mut first_tap, mut taps) = (vec![0], Vec::new());
        for o in 0..output[0] {
            let first_channel = (o / opg.max(1)) * cpg;
            for i in 0..cpg {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let k = ((o * cpg + i) * kh + ky) * kw + kx;
                        if live(k) {
                            let row = (first_channel + i) * padded[0] + ky * g.dilation[0];
                            taps.push([k, row * padded[1] + kx * g.dilation[1]]);
                        }
                    }
                }
            }
            first_tap.push(taps.len());
        }
        let mut plan =
            Self { input, padding: g.padding, padded, stride: g.stride, output, first_tap, taps, ..Self::default() };
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

    /// Whether [`conv2d_block`] regroups a block of 32 samples, each with its image and kernels, when given
    /// room: every kernel weight live, one group, and at least a tile of output channels and of a row (never
    /// where the regrouping kernel is not built).
    fn regroups(&self) -> bool {
        #[cfg(any(test, target_arch = "x86_64"))]
        return self.dense && self.output[0] >= GROUP_TILE[0] && self.output[2] >= GROUP_TILE[1];
        #[cfg(not(any(test, target_arch = "x86_64")))]
        false
    }

    fn taps(&self, o: usize) -> &[[usize; 2]] {
        &self.taps[self.first_tap[o]..self.first_tap[o + 1]]
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
    match (s, per == 1, x_per_sample, room) {
        // Built where an instruction set regroups (`Isa::regroups_conv_samples`), and in tests.
        #[cfg(any(test, target_arch = "x86_64"))]
        (32, false, true, Some(room)) if plan.regroups() => {
            conv_grouped::<32, true, FUSED>(plan, x, (weights, bias), out, room)
        }
        #[cfg(any(test, target_arch = "x86_64"))]
        (32, false, false, Some(room)) if plan.regroups() => {
            conv_grouped::<32, false, FUSED>(plan, x, (weights, bias), out, room)
        }
        (32, false, true, _) => conv_tiles::<32, true, true, FUSED>(plan, x, weights, bias, out),
        (32, false, false, _) => conv_tiles::<32, true, false, FUSED>(plan, x, weights, bias, out),
        (32, true, true, _) => conv_tiles::<32, false, true, FUSED>(plan, x, weights, bias, out),
        // Other block sizes (adaptive sampling's groups of eight, the rest of a sample count) and strided
        // convolutions of one sample take the plain loop: more tiled kernels grew the phones' library past its budget
        // (benches/README, session 16).
        (1, _, _, _) if plan.stride == [1, 1] => conv_single::<FUSED>(plan, x, weights, bias, out),
        _ => conv_any::<FUSED>(plan, (x, x_per_sample), s, (weights, bias, per), out),
    }
}

/// Positions of a block tile: four outputs of a row, each with its `N` sums, stay in registers.
const BLOCK_TILE: usize = 4;

/// The starts of tiles of `p` consecutive positions covering `0..n`: every multiple of `p` that fits, then
/// `n - p` for the rest (a tile overlapping the one before it; its outputs there come out with the same bits).
/// `None` if `n < p`.
fn tile_starts(n: usize, p: usize) -> Option<impl Iterator<Item = usize>> {
    (n >= p).then(|| (0..n / p).map(move |k| k * p).chain((!n.is_multiple_of(p)).then_some(n - p)))
}

/// [`conv2d_block`] for a block of `N` samples, tiles of [`BLOCK_TILE`] positions of a row (one position at a
/// time where a row is narrower). `W_PER`: a kernel per sample; `X_PER`: an image per sample.
#[inline(always)]
fn conv_tiles<const N: usize, const W_PER: bool, const X_PER: bool, const FUSED: bool>(
    plan: &ConvPlan,
    x: &[f32],
    weights: &[f32],
    bias: &[f32],
    out: &mut [f32],
) {
    let [channels, oh, ow] = plan.output;
    let per = if W_PER { N } else { 1 };
    let out = out.as_chunks_mut::<N>().0;
    for o in 0..channels {
        let (taps, b) = (plan.taps(o), &bias[o * per..(o + 1) * per]);
        for y in 0..oh {
            let row = &mut out[(o * oh + y) * ow..(o * oh + y + 1) * ow];
            // Loops, not closures: a closure is compiled for the baseline, not for the caller's instruction set.
            let step = plan.stride[1];
            match tile_starts(ow, BLOCK_TILE) {
                Some(starts) => {
                    for x0 in starts {
                        let tile = (plan.origin(y, x0), step, &mut row[x0..]);
                        block_tile::<N, BLOCK_TILE, W_PER, X_PER, FUSED>(taps, (weights, b), x, tile);
                    }
                }
                None => {
                    for x0 in 0..ow {
                        let tile = (plan.origin(y, x0), step, &mut row[x0..]);
                        block_tile::<N, 1, W_PER, X_PER, FUSED>(taps, (weights, b), x, tile);
                    }
                }
            }
        }
    }
}

/// `P` (1 or [`BLOCK_TILE`]) outputs of one channel at positions `origin + p * step` (`p < P`) of the padded
/// input, each with its `N` sums, into `out[..P]`. The sums are named locals, one per position: an array of
/// them indexed in a loop is kept on the stack, one float at a time.
#[inline(always)]
fn block_tile<const N: usize, const P: usize, const W_PER: bool, const X_PER: bool, const FUSED: bool>(
    taps: &[[usize; 2]],
    (weights, bias): (&[f32], &[f32]),
    x: &[f32],
    (origin, step, out): (usize, usize, &mut [[f32; N]]),
) {
    const { assert!(P == 1 || P == BLOCK_TILE) };
    let (per, x_per) = (if W_PER { N } else { 1 }, if X_PER { N } else { 1 });
    let start: [f32; N] = core::array::from_fn(|t| bias[if W_PER { t } else { 0 }]);
    let (mut a0, mut a1, mut a2, mut a3) = (start, start, start, start);
    for &[k, offset] in taps {
        // SAFETY: `k` is below the plan's weight count, and `weights` holds `per` values of each
        // (`conv2d_block`).
        let w = unsafe { window(weights, k * per, per) };
        let w: [f32; N] = core::array::from_fn(|t| w[if W_PER { t } else { 0 }]);
        let at = origin + offset;
        // SAFETY: the tile's positions are outputs, whose taps read below the plan's reach, which is at most the
        // padded sample that `x` holds `x_per` values of (`conv2d_block`).
        let xs = |p: usize| unsafe { window(x, (at + p * step) * x_per, x_per) };
        madd_row::<N, X_PER, FUSED>(&mut a0, &w, xs(0));
        if P == BLOCK_TILE {
            madd_row::<N, X_PER, FUSED>(&mut a1, &w, xs(1));
            madd_row::<N, X_PER, FUSED>(&mut a2, &w, xs(2));
            madd_row::<N, X_PER, FUSED>(&mut a3, &w, xs(3));
        }
    }
    out[0] = a0;
    if P == BLOCK_TILE {
        out[1..4].copy_from_slice(&[a1, a2, a3]);
    }
}

/// `acc[t] += w[t] * v[t]` for the `N` samples of one output (`v` a single value shared by all when `X_PER` is
/// false).
#[inline(always)]
fn madd_row<const N: usize, const X_PER: bool, const FUSED: bool>(acc: &mut [f32; N], w: &[f32; N], v: &[f32]) {
    for ((a, w), t) in acc.iter_mut().zip(w).zip(0..N) {
        *a = madd::<FUSED>(*a, *w, v[if X_PER { t } else { 0 }]);
    }
}

/// Samples of a group in [`conv_grouped`]: one 256-bit vector.
#[cfg(any(test, target_arch = "x86_64"))]
const SAMPLE_GROUP: usize = 8;

/// Output channels and positions of a row in a tile of [`conv_grouped`]: each weight load serves five positions
/// and each input load two channels (0.7 loads per multiply-add), and the thirteen vectors of a tile (ten sums,
/// two weights, an input) fit AVX2's sixteen registers. Chosen over 3 × 3 (0.67 loads per multiply-add, but on
/// LeNet-5's second convolution, 16 channels of 10-wide rows, a quarter of its tiles' work lies in overlaps) and
/// 4 × 2 by timing (`benches/README.md`, session 23).
#[cfg(any(test, target_arch = "x86_64"))]
const GROUP_TILE: [usize; 2] = [2, 5];

/// [`conv2d_block`] for a block of `N` samples, kernels per sample, and a dense plan, in groups of
/// [`SAMPLE_GROUP`] samples: the block's kernels and its padded input (if `X_PER`, an image per sample; else one
/// image for all, read as it is) are first copied into `room`, each group's values together (`[values × 8]` per
/// group), and each group then runs in tiles of [`GROUP_TILE`] output channels × positions of a row whose sums
/// stay in registers (the sample-minor tiles of [`conv_tiles`] spill on AVX2). The tiles at the ends of the
/// channels and of a row overlap the ones before them, with the same bits.
#[cfg(any(test, target_arch = "x86_64"))]
#[inline(always)]
fn conv_grouped<const N: usize, const X_PER: bool, const FUSED: bool>(
    plan: &ConvPlan,
    x: &[f32],
    (weights, bias): (&[f32], &[f32]),
    out: &mut [f32],
    room: &mut [f32],
) {
    const G: usize = SAMPLE_GROUP;
    const { assert!(N.is_multiple_of(G)) };
    const C: usize = GROUP_TILE[0];
    const P: usize = GROUP_TILE[1];
    let (values, kernel) = (plan.padded_len(), plan.weights);
    let (xs, ws) = room[..(values + kernel) * N].split_at_mut(if X_PER { values * N } else { 0 });
    let ws = &mut ws[..kernel * N];
    regroup::<N>(weights, ws);
    if X_PER {
        regroup::<N>(x, xs);
    }
    let [channels, oh, ow] = plan.output;
    let (taps, bias, out) = (plan.taps(0), &bias[..channels * N], out.as_chunks_mut::<N>().0);
    for (g, ws) in ws.chunks_exact(kernel * G).enumerate() {
        let xs = if X_PER { &xs[g * values * G..(g + 1) * values * G] } else { &x[..values] };
        let lanes = g * G..(g + 1) * G;
        for o0 in tile_starts(channels, C).into_iter().flatten() {
            let b: [[f32; G]; C] = core::array::from_fn(|c| core::array::from_fn(|l| bias[(o0 + c) * N + g * G + l]));
            for y in 0..oh {
                for x0 in tile_starts(ow, P).into_iter().flatten() {
                    let at = (o0, b, plan.origin(y, x0), plan.stride[1]);
                    let sums = group_tile::<C, P, X_PER, FUSED>(taps, ws, xs, at);
                    for (c, sums) in sums.iter().enumerate() {
                        let row = &mut out[((o0 + c) * oh + y) * ow + x0..][..P];
                        for (dst, sum) in row.iter_mut().zip(sums) {
                            dst[lanes.clone()].copy_from_slice(sum);
                        }
                    }
                }
            }
        }
    }
}

/// Copies a block `x` (`[values × N]`) into `out` group by group: group `g`'s `[values × 8]` from `g * values *
/// 8`.
#[cfg(any(test, target_arch = "x86_64"))]
#[inline(always)]
fn regroup<const N: usize>(x: &[f32], out: &mut [f32]) {
    let values = x.len() / N;
    for (i, row) in x.chunks_exact(N).enumerate() {
        for (g, lanes) in row.chunks_exact(SAMPLE_GROUP).enumerate() {
            out[(g * values + i) * SAMPLE_GROUP..][..SAMPLE_GROUP].copy_from_slice(lanes);
        }
    }
}

/// The sums of one group of samples (`weights` its regrouped kernels, `x` its regrouped input if `X_PER`, else
/// the one image of every sample) for output channels `o0..o0 + C` (starting from their biases `bias`) at
/// positions `origin + p * step` (`p < P`) of the padded input, `taps` being channel 0's. The loops over the
/// tile have constant bounds: the compiler unrolls them and keeps the `C × P` sums in registers.
#[cfg(any(test, target_arch = "x86_64"))]
#[inline(always)]
fn group_tile<const C: usize, const P: usize, const X_PER: bool, const FUSED: bool>(
    taps: &[[usize; 2]],
    weights: &[f32],
    x: &[f32],
    (o0, bias, origin, step): (usize, [[f32; SAMPLE_GROUP]; C], usize, usize),
) -> [[[f32; SAMPLE_GROUP]; P]; C] {
    const G: usize = SAMPLE_GROUP;
    let w = |c: usize, j: usize| -> [f32; G] {
        // SAFETY: `weights` holds a group's values of every kernel weight, and channel `o0 + c`'s tap `j` (`o0 +
        // c` an output channel) is weight `(o0 + c) * taps + j`, below the plan's weight count (`conv_grouped`).
        let w = unsafe { window(weights, ((o0 + c) * taps.len() + j) * G, G) };
        core::array::from_fn(|l| w[l])
    };
    let xs = |at: usize| -> [f32; G] {
        let x_per = if X_PER { G } else { 1 };
        // SAFETY: the positions are outputs, whose taps read below the plan's reach, at most the padded sample
        // that `x` holds a group's values of (or, one image for all, the values of) (`conv_grouped`).
        let v = unsafe { window(x, at * x_per, x_per) };
        core::array::from_fn(|l| v[if X_PER { l } else { 0 }])
    };
    let mut sums: [[[f32; G]; P]; C] = core::array::from_fn(|c| [bias[c]; P]);
    for (j, &[_, offset]) in taps.iter().enumerate() {
        let ws: [[f32; G]; C] = core::array::from_fn(|c| w(c, j));
        for p in 0..P {
            let v = xs(origin + offset + p * step);
            for (sums, w) in sums.iter_mut().zip(&ws) {
                madd_group::<FUSED>(&mut sums[p], w, &v);
            }
        }
    }
    sums
}

/// `acc[l] += w[l] * v[l]` for one group of samples.
#[cfg(any(test, target_arch = "x86_64"))]
#[inline(always)]
fn madd_group<const FUSED: bool>(acc: &mut [f32; SAMPLE_GROUP], w: &[f32; SAMPLE_GROUP], v: &[f32; SAMPLE_GROUP]) {
    for ((a, w), v) in acc.iter_mut().zip(w).zip(v) {
        *a = madd::<FUSED>(*a, *w, *v);
    }
}

/// [`conv2d_block`] for one sample and stride 1, a channel at a time in *wide rows*: output `(y, x)` is wide
/// position `y * w' + x` (`w'` the padded width), whose window starts at that same offset of the padded input, so
/// consecutive wide positions read consecutive values even across rows. Tiles of [`SINGLE_CHAINS`] ×
/// [`SINGLE_LANES`] wide positions (independent chains of sums, so that no tap waits for the one before), the
/// rest in single chains (the last overlapping the one before it, with the same bits); the positions past a row's
/// end (`x >= width`) are computed and dropped. Channels with fewer wide positions than a chain take the plain
/// loop.
#[inline(always)]
fn conv_single<const FUSED: bool>(plan: &ConvPlan, x: &[f32], weights: &[f32], bias: &[f32], out: &mut [f32]) {
    let [channels, oh, ow] = plan.output;
    let wide = (oh.max(1) - 1) * plan.padded[1] + ow;
    if wide < SINGLE_LANES {
        return conv_any::<FUSED>(plan, (x, true), 1, (weights, bias, 1), out);
    }
    const TILE: usize = SINGLE_CHAINS * SINGLE_LANES;
    let (mut sums, full) = ([0.0; TILE], wide / TILE * TILE);
    for o in 0..channels {
        let (taps, b, out) = (plan.taps(o), bias[o], &mut out[o * oh * ow..(o + 1) * oh * ow]);
        for j0 in (0..full).step_by(TILE) {
            single_tile::<SINGLE_LANES, SINGLE_CHAINS, FUSED>(taps, (weights, b), x, (j0, &mut sums));
            narrow(plan, j0, &sums, out);
        }
        for j0 in (full..wide).step_by(SINGLE_LANES).map(|j| j.min(wide - SINGLE_LANES)) {
            single_tile::<SINGLE_LANES, 1, FUSED>(taps, (weights, b), x, (j0, &mut sums[..SINGLE_LANES]));
            narrow(plan, j0, &sums[..SINGLE_LANES], out);
        }
    }
}

/// Sums of a single-sample chain: 16 positions, one vector on AVX-512, two on AVX2, four on NEON.
const SINGLE_LANES: usize = 16;

/// Independent chains of a single-sample tile.
const SINGLE_CHAINS: usize = 4;

/// Copies the sums of wide positions `j0..j0 + sums.len()` (see [`conv_single`]) that are outputs to their
/// places in `out` (one channel, `[height × width]`).
#[inline(always)]
fn narrow(plan: &ConvPlan, j0: usize, sums: &[f32], out: &mut [f32]) {
    let (wp, ow, end) = (plan.padded[1], plan.output[2], j0 + sums.len());
    let mut j = j0;
    while j < end {
        let (y, x) = (j / wp, j % wp);
        if x < ow {
            let stop = (y * wp + ow).min(end);
            out[y * ow + x..y * ow + x + stop - j].copy_from_slice(&sums[j - j0..stop - j0]);
        }
        j = (y + 1) * wp;
    }
}

/// `R` (1 or [`SINGLE_CHAINS`]) chains of `P` consecutive wide positions of one sample and channel from `j0` (see
/// [`conv_single`]) into `out[..R * P]`. Each chain's sums are a named local.
#[inline(always)]
fn single_tile<const P: usize, const R: usize, const FUSED: bool>(
    taps: &[[usize; 2]],
    (weights, bias): (&[f32], f32),
    x: &[f32],
    (j0, out): (usize, &mut [f32]),
) {
    const { assert!(R == 1 || R == SINGLE_CHAINS) };
    let (mut a0, mut a1, mut a2, mut a3) = ([bias; P], [bias; P], [bias; P], [bias; P]);
    for &[k, offset] in taps {
        // SAFETY: `k` is below the plan's weight count, which `weights` holds (`conv2d_block`).
        let w = unsafe { *weights.get_unchecked(k) };
        let at = j0 + offset;
        // SAFETY: wide position `j` reads `j + offset` for its taps' offsets; the last wide position, the last
        // output, reads below the plan's reach (every position of the tile is at most that one), which is at
        // most the padded sample that `x` holds (`conv2d_block`).
        let xs = |r: usize| unsafe { window(x, at + r * P, P) };
        madd_positions::<P, FUSED>(&mut a0, w, xs(0));
        if R == SINGLE_CHAINS {
            madd_positions::<P, FUSED>(&mut a1, w, xs(1));
            madd_positions::<P, FUSED>(&mut a2, w, xs(2));
            madd_positions::<P, FUSED>(&mut a3, w, xs(3));
        }
    }
    for (r, a) in [a0, a1, a2, a3].iter().take(R).enumerate() {
        out[r * P..(r + 1) * P].copy_from_slice(a);
    }
}

/// `acc[p] += w * v[p]` for `P` consecutive positions.
#[inline(always)]
fn madd_positions<const P: usize, const FUSED: bool>(acc: &mut [f32; P], w: f32, v: &[f32]) {
    for (a, v) in acc.iter_mut().zip(&v[..P]) {
        *a = madd::<FUSED>(*a, w, *v);
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

/// The offsets `k < kernel` of a window starting at `start` (in padded coordinates) whose input `start + k -
/// padding` lies in `0..n`.
#[inline(always)]
fn inside(start: usize, padding: usize, kernel: usize, n: usize) -> core::ops::Range<usize> {
    let first = padding.saturating_sub(start).min(kernel);
    first..(n + padding).saturating_sub(start).clamp(first, kernel)
}

/// Whether any value of `x` is infinite or NaN (exponent bits all set), without an early exit so that the test
/// vectorises.
#[inline(always)]
fn any_non_finite(x: &[f32]) -> bool {
    const EXPONENT: u32 = 0x7f80_0000;
    x.iter().fold(0u32, |acc, v| acc | ((v.to_bits() & EXPONENT == EXPONENT) as u32)) != 0
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
    if s == 1 {
        match kind {
            PoolKind::Max => pool_single(g, [c, h, w], [oh, ow], input, out, (init, |m, v| if v > m { v } else { m })),
            PoolKind::Avg => {
                pool_single(g, [c, h, w], [oh, ow], input, out, (init, |m, v| m + v));
                out.iter_mut().for_each(|d| *d /= count);
            }
        }
    } else {
        for ch in 0..c {
            for y in 0..oh {
                let rows = inside(y * step[0], g.padding[0], kh, h);
                for x in 0..ow {
                    let columns = inside(x * step[1], g.padding[1], kw, w);
                    let dst = &mut out[((ch * oh + y) * ow + x) * s..][..s];
                    dst.fill(init);
                    for ky in rows.clone() {
                        for kx in columns.clone() {
                            let at = (ch * h + y * step[0] + ky - g.padding[0]) * w + x * step[1] + kx - g.padding[1];
                            let src = &input[at * s..][..s];
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
    if any_non_finite(input) {
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
