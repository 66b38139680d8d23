//! The block kernel of a convolution: tiles of a row's positions, each position's sums for every sample of the
//! block kept in registers (a kernel per sample or one for all, an image per sample or one for all).

use super::background::{computed, LitSpans};
use super::{window, ConvPlan};
use crate::kernels::portable::block::madd;

/// Positions of a block tile: four outputs of a row, each with its `N` sums, stay in registers.
const BLOCK_TILE: usize = 4;

/// The starts of tiles of `p` consecutive positions covering `0..n`: every multiple of `p` that fits, then
/// `n - p` for the rest (a tile overlapping the one before it; its outputs there come out with the same bits).
/// `None` if `n < p`.
pub(super) fn tile_starts(n: usize, p: usize) -> Option<impl Iterator<Item = usize>> {
    (n >= p).then(|| (0..n / p).map(move |k| k * p).chain((!n.is_multiple_of(p)).then_some(n - p)))
}

/// [`conv2d_block`](super::conv2d_block) for a block of `N` samples, tiles of [`BLOCK_TILE`] positions of a row (one position at a
/// time where a row is narrower). `W_PER`: a kernel per sample; `X_PER`: an image per sample. With `spans`, only
/// the positions [`computed`](super::background::computed) names.
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
        for y in 0..oh {
            let row = &mut out[(o * oh + y) * ow..(o * oh + y + 1) * ow];
            // Loops, not closures: a closure is compiled for the baseline, not for the caller's instruction set.
            let step = plan.stride[1];
            let [a, b_end] = computed(spans, y, ow, BLOCK_TILE);
            // Tiles of the row's positions; the last `rest` of them in one more tile overlapping the one before
            // where three are left (fewer loads than three single positions), else one at a time.
            let (n, rest) = (b_end - a, (b_end - a) % BLOCK_TILE);
            let overlap = n > BLOCK_TILE && rest == 3;
            let tiles = (0..n / BLOCK_TILE).map(|k| k * BLOCK_TILE).chain(overlap.then_some(n - BLOCK_TILE));
            for x0 in tiles.map(|x0| a + x0) {
                let tile = (plan.origin(y, x0), step, &mut row[x0..]);
                block_tile::<N, BLOCK_TILE, W_PER, X_PER, FUSED>(taps, (weights, b), x, tile);
            }
            for x0 in b_end - if overlap { 0 } else { rest }..b_end {
                let tile = (plan.origin(y, x0), step, &mut row[x0..]);
                block_tile::<N, 1, W_PER, X_PER, FUSED>(taps, (weights, b), x, tile);
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
