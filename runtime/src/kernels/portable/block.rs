//! The block products of local reparameterization in plain Rust: `y = W · h` for a block of `s` samples, dense
//! (skipping the all-zero rows of `h`) or CSR, unfused or with fused multiply-adds (`FUSED`). Every other build
//! of these products must give the bits of one of the two.

/// The indices of the rows of the row-major `[rows × s]` block `h` that hold a non-zero value, in increasing
/// order, written to the front of `out` (at least `rows` long). ReLU leaves many hidden units at exactly zero
/// for every sample of a block; the block product skips them.
#[inline(always)]
pub(crate) fn live_rows<'o>(h: &[f32], s: usize, out: &'o mut [u32]) -> &'o [u32] {
    let mut n = 0;
    for (c, row) in h.chunks_exact(s).enumerate() {
        // Any bit but the sign set: not ±0. No early exit, so the test vectorises and never branches.
        let live = row.iter().fold(0, |any, v| any | (v.to_bits() & 0x7fff_ffff)) != 0;
        out[n] = c as u32;
        n += usize::from(live);
    }
    &out[..n]
}

/// `a + w * h`, with one rounding when `FUSED` (only on CPUs with FMA: see [`block_product_dense`]).
#[inline(always)]
pub(crate) fn madd<const FUSED: bool>(a: f32, w: f32, h: f32) -> f32 {
    if FUSED {
        crate::math::fmaf(w, h, a)
    } else {
        a + w * h
    }
}

/// `$kernel::<N, FUSED>(args)` with `N` the block size `$s` when it is one of
/// [`BLOCK_SIZES`](crate::kernels::BLOCK_SIZES) above 1 (each
/// a kernel whose sums stay in registers), else `$other`.
macro_rules! by_block_size {
    ($s:expr, $kernel:ident::<$fused:ident>($($arg:expr),*), $other:block) => {
        match $s {
            32 => $kernel::<32, $fused>($($arg),*),
            16 => $kernel::<16, $fused>($($arg),*),
            8 => $kernel::<8, $fused>($($arg),*),
            4 => $kernel::<4, $fused>($($arg),*),
            2 => $kernel::<2, $fused>($($arg),*),
            _ => $other,
        }
    };
}

/// `y = W · h` for a dense row-major `[rows × cols]` matrix `w` and a block `h` of `s > 1` samples
/// (`[cols × s]`, row-major; `y` is `[rows × s]`), summing over the columns in `live` only, in their order.
/// Two rows of `W` share each row of `h` loaded, and for the sizes in [`BLOCK_SIZES`](crate::kernels::BLOCK_SIZES) the
/// sums stay in
/// registers. `y[j, t]` is the plain sequential sum over `live` of `W[j, c] * h[c, t]`, each product added
/// with a fused multiply-add when `FUSED` (one rounding instead of two: the bits differ from the unfused
/// sum, the accuracy does not get worse).
#[inline(always)]
pub(crate) fn block_product_dense<const FUSED: bool>(
    w: &[f32],
    cols: usize,
    h: &[f32],
    s: usize,
    live: &[u32],
    y: &mut [f32],
) {
    by_block_size!(s, dense_fixed::<FUSED>(w, cols, h, live, y), {
        for (row, y_row) in w.chunks_exact(cols).zip(y.chunks_exact_mut(s)) {
            y_row.fill(0.0);
            for c in live.iter().map(|c| *c as usize) {
                for (a, v) in y_row.iter_mut().zip(&h[c * s..(c + 1) * s]) {
                    *a = madd::<FUSED>(*a, row[c], *v);
                }
            }
        }
    })
}

/// Bytes of `h` one pass over the rows of [`block_product_dense`] reads: a slice of the live columns this
/// large stays in the L1 cache while every row pair uses it.
pub(crate) const H_SLICE_BYTES: usize = 16 * 1024;

