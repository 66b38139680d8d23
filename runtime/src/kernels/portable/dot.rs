//! The single-sample products every path of the runtime shares: the dot product, the matrix–vector product
//! built on it and the sparse row dot product. Never fused, so `Mean`, weight sampling and the first layer's
//! moments give the same bits on every CPU, dense or sparse.
//!
//! Weights are row-major `[out_features, in_features]`, so each output is one contiguous dot product. The dot
//! product keeps eight independent partial sums (lane `l` sums products `l, l + 8, ...`); [`gemv`] computes four
//! rows at once with explicit 8-lane vectors (`wide`, which maps them to SSE, AVX or NEON) but keeps each row's
//! lanes, so it gives every row the bits of [`dot`].

use wide::f32x8;

/// Partial sums per dot product.
pub(super) const LANES: usize = 8;

/// Folds the eight partial sums in a fixed order.
#[inline]
pub(super) fn combine(acc: [f32; LANES]) -> f32 {
    let pairs = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (pairs[0] + pairs[2]) + (pairs[1] + pairs[3])
}

/// `sum_i a[i] * b[i]` over the common length of `a` and `b`. Product `i` goes to partial sum `i % 8`.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, ta) = a.split_at(n / LANES * LANES);
    let (cb, tb) = b.split_at(n / LANES * LANES);
    for (ra, rb) in ca.chunks_exact(LANES).zip(cb.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += ra[l] * rb[l];
        }
    }
    for (l, (x, y)) in ta.iter().zip(tb).enumerate() {
        acc[l] += x * y;
    }
    combine(acc)
}

/// Rows handled together by [`gemv`]: each load of `x` serves this many rows, and their partial sums form
/// independent dependency chains.
const ROW_BLOCK: usize = 4;

/// `y[j] = dot(W[j], x)` for a row-major `[y.len() × cols]` matrix `w`. Row `j` gets exactly the bits of
/// [`dot`]`(W[j], x)`: the rows are processed [`ROW_BLOCK`] at a time, but each keeps its own eight partial
/// sums in the same order, and chunks of eight zeros of `x` are skipped ([`live_chunks`]).
pub(crate) fn gemv(w: &[f32], cols: usize, x: &[f32], y: &mut [f32]) {
    let x = &x[..cols];
    let chunks = x.as_chunks::<LANES>().0;
    let mut live = [0u16; MAX_CHUNKS];
    let live = live_chunks(chunks, &mut live);
    let mut rows = w.chunks_exact(cols * ROW_BLOCK);
    let mut outs = y.chunks_exact_mut(ROW_BLOCK);
    if live.len() == chunks.len().min(MAX_CHUNKS) {
        // No chunk to skip: a plain loop over all of them.
        for (block, out) in (&mut rows).zip(&mut outs) {
            out.copy_from_slice(&dot_rows(block, cols, x, 0..chunks.len()));
        }
    } else {
        let live = live.iter().map(|k| *k as usize).chain(MAX_CHUNKS.min(chunks.len())..chunks.len());
        for (block, out) in (&mut rows).zip(&mut outs) {
            out.copy_from_slice(&dot_rows(block, cols, x, live.clone()));
        }
    }
    for (row, yj) in rows.remainder().chunks_exact(cols).zip(outs.into_remainder()) {
        *yj = dot(row, x);
    }
}

/// The chunks of eight columns [`gemv`] may skip: the first 1,024 (8,192 columns); any later one always runs.
const MAX_CHUNKS: usize = 1024;

/// The indices of the chunks of `x` that hold a non-zero value, written to the front of `out`, among the first
/// `out.len()` chunks. A chunk of eight zeros (blank pixels of an image on raw pixels) adds exact zeros to
/// partial sums that are never -0, so [`dot_rows`] skips it without changing a bit.
#[inline(always)]
fn live_chunks<'o>(chunks: &[[f32; LANES]], out: &'o mut [u16]) -> &'o [u16] {
    let mut n = 0;
    for (k, c) in chunks.iter().enumerate().take(out.len()) {
        out[n] = k as u16;
        n += usize::from(c.iter().any(|v| *v != 0.0));
    }
    &out[..n]
}

