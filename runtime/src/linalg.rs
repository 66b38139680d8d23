//! Numeric kernels shared by every layer: the dot product and the matrix–vector products built on it.
//!
//! Weights are row-major `[out_features, in_features]`, so each output is one contiguous dot product.
//! The dot product keeps eight independent partial sums so the compiler can vectorise it; every sampler
//! goes through the same kernel, which makes `Mean` and zero-sigma sampling bit-identical.

const LANES: usize = 8;

/// `sum_i a[i] * b[i]` over the common length of `a` and `b`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let chunks = n / LANES;
    for c in 0..chunks {
        let base = c * LANES;
        let (ca, cb) = (&a[base..base + LANES], &b[base..base + LANES]);
        for l in 0..LANES {
            acc[l] += ca[l] * cb[l];
        }
    }
    let mut tail = 0.0f32;
    for i in chunks * LANES..n {
        tail += a[i] * b[i];
    }
    let pairs = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (pairs[0] + pairs[2]) + (pairs[1] + pairs[3]) + tail
}

/// `sum_k values[k] * x[cols[k]]` for a sparse row with increasing column indices. Each product goes to the
/// partial sum [`dot`] would give its column, so a row with its zeros removed sums to the same value bit for
/// bit as the dense row.
#[inline]
pub fn sparse_dot(values: &[f32], cols: &[u32], x: &[f32]) -> f32 {
    let split = x.len() / LANES * LANES;
    let mut acc = [0.0f32; LANES];
    let mut tail = 0.0f32;
    for (v, c) in values.iter().zip(cols) {
        let c = *c as usize;
        if c < split {
            acc[c % LANES] += v * x[c];
        } else {
            tail += v * x[c];
        }
    }
    let pairs = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (pairs[0] + pairs[2]) + (pairs[1] + pairs[3]) + tail
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
