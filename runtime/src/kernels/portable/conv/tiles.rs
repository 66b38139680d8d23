//! The block kernel of a convolution: tiles of a channel's positions, each position's sums for every sample of the
//! block kept in registers (a kernel per sample or one for all, an image per sample or one for all).

use super::background::{computed, interior_background_sums, LitSpans};
use super::{window, ConvPlan};
use crate::kernels::portable::block::madd;
use crate::kernels::portable::pool::max_of_four;

/// Positions of a block tile: four outputs of a channel, each with its `N` sums, stay in registers.
const BLOCK_TILE: usize = 4;

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
/// padded input, each with its `N` sums ([`tile_sums`]).
#[inline(always)]
fn block_tile<const N: usize, const P: usize, const W_PER: bool, const X_PER: bool, const FUSED: bool>(
    taps: &[[usize; 2]],
    (weights, bias): (&[f32], &[f32]),
    x: &[f32],
    (origins, at, out): ([usize; P], [usize; P], &mut [[f32; N]]),
) {
    let sums = tile_sums::<N, P, W_PER, X_PER, FUSED>(taps, (weights, bias), x, origins);
    out[at[0]] = sums[0];
    if P == BLOCK_TILE {
        (out[at[1]], out[at[2]], out[at[3]]) = (sums[1], sums[2], sums[3]);
    }
}

/// The `N` sums of each of `P` (1 or [`BLOCK_TILE`]) outputs of one channel whose windows start at `origins[p]`
/// of the padded input, in the first `P` rows of the result (the others hold the bias). The sums are named
/// locals, one per position: an array of them indexed in a loop is kept on the stack, one float at a time.
#[inline(always)]
fn tile_sums<const N: usize, const P: usize, const W_PER: bool, const X_PER: bool, const FUSED: bool>(
    taps: &[[usize; 2]],
    (weights, bias): (&[f32], &[f32]),
    x: &[f32],
    origins: [usize; P],
) -> [[f32; N]; BLOCK_TILE] {
    const { assert!(P == 1 || P == BLOCK_TILE) };
    let (per, x_per) = (if W_PER { N } else { 1 }, if X_PER { N } else { 1 });
    // One chunk, not an element-wise `array::from_fn`: LLVM called that out of line once per tile.
    let start: [f32; N] = if W_PER { bias.as_chunks::<N>().0[0] } else { [bias[0]; N] };
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
    [a0, a1, a2, a3]
}

/// `acc[t] += w[t] * v[t]` for the `N` samples of one output (`v` a single value shared by all when `X_PER` is
/// false).
#[inline(always)]
fn madd_row<const N: usize, const X_PER: bool, const FUSED: bool>(acc: &mut [f32; N], w: &[f32; N], v: &[f32]) {
    for ((a, w), t) in acc.iter_mut().zip(w).zip(0..N) {
        *a = madd::<FUSED>(*a, *w, v[if X_PER { t } else { 0 }]);
    }
}

/// [`conv_tiles`] for `N` samples, each with its kernels (`X_PER`: an image per sample; else one image for all),
/// followed by max pooling in 2 x 2 windows of stride 2 (the output's sides even): each pooling window's four
/// positions are one tile, and only their maximum (folded from -inf in the order (y, x), (y, x + 1), (y + 1, x),
/// (y + 1, x + 1), as the pooling kernel folds it) is written, into `out` (`[c × oh / 2 × ow / 2 × N]`). With
/// `spans` (one image for all), a pooling window whose four positions read only the image's background, each
/// window wholly inside the image, takes the channel's one [`interior_background_sums`] instead (the maximum of
/// four equal sums). Returns whether a sum was not finite (the pooling kernel then makes every output NaN).
#[inline(always)]
pub(super) fn conv_tiles_pooled<const N: usize, const X_PER: bool, const FUSED: bool>(
    plan: &ConvPlan,
    x: &[f32],
    (weights, bias): (&[f32], &[f32]),
    out: &mut [f32],
    spans: Option<&LitSpans>,
) -> bool {
    let [channels, oh, ow] = plan.output;
    let (ph, pw) = (oh / 2, ow / 2);
    let out = out.as_chunks_mut::<N>().0;
    let interior = plan.interior(1);
    let mut bad = 0u32;
    for o in 0..channels {
        let (taps, b) = (plan.taps(o), &bias[o * N..(o + 1) * N]);
        let background =
            spans.filter(|_| !X_PER).map(|_| interior_background_sums::<N, FUSED>(plan, x, o, (weights, bias)));
        let mut background_used = false;
        for py in 0..ph {
            let (y, lit) = (2 * py, spans.and_then(|spans| spans.lit_columns(plan, 2 * py..2 * py + 2)));
            for px in 0..pw {
                let xx = 2 * px;
                let dst = &mut out[(o * ph + py) * pw + px];
                match (&background, lit) {
                    // Four positions of the same background sums: their maximum is those sums.
                    (Some(sums), Some([lo, hi]))
                        if (xx + 1 < lo || xx >= hi) && interior.contains(&xx) && interior.contains(&(xx + 1)) =>
                    {
                        *dst = *sums;
                        background_used = true;
                    }
                    _ => {
                        let origins =
                            [(y, xx), (y, xx + 1), (y + 1, xx), (y + 1, xx + 1)].map(|(y, xx)| plan.origin(y, xx));
                        let [a0, a1, a2, a3] =
                            tile_sums::<N, BLOCK_TILE, true, X_PER, FUSED>(taps, (weights, b), x, origins);
                        bad |= max_of_four(dst, [&a0, &a1, &a2, &a3]);
                    }
                }
            }
        }
        if background_used && background.is_some_and(|sums| sums.iter().any(|v| !v.is_finite())) {
            bad = 1;
        }
    }
    bad != 0
}
