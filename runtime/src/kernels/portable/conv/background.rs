//! A shared image's background. Where every sample of a block convolves the same image (a first Bayesian
//! convolution, each sample with its own kernels), an output whose window reads only the image's background —
//! each input channel's top-left value inside the image, zeros in the padding — depends on nothing but which of
//! its window's rows and columns fall inside the image: a digit on a blank page, a sketch, a segmented object.
//! [`LitSpans`] finds, for each output row, the span of positions whose windows read something else; the tiled
//! kernels compute only those, and [`fill_background`] writes the rest from one sum per kind of window, with the
//! same operations in the same order as the plain loop, so the same bits.

use super::ConvPlan;
use crate::kernels::portable::block::madd;
use crate::kernels::portable::pool::inside;
use core::ops::Range;

/// Output rows a [`LitSpans`] describes at most (2 KiB on the stack); a taller output runs every position.
const MAX_ROWS: usize = 256;

/// For each output row, the positions `lo..hi` whose windows read a value other than the background (the
/// rest of the row reads only background); an empty span where the whole row does.
pub(crate) struct LitSpans {
    spans: [[u32; 2]; MAX_ROWS],
}

impl LitSpans {
    /// The lit spans of `plan`'s output rows on the one padded image `x`, or `None` where the output has more
    /// than [`MAX_ROWS`] rows or a row too wide for a span.
    pub(super) fn new(plan: &ConvPlan, x: &[f32]) -> Option<Self> {
        let ([c, h, w], [ph, pw], [hp, wp]) = (plan.input, plan.padding, plan.padded);
        let ([oh, ow], [sy, sx], [ey, ex]) = ([plan.output[1], plan.output[2]], plan.stride, plan.extent);
        if oh > MAX_ROWS || u32::try_from(ow).is_err() {
            return None;
        }
        let mut spans = [[0; 2]; MAX_ROWS];
        for (y, span) in spans.iter_mut().enumerate().take(oh) {
            // The padded rows of the window inside the image, and the padded columns that differ there.
            let rows = inside(y * sy, ph, ey + 1, h);
            let rows = y * sy + rows.start..y * sy + rows.end;
            let (mut lo, mut hi) = (usize::MAX, 0);
            for channel in 0..c {
                let background = x[(channel * hp + ph) * wp + pw].to_bits();
                for r in rows.clone() {
                    let row = &x[(channel * hp + r) * wp + pw..][..w];
                    if let Some(first) = row.iter().position(|v| v.to_bits() != background) {
                        let last = row.iter().rposition(|v| v.to_bits() != background).unwrap_or(first);
                        (lo, hi) = (lo.min(pw + first), hi.max(pw + last));
                    }
                }
            }
            if lo <= hi {
                // Position `x` reads padded columns `x * sx ..= x * sx + ex`.
                let first = lo.saturating_sub(ex).div_ceil(sx);
                let end = (hi / sx + 1).min(ow);
                *span = [first.min(end) as u32, end as u32];
            }
        }
        Some(Self { spans })
    }

    /// The columns `lo..hi` of output rows `rows` whose windows read something other than the image's background
    /// (the union of the rows' lit spans; `lo >= hi` where none does), or `None` where a row's windows reach into
    /// the padding above or below the image.
    #[inline(always)]
    pub(super) fn lit_columns(&self, plan: &ConvPlan, rows: Range<usize>) -> Option<[usize; 2]> {
        let interior = plan.interior(0);
        rows.map(|y| interior.contains(&y).then(|| self.span(y))).try_fold([plan.output[2], 0], |[lo, hi], span| {
            let [a, b] = span?;
            Some(if a < b { [lo.min(a), hi.max(b)] } else { [lo, hi] })
        })
    }

    /// Row `y`'s lit span.
    #[inline(always)]
    fn span(&self, y: usize) -> [usize; 2] {
        self.spans[y].map(|v| v as usize)
    }
}

/// The positions `a..b` of row `y` (of `ow`) that a kernel with tiles of `p` positions computes: every position
/// without `spans`, else the lit span, widened to one tile where it is shorter and the row is not.
#[inline(always)]
pub(super) fn computed(spans: Option<&LitSpans>, y: usize, ow: usize, p: usize) -> [usize; 2] {
    let Some(spans) = spans else { return [0, ow] };
    let [lo, hi] = spans.span(y);
    if lo < hi && hi - lo < p && ow >= p {
        let a = lo.min(ow - p);
        [a, a + p]
    } else {
        [lo, hi]
    }
}

