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

/// Two sparse dot products over one pattern in a single pass: `(values1 . x1, values2 . x2)`, each
/// bit-identical to [`sparse_dot`].
#[inline]
pub fn sparse_dot2(values1: &[f32], values2: &[f32], cols: &[u32], x1: &[f32], x2: &[f32]) -> (f32, f32) {
    let mut acc1 = [0.0f32; LANES];
    let mut acc2 = [0.0f32; LANES];
    for ((v1, v2), c) in values1.iter().zip(values2).zip(cols) {
        let c = *c as usize;
        acc1[c % LANES] += v1 * x1[c];
        acc2[c % LANES] += v2 * x2[c];
    }
    (combine(acc1), combine(acc2))
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
    fn sparse_dot_skips_absent_entries() {
        let x: Vec<f32> = (0..20).map(|i| i as f32).collect();
        assert_eq!(sparse_dot(&[2.0, -1.0, 0.5], &[1, 9, 19], &x), 2.0 - 9.0 + 9.5);
        assert_eq!(sparse_dot(&[], &[], &x), 0.0);
    }
}