#[inline(always)]
fn dense_fixed<const N: usize, const FUSED: bool>(w: &[f32], cols: usize, h: &[f32], live: &[u32], y: &mut [f32]) {
    let h = h.as_chunks::<N>().0;
    let y = y.as_chunks_mut::<N>().0;
    y.fill([0.0; N]);
    // Slice by slice of the live columns; a partial sum goes through memory between slices unchanged, so
    // each sum still adds its products in column order.
    for live in live.chunks(H_SLICE_BYTES / (4 * N)) {
        let mut y_pairs = y.chunks_exact_mut(2);
        let mut w_pairs = w.chunks_exact(2 * cols);
        for (pair, y_pair) in (&mut w_pairs).zip(&mut y_pairs) {
            let (w0, w1) = pair.split_at(cols);
            let (mut a0, mut a1) = (y_pair[0], y_pair[1]);
            for c in live.iter().map(|c| *c as usize) {
                let (u0, u1, hc) = (w0[c], w1[c], &h[c]);
                for t in 0..N {
                    a0[t] = madd::<FUSED>(a0[t], u0, hc[t]);
                    a1[t] = madd::<FUSED>(a1[t], u1, hc[t]);
                }
            }
            y_pair[0] = a0;
            y_pair[1] = a1;
        }
        if let (Some(row), Some(y_last)) = (w_pairs.remainder().get(..cols), y_pairs.into_remainder().first_mut()) {
            let mut a = *y_last;
            for c in live.iter().map(|c| *c as usize) {
                let (u, hc) = (row[c], &h[c]);
                for t in 0..N {
                    a[t] = madd::<FUSED>(a[t], u, hc[t]);
                }
            }
            *y_last = a;
        }
    }
}

/// `y = W · h` for a CSR matrix (`row_ptr`, `col_idx`, `values`) and a block `h` of `s > 1` samples
/// (`[_ × s]`, row-major; `y` is `[rows × s]`). `y[j, t]` is the sequential sum over row `j`'s entries, in
/// their order, of `W[j, c] * h[c, t]` (fused when `FUSED`, as in [`block_product_dense`]). Rows go in
/// pairs, their entries interleaved, so two independent sets of sums hide the adder's latency.
#[inline(always)]
pub(crate) fn block_product_csr<const FUSED: bool>(
    row_ptr: &[u32],
    col_idx: &[u32],
    values: &[f32],
    h: &[f32],
    s: usize,
    y: &mut [f32],
) {
    by_block_size!(s, csr_fixed::<FUSED>(row_ptr, col_idx, values, h, y), {
        for (r, y_row) in row_ptr.windows(2).zip(y.chunks_exact_mut(s)) {
            let r = r[0] as usize..r[1] as usize;
            y_row.fill(0.0);
            for (v, c) in values[r.clone()].iter().zip(col_idx[r].iter().map(|c| *c as usize)) {
                for (a, x) in y_row.iter_mut().zip(&h[c * s..(c + 1) * s]) {
                    *a = madd::<FUSED>(*a, *v, *x);
                }
            }
        }
    })
}

#[inline(always)]
fn csr_fixed<const N: usize, const FUSED: bool>(
    row_ptr: &[u32],
    col_idx: &[u32],
    values: &[f32],
    h: &[f32],
    y: &mut [f32],
) {
    let h = h.as_chunks::<N>().0;
    let row = |j: usize| {
        let r = row_ptr[j] as usize..row_ptr[j + 1] as usize;
        (&values[r.clone()], &col_idx[r])
    };
    let rows = row_ptr.len().saturating_sub(1);
    let y = &mut y.as_chunks_mut::<N>().0[..rows];
    let mut j = 0;
    while j + 1 < rows {
        let ((v0, c0), (v1, c1)) = (row(j), row(j + 1));
        let n = v0.len().min(v1.len());
        let (mut a0, mut a1) = ([0.0f32; N], [0.0f32; N]);
        for (((u0, k0), u1), k1) in v0[..n].iter().zip(&c0[..n]).zip(&v1[..n]).zip(&c1[..n]) {
            let (h0, h1) = (&h[*k0 as usize], &h[*k1 as usize]);
            for t in 0..N {
                a0[t] = madd::<FUSED>(a0[t], *u0, h0[t]);
                a1[t] = madd::<FUSED>(a1[t], *u1, h1[t]);
            }
        }
        y[j] = add_row::<N, FUSED>(a0, &v0[n..], &c0[n..], h);
        y[j + 1] = add_row::<N, FUSED>(a1, &v1[n..], &c1[n..], h);
        j += 2;
    }
    if j < rows {
        let (v, c) = row(j);
        y[j] = add_row::<N, FUSED>([0.0; N], v, c, h);
    }
}

