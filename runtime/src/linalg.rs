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

/// `y[j] = bias[j] + dot(weight[j, :], x)` for a row-major `[y.len(), x.len()]` weight matrix.
#[inline]
pub fn affine(weight: &[f32], bias: &[f32], x: &[f32], y: &mut [f32]) {
    let cols = x.len();
    for (j, (yj, row)) in y.iter_mut().zip(weight.chunks_exact(cols)).enumerate() {
        *yj = bias[j] + dot(row, x);
    }
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
    fn affine_is_bias_plus_matrix_vector_product() {
        let w = [1.0, 2.0, 3.0, -1.0, 0.5, 0.0];
        let mut y = [0.0; 2];
        affine(&w, &[10.0, -10.0], &[1.0, 1.0, 2.0], &mut y);
        assert_eq!(y, [10.0 + 1.0 + 2.0 + 6.0, -10.0 - 1.0 + 0.5]);
    }
}
