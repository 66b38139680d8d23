//! The block kernel of a convolution: tiles of a channel's positions, each position's sums for every sample of the
//! block kept in registers (a kernel per sample or one for all, an image per sample or one for all).

use super::background::{computed, LitSpans};
use super::{window, ConvPlan};
use crate::kernels::portable::block::madd;

/// Positions of a block tile: four outputs of a channel, each with its `N` sums, stay in registers.
const BLOCK_TILE: usize = 4;

/// The starts of tiles of `p` consecutive positions covering `0..n`: every multiple of `p` that fits, then
/// `n - p` for the rest (a tile overlapping the one before it; its outputs there come out with the same bits).
/// `None` if `n < p`.
pub(super) fn tile_starts(n: usize, p: usize) -> Option<impl Iterator<Item = usize>> {
    (n >= p).then(|| (0..n / p).map(move |k| k * p).chain((!n.is_multiple_of(p)).then_some(n - p)))
}

/// [`conv2d_block`](super::conv2d_block) for a block of `N` samples: each output channel's positions in tiles
/// of [`BLOCK_TILE`], taken in order across its rows (a tile may end one row and start the next, so a row's width
/// leaves no partial tile but the channel's last), the rest one position at a time. `W_PER`: a kernel per sample;
/// `X_PER`: an image per sample. With `spans`, only the positions [`computed`](super::background::computed)
/// names.
#[inline(always)]
pub(super) fn conv_tiles<const N: usize, const W_PER: bool, const X_PER: bool, const FUSED: bool>(
    plan: &ConvPlan,
    x: &[f32],
    (weights, bias): (&[f32], &[f32]),
    out: &mut [f32],
    spans: Option<&LitSpans>,
) {
    let [channels, oh, ow] = plan.output;
    let per = if W_PER { N } else { 1 };
    let out = out.as_chunks_mut::<N>().0;
    for o in 0..channels {
        let (taps, b) = (plan.taps(o), &bias[o * per..(o + 1) * per]);
        let outputs = &mut out[o * oh * ow..(o + 1) * oh * ow];
        // Loops, not closures: a closure is compiled for the baseline, not for the caller's instruction set.
        // The positions waiting for a tile: their windows' origins and their outputs.
        let (mut origins, mut at, mut waiting) = ([0; BLOCK_TILE], [0; BLOCK_TILE], 0);
        for y in 0..oh {
            let [a, b_end] = computed(spans, y, ow, 1);
            for xx in a..b_end {
                (origins[waiting], at[waiting]) = (plan.origin(y, xx), y * ow + xx);
                waiting += 1;
                if waiting == BLOCK_TILE {
                    block_tile::<N, BLOCK_TILE, W_PER, X_PER, FUSED>(taps, (weights, b), x, (origins, at, outputs));
                    waiting = 0;
                }
            }
        }
        for k in 0..waiting {
            block_tile::<N, 1, W_PER, X_PER, FUSED>(taps, (weights, b), x, ([origins[k]], [at[k]], outputs));
        }
    }
}

/// `P` (1 or [`BLOCK_TILE`]) outputs of one channel, `out[at[p]]`, whose windows start at `origins[p]` of the
/// padded input, each with its `N` sums. The sums are named locals, one per position: an array of them indexed
/// in a loop is kept on the stack, one float at a time.
#[inline(always)]
fn block_tile<const N: usize, const P: usize, const W_PER: bool, const X_PER: bool, const FUSED: bool>(
    taps: &[[usize; 2]],
    (weights, bias): (&[f32], &[f32]),
    x: &[f32],
    (origins, at, out): ([usize; P], [usize; P], &mut [[f32; N]]),
) {
    const { assert!(P == 1 || P == BLOCK_TILE) };
    let (per, x_per) = (if W_PER { N } else { 1 }, if X_PER { N } else { 1 });
    let start: [f32; N] = core::array::from_fn(|t| bias[if W_PER { t } else { 0 }]);
    let (mut a0, mut a1, mut a2, mut a3) = (start, start, start, start);
    // Each position's window, read from its own start: one offset per tap for all of them.
    let windows = origins.map(|origin| &x[origin * x_per..]);
    for &[k, offset] in taps {
        // SAFETY: `k` is below the plan's weight count, and `weights` holds `per` values of each
        // (`conv2d_block`).
        let w = unsafe { window(weights, k * per, per) };
        let w: [f32; N] = core::array::from_fn(|t| w[if W_PER { t } else { 0 }]);
        // SAFETY: the tile's positions are outputs, whose taps read below the plan's reach, which is at most the
        // padded sample that `x` holds `x_per` values of (`conv2d_block`): `(origin + offset + 1) * x_per` is at
        // most `x.len()`.
        let xs = |p: usize| unsafe { window(windows[p], offset * x_per, x_per) };
        madd_row::<N, X_PER, FUSED>(&mut a0, &w, xs(0));
        if P == BLOCK_TILE {
            madd_row::<N, X_PER, FUSED>(&mut a1, &w, xs(1));
            madd_row::<N, X_PER, FUSED>(&mut a2, &w, xs(2));
            madd_row::<N, X_PER, FUSED>(&mut a3, &w, xs(3));
        }
    }
    out[at[0]] = a0;
    if P == BLOCK_TILE {
        (out[at[1]], out[at[2]], out[at[3]]) = (a1, a2, a3);
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