/// `a` plus the products of one sparse row's entries with the rows of `h`, in order. (A function, not a
/// closure: closures do not inherit the caller's target features, so one would lose FMA.)
#[inline(always)]
fn add_row<const N: usize, const FUSED: bool>(mut a: [f32; N], vs: &[f32], cs: &[u32], h: &[[f32; N]]) -> [f32; N] {
    for (v, c) in vs.iter().zip(cs) {
        let hc = &h[*c as usize];
        for t in 0..N {
            a[t] = madd::<FUSED>(a[t], *v, hc[t]);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_products_are_weighted_sums_of_rows_for_any_block_size() {
        // W = [[2, -1, 0.5], [0, 3, 1], [1, 1, 1]], h rows: t, 1 - t, and zeros (not live).
        let w = [2.0, -1.0, 0.5, 0.0, 3.0, 1.0, 1.0, 1.0, 1.0];
        for s in [2usize, 3, 4, 8, 16, crate::kernels::SAMPLE_BLOCK] {
            let h: Vec<f32> =
                (0..s).map(|t| t as f32).chain((0..s).map(|t| 1.0 - t as f32)).chain(vec![0.0; s]).collect();
            let mut live = [0u32; 3];
            let live = live_rows(&h, s, &mut live);
            assert_eq!(live, &[0, 1]);
            let mut y = vec![f32::NAN; 3 * s];
            block_product_dense::<false>(&w, 3, &h, s, live, &mut y);
            let expected: Vec<f32> = [(2.0, -1.0), (0.0, 3.0), (1.0, 1.0)]
                .iter()
                .flat_map(|(a, b)| (0..s).map(move |t| a * t as f32 + b * (1.0 - t as f32)))
                .collect();
            assert_eq!(y, expected, "s = {s}");
            // The same W in CSR (row 1's zero left out).
            let mut y_csr = vec![f32::NAN; 3 * s];
            let (row_ptr, col_idx, values) =
                ([0, 3, 5, 8], [0, 1, 2, 1, 2, 0, 1, 2], [2.0, -1.0, 0.5, 3.0, 1.0, 1.0, 1.0, 1.0]);
            block_product_csr::<false>(&row_ptr, &col_idx, &values, &h, s, &mut y_csr);
            assert_eq!(y_csr, expected, "s = {s}");
        }
    }

    #[test]
    fn skipping_all_zero_rows_of_a_block_changes_no_bit() {
        let (rows, cols, s) = (5, 24, 8);
        let w: Vec<f32> = (0..rows * cols).map(|k| (k as f32 * 0.37).sin()).collect();
        let h: Vec<f32> = (0..cols * s).map(|k| if (k / s) % 3 == 0 { 0.0 } else { (k as f32 * 0.11).cos() }).collect();
        let all: Vec<u32> = (0..cols as u32).collect();
        let mut live = vec![0u32; cols];
        let live = live_rows(&h, s, &mut live);
        assert_eq!(live.len(), 16);
        let (mut y_all, mut y_live) = (vec![0.0; rows * s], vec![0.0; rows * s]);
        block_product_dense::<false>(&w, cols, &h, s, &all, &mut y_all);
        block_product_dense::<false>(&w, cols, &h, s, live, &mut y_live);
        assert_eq!(
            y_all.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            y_live.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}
