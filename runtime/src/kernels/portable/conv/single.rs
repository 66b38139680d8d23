//! The kernel of a convolution of one sample with stride 1: a channel at a time in wide rows, independent
//! chains of consecutive positions.

use super::{conv_any, window, ConvPlan};
use crate::kernels::portable::block::madd;

/// [`conv2d_block`](super::conv2d_block) for one sample and stride 1, a channel at a time in *wide rows*: output `(y, x)` is wide
/// position `y * w' + x` (`w'` the padded width), whose window starts at that same offset of the padded input, so
/// consecutive wide positions read consecutive values even across rows. Tiles of [`SINGLE_CHAINS`] ×
/// [`SINGLE_LANES`] wide positions (independent chains of sums, so that no tap waits for the one before), the
/// rest in single chains (the last overlapping the one before it, with the same bits); the positions past a row's
/// end (`x >= width`) are computed and dropped. Channels with fewer wide positions than a chain take the plain
/// loop.
#[inline(always)]
pub(super) fn conv_single<const FUSED: bool>(
    plan: &ConvPlan,
    x: &[f32],
    weights: &[f32],
    bias: &[f32],
    out: &mut [f32],
) {
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