/// Writes every output outside the lit spans of the block convolution of the one padded image `x` with a
/// kernel per sample (`weights`, `bias`: `N` values each) into `out` (`[outputs × N]`): each is the plain loop's
/// sum of its background window, copied from the output above (a run of them at a time) or to the left where
/// that one's window is of the same kind (the same rows and columns inside the image) and reads only background
/// too.
#[inline(always)]
pub(super) fn fill_background<const N: usize, const FUSED: bool>(
    plan: &ConvPlan,
    x: &[f32],
    spans: &LitSpans,
    (weights, bias): (&[f32], &[f32]),
    out: &mut [f32],
) {
    let ([_, h, w], [ph, pw]) = (plan.input, plan.padding);
    let ([channels, oh, ow], [sy, sx], [ey, ex]) = (plan.output, plan.stride, plan.extent);
    let out = out.as_chunks_mut::<N>().0;
    // A window's kind: its rows (or columns) inside the image, from its first.
    let x_kind = |xx: usize| inside(xx * sx, pw, ex + 1, w);
    let mut above: Option<([usize; 2], Range<usize>)> = None;
    for y in 0..oh {
        let ([lo, hi], y_kind) = (spans.span(y), inside(y * sy, ph, ey + 1, h));
        let above_span = above.filter(|(_, kind)| *kind == y_kind).map(|(span, _)| span);
        for segment in [0..lo, hi..ow] {
            let mut xx = segment.start;
            while xx < segment.end {
                let run_end = match above_span {
                    // The output above reads only background, and so do those after it up to `end`.
                    Some([alo, ahi]) if xx < alo || xx >= ahi => segment.end.min(if xx < alo { alo } else { ow }),
                    _ => xx,
                };
                if run_end > xx {
                    for o in 0..channels {
                        let row = (o * oh + y) * ow;
                        out.copy_within(row - ow + xx..row - ow + run_end, row + xx);
                    }
                    xx = run_end;
                    continue;
                }
                let kind = x_kind(xx);
                let left = xx > segment.start && x_kind(xx - 1) == kind;
                for o in 0..channels {
                    let at = (o * oh + y) * ow + xx;
                    out[at] = if left {
                        out[at - 1]
                    } else {
                        background_sums::<N, FUSED>(plan, x, o, [&y_kind, &kind], (weights, bias))
                    };
                }
                xx += 1;
            }
        }
        above = Some(([lo, hi], y_kind));
    }
}

/// The `N` sums of output channel `o` at a window wholly inside the image that reads only its background
/// ([`LitSpans::lit_columns`]).
#[inline(always)]
pub(super) fn interior_background_sums<const N: usize, const FUSED: bool>(
    plan: &ConvPlan,
    x: &[f32],
    o: usize,
    (weights, bias): (&[f32], &[f32]),
) -> [f32; N] {
    let [ey, ex] = plan.extent;
    background_sums::<N, FUSED>(plan, x, o, [&(0..ey + 1), &(0..ex + 1)], (weights, bias))
}

