//! The block kernel of a dense convolution over 32 samples regrouped in groups of eight: each group's kernels
//! and images copied together, then tiles of output channels × positions of a row whose sums stay in registers.
//! Built where an instruction set regroups (x86_64), and in tests.

use super::background::{computed, LitSpans};
use super::{window, ConvPlan};
use crate::kernels::portable::block::madd;

/// Samples of a group in [`conv_grouped`]: one 256-bit vector.
const SAMPLE_GROUP: usize = 8;

/// Output channels and positions of a row in a tile of [`conv_grouped`]: each weight load serves five positions
/// and each input load two channels (0.7 loads per multiply-add), and the thirteen vectors of a tile (ten sums,
/// two weights, an input) fit AVX2's sixteen registers. Chosen over 3 × 3 (0.67 loads per multiply-add, but on
/// LeNet-5's second convolution, 16 channels of 10-wide rows, a quarter of its tiles' work lies in overlaps) and
/// 4 × 2 by timing (`benches/README.md`, session 23).
pub(super) const GROUP_TILE: [usize; 2] = [2, 5];

/// The starts of tiles of `p` consecutive positions covering `0..n`: every multiple of `p` that fits, then
/// `n - p` for the rest (a tile overlapping the one before it; its outputs there come out with the same bits).
/// `None` if `n < p`.
fn tile_starts(n: usize, p: usize) -> Option<impl Iterator<Item = usize>> {
    (n >= p).then(|| (0..n / p).map(move |k| k * p).chain((!n.is_multiple_of(p)).then_some(n - p)))
}

/// [`conv2d_block`](super::conv2d_block) for a block of `N` samples, kernels per sample, and a dense plan, in groups of
/// [`SAMPLE_GROUP`] samples: the block's kernels and its padded input (if `X_PER`, an image per sample; else one
/// image for all, read as it is) are first copied into `room`, each group's values together (`[values × 8]` per
/// group), and each group then runs in tiles of [`GROUP_TILE`] output channels × positions of a row whose sums
/// stay in registers (the sample-minor tiles of [`conv_tiles`](super::tiles) spill on AVX2). The tiles at the ends of the
/// channels and of a row overlap the ones before them, with the same bits. With `spans` (one image for all), only
/// the positions [`computed`](super::background::computed) names.
#[inline(always)]
pub(super) fn conv_grouped<const N: usize, const X_PER: bool, const FUSED: bool>(
    plan: &ConvPlan,
    x: &[f32],
    (weights, bias): (&[f32], &[f32]),
    out: &mut [f32],
    room: &mut [f32],
    spans: Option<&LitSpans>,
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
                let [a, b_end] = computed(spans, y, ow, P);
                for x0 in tile_starts(b_end - a, P).into_iter().flatten().map(|x0| a + x0) {
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
#[inline(always)]
fn madd_group<const FUSED: bool>(acc: &mut [f32; SAMPLE_GROUP], w: &[f32; SAMPLE_GROUP], v: &[f32; SAMPLE_GROUP]) {
    for ((a, w), v) in acc.iter_mut().zip(w).zip(v) {
        *a = madd::<FUSED>(*a, *w, *v);
    }
}
