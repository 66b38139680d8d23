//! Numeric kernels shared by every layer: the dot product and the matrix–vector products built on it.
//!
//! Weights are row-major `[out_features, in_features]`, so each output is one contiguous dot product.
//! The dot product keeps eight independent partial sums so the compiler can vectorise it; every sampler
//! goes through the same kernel, which makes `Mean` and zero-sigma sampling bit-identical.

const LANES: usize = 8;

/// Folds the eight partial sums in a fixed order.
#[inline]
fn combine(acc: [f32; LANES]) -> f32 {
    let pairs = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (pairs[0] + pairs[2]) + (pairs[1] + pairs[3])
}

/// `sum_i a[i] * b[i]` over the common length of `a` and `b`. Product `i` goes to partial sum `i % 8`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
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

/// `sum_k values[k] * x[cols[k]]` for a sparse row with increasing column indices. Product `k` goes to
/// partial sum `cols[k] % 8`, the one [`dot`] would use, so a row with its zeros removed sums to the same
/// value bit for bit as the dense row.
#[inline]
pub fn sparse_dot(values: &[f32], cols: &[u32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for (v, c) in values.iter().zip(cols) {
        let c = *c as usize;
        acc[c % LANES] += v * x[c];
    }
    combine(acc)
}

/// Block sizes with a register-resident kernel; the predictor splits its samples into these.
pub const BLOCK_SIZES: [usize; 6] = [32, 16, 8, 4, 2, 1];

/// `y = sum over entries (w, h_row) of w * h_row`, element-wise over the block's samples. For the sizes in
/// [`BLOCK_SIZES`] the sums stay in registers.
#[inline]
pub fn accumulate_row<'h>(entries: impl Iterator<Item = (f32, &'h [f32])>, y: &mut [f32]) {
    match y.len() {
        32 => accumulate_fixed::<32>(entries, y),
        16 => accumulate_fixed::<16>(entries, y),
        8 => accumulate_fixed::<8>(entries, y),
        4 => accumulate_fixed::<4>(entries, y),
        2 => accumulate_fixed::<2>(entries, y),
        _ => {
            y.fill(0.0);
            for (w, h) in entries {
                for (a, v) in y.iter_mut().zip(h) {
                    *a += w * v;
                }
            }
        }
    }
}

#[inline]
fn accumulate_fixed<'h, const N: usize>(entries: impl Iterator<Item = (f32, &'h [f32])>, y: &mut [f32]) {
    let mut acc = [0.0f32; N];
    for (w, h) in entries {
        for (a, v) in acc.iter_mut().zip(&h[..N]) {
            *a += w * v;
        }
    }
    y[..N].copy_from_slice(&acc);
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
    fn accumulate_row_is_a_weighted_sum_of_rows_for_any_block_size() {
        for s in [1usize, 3, 4, 8, crate::predict::SAMPLE_BLOCK] {
            let h1: Vec<f32> = (0..s).map(|t| t as f32).collect();
            let h2: Vec<f32> = (0..s).map(|t| 1.0 - t as f32).collect();
            let mut y = vec![f32::NAN; s];
            accumulate_row([(2.0, &h1[..]), (-1.0, &h2[..])].into_iter(), &mut y);
            let expected: Vec<f32> = (0..s).map(|t| 2.0 * t as f32 - (1.0 - t as f32)).collect();
            assert_eq!(y, expected);
        }
    }

    #[test]
    fn sparse_dot_skips_absent_entries() {
        let x: Vec<f32> = (0..20).map(|i| i as f32).collect();
        assert_eq!(sparse_dot(&[2.0, -1.0, 0.5], &[1, 9, 19], &x), 2.0 - 9.0 + 9.5);
        assert_eq!(sparse_dot(&[], &[], &x), 0.0);
    }
}