/// The `N` sums of output channel `o` at a window of `kind` (the rows and the columns of it inside the image,
/// from its first) were it the image's background: each channel's top-left value inside the image, zeros in the
/// padding; the plain loop's operations in its order.
#[inline(always)]
fn background_sums<const N: usize, const FUSED: bool>(
    plan: &ConvPlan,
    x: &[f32],
    o: usize,
    [rows, columns]: [&Range<usize>; 2],
    (weights, bias): (&[f32], &[f32]),
) -> [f32; N] {
    let ([ph, pw], [hp, wp]) = (plan.padding, plan.padded);
    let (weights, bias) = (weights.as_chunks::<N>().0, bias.as_chunks::<N>().0);
    let mut sums = bias[o];
    for (&[k, _], &[channel, dy, dx]) in plan.taps(o).iter().zip(plan.tap_windows(o)) {
        let is_inside = rows.contains(&dy) && columns.contains(&dx);
        let v = if is_inside { x[(channel * hp + ph) * wp + pw] } else { 0.0 };
        for (d, wt) in sums.iter_mut().zip(&weights[k]) {
            *d = madd::<FUSED>(*d, *wt, v);
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::super::{conv2d_block, conv_any};
    use super::*;
    use crate::layers::ConvGeometry;

    /// Images of a constant background (a different one per channel) with a lit blob, and images lit to the
    /// border: the block convolution of the one image with a kernel per sample, which skips the background
    /// windows and fills them afterwards, has the plain loop's bits — tiled and regrouped, fused or not, pruned
    /// taps or not, with padding, stride, dilation and groups; and it skipped positions in the blank cases.
    #[test]
    fn background_windows_get_the_bits_of_the_plain_loop() {
        let geometries = [
            ConvGeometry::new(1, 6, [5, 5]).padding([2, 2]),
            ConvGeometry::new(2, 4, [3, 2]).stride([2, 1]).padding([1, 1]),
            ConvGeometry::new(2, 2, [3, 3]).padding([2, 2]).dilation([2, 2]).groups(2),
            ConvGeometry::new(2, 3, [3, 3]),
        ];
        let images = [(14, 13, Some([4, 9, 5, 8])), (9, 11, Some([0, 9, 10, 11])), (8, 12, None)];
        // Miri (about 1000x slower): one geometry and image, fused, every kernel's reads still.
        let (geometries, images, rounding) = if cfg!(miri) {
            (&geometries[1..2], &images[1..2], &[true][..])
        } else {
            (&geometries[..], &images[..], &[false, true][..])
        };
        let s = 32;
        let mut skipped = 0;
        for g in geometries {
            for &(h, w, blob) in images {
                let input = [g.in_channels, h, w];
                let [oh, ow] = g.output_size([h, w]).unwrap();
                for prune in [false, true] {
                    let plan = ConvPlan::new(g, input, [g.out_channels, oh, ow], |k| !(prune && k % 5 == 2));
                    // Channel `c`'s background is -0.42 * (c + 1); the blob's rows and columns are lit.
                    let image: Vec<f32> = (0..g.in_channels * h * w)
                        .map(|i| {
                            let (c, y, xx) = (i / (h * w), i / w % h, i % w);
                            match blob {
                                Some([y0, y1, x0, x1]) if (y0..y1).contains(&y) && (x0..x1).contains(&xx) => {
                                    ((i * 7) as f32 * 0.31).sin()
                                }
                                Some(_) => -0.42 * (c + 1) as f32,
                                None => ((i * 3) as f32 * 0.17).cos(),
                            }
                        })
                        .collect();
                    let mut x = vec![f32::NAN; plan.padded_len()];
                    plan.pad(&image, 1, &mut x);
                    let spans = LitSpans::new(&plan, &x).unwrap();
                    skipped += (0..oh).map(|y| ow - (spans.span(y)[1] - spans.span(y)[0])).sum::<usize>();
                    let n = plan.weights;
                    let pruned = |k: usize| prune && k % 5 == 2;
                    let weights: Vec<f32> =
                        (0..n * s).map(|i| if pruned(i / s) { 0.0 } else { ((i * 5) as f32 * 0.23).cos() }).collect();
                    let bias: Vec<f32> = (0..g.out_channels * s).map(|i| i as f32 * 0.01 - 0.1).collect();
                    for &fused in rounding {
                        // Miri: the tiled kernel on pruned taps, the regrouping one on all of them.
                        for regroup in [false, true].into_iter().filter(|&r| !cfg!(miri) || r != prune) {
                            let n_out = plan.output_len() * s;
                            let (mut got, mut want) = (vec![f32::NAN; n_out], vec![f32::NAN; n_out]);
                            let mut room = vec![f32::NAN; plan.regroup_len(s)];
                            let room = Some(&mut room[..]).filter(|_| regroup);
                            let kernels = (&weights[..], &bias[..], s);
                            if fused {
                                conv2d_block::<true>(&plan, (&x, false), s, kernels, &mut got, room);
                                conv_any::<true>(&plan, (&x, false), s, kernels, &mut want);
                            } else {
                                conv2d_block::<false>(&plan, (&x, false), s, kernels, &mut got, room);
                                conv_any::<false>(&plan, (&x, false), s, kernels, &mut want);
                            }
                            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                            let case = format!("{g:?} {h}x{w} blob {blob:?} pruned {prune} fused {fused}");
                            assert_eq!(bits(&got), bits(&want), "{case} regroup {regroup}");
                        }
                    }
                }
            }
        }
        assert!(skipped > 0, "no background window was skipped");
    }
}