/// [`dot`] of each of the four consecutive rows of `w` (row length `cols`) with `x`, eight lanes per
/// vector: lane `l` of a row's accumulator is [`dot`]'s partial sum `l`. Adds the chunks of eight columns in
/// `live` (increasing; every chunk whose `x` is not all zero), then the columns past the last whole chunk.
#[inline(always)]
fn dot_rows(w: &[f32], cols: usize, x: &[f32], live: impl Iterator<Item = usize>) -> [f32; ROW_BLOCK] {
    let body = cols / LANES;
    let row = |r: usize| &w[r * cols..(r + 1) * cols];
    let rows = [row(0), row(1), row(2), row(3)];
    let chunks = rows.map(|r| &r.as_chunks::<LANES>().0[..body]);
    let xs = &x.as_chunks::<LANES>().0[..body];
    let mut acc = [f32x8::ZERO; ROW_BLOCK];
    for k in live {
        let xs = f32x8::new(xs[k]);
        for (a, c) in acc.iter_mut().zip(&chunks) {
            *a += f32x8::new(c[k]) * xs;
        }
    }
    let mut acc = acc.map(f32x8::to_array);
    for (l, c) in (body * LANES..cols).enumerate() {
        for (a, r) in acc.iter_mut().zip(&rows) {
            a[l] += r[c] * x[c];
        }
    }
    acc.map(combine)
}

/// `sum_k values[k] * x[cols[k]]` for a sparse row with increasing column indices. Product `k` goes to
/// partial sum `cols[k] % 8`, the one [`dot`] would use, so a row with its zeros removed sums to the same
/// value bit for bit as the dense row.
#[inline]
pub(crate) fn sparse_dot(values: &[f32], cols: &[u32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for (v, c) in values.iter().zip(cols) {
        let c = *c as usize;
        acc[c % LANES] += v * x[c];
    }
    combine(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_equals_the_naive_sum_for_every_length() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
            assert!((dot(&a, &b) as f64 - naive).abs() < 1e-5, "n = {n}");
        }
    }

    #[test]
    fn gemv_gives_each_row_the_bits_of_dot() {
        for (rows, cols) in [(0, 5), (1, 3), (4, 8), (5, 17), (9, 40), (13, 1)] {
            let w: Vec<f32> =
                (0..rows * cols).map(|k| (k as f32 * 0.73).sin() * 1e3f32.powf((k % 5) as f32 - 2.0)).collect();
            let x: Vec<f32> = (0..cols).map(|c| (c as f32 * 0.29).cos()).collect();
            let mut y = vec![f32::NAN; rows];
            gemv(&w, cols, &x, &mut y);
            for (j, yj) in y.iter().enumerate() {
                assert_eq!(yj.to_bits(), dot(&w[j * cols..(j + 1) * cols], &x).to_bits(), "{rows}x{cols}, row {j}");
            }
        }
    }

    #[test]
    fn gemv_skips_chunks_of_zeros_without_changing_a_bit() {
        // Wider than the chunks that may be skipped, with chunks of +0 and -0, chunks with one non-zero value in
        // their last column (which must not be skipped), zeros past the listed chunks and a ragged tail.
        let (rows, cols) = (6, 8 * MAX_CHUNKS + 8 * 5 + 3);
        let x: Vec<f32> = (0..cols)
            .map(|c| match (c / 8) % 4 {
                0 => 0.0,
                1 => -0.0,
                2 if c % 8 == 7 => 1.5,
                2 => 0.0,
                _ => (c as f32 * 0.29).cos(),
            })
            .collect();
        let w: Vec<f32> =
            (0..rows * cols).map(|k| (k as f32 * 0.73).sin() * 1e3f32.powf((k % 5) as f32 - 2.0)).collect();
        let mut y = vec![f32::NAN; rows];
        gemv(&w, cols, &x, &mut y);
        for (j, yj) in y.iter().enumerate() {
            assert_eq!(yj.to_bits(), dot(&w[j * cols..(j + 1) * cols], &x).to_bits(), "row {j}");
        }
        // All-zero and negative-zero inputs give +0.
        let zeros: Vec<f32> = (0..cols).map(|c| if c % 2 == 0 { 0.0 } else { -0.0 }).collect();
        gemv(&w, cols, &zeros, &mut y);
        assert!(y.iter().all(|v| v.to_bits() == 0), "{y:?}");
    }

    #[test]
    fn sparse_dot_skips_absent_entries() {
        let x: Vec<f32> = (0..20).map(|i| i as f32).collect();
        assert_eq!(sparse_dot(&[2.0, -1.0, 0.5], &[1, 9, 19], &x), 2.0 - 9.0 + 9.5);
        assert_eq!(sparse_dot(&[], &[], &x), 0.0);
    }
}
