//! Matrix products on plain row-major slices for the fused training step, through the `gemm` crate (the
//! kernels candle's CPU matmul runs, called without a tensor, an allocation or an autograd node). A
//! [`Matrix`] is a row-major slice, or its transpose as a view; [`product`] checks every shape before it
//! hands pointers to `gemm`.

use gemm::Parallelism;

/// A read-only matrix: a row-major `rows × cols` slice (or a block of columns of a wider one), or the transpose
/// of one (a view, nothing copied).
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    data: &'a [f32],
    /// The shape of the matrix as the product sees it.
    rows: usize,
    cols: usize,
    /// The distance between the starts of two rows of the stored (untransposed) matrix.
    stride: usize,
    transposed: bool,
}

impl<'a> Matrix<'a> {
    /// The row-major `rows × cols` matrix in `data` (which must hold exactly that many values).
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "a {rows} x {cols} matrix holds {} values", data.len());
        Self { data, rows, cols, stride: cols, transposed: false }
    }

    /// The transpose, as a view of the same values.
    pub fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, transposed: !self.transposed, ..self }
    }

    /// Columns `range` of the matrix as the product sees it, as a view (rows of the stored matrix when transposed).
    pub fn column_block(self, range: std::ops::Range<usize>) -> Self {
        assert!(range.end <= self.cols, "columns {range:?} of {}", self.cols);
        let start = if self.transposed { range.start * self.stride } else { range.start };
        let data = if range.is_empty() || self.rows == 0 { &self.data[..0] } else { &self.data[start..] };
        Self { data, cols: range.len(), ..self }
    }

    /// `(row stride, column stride)` of the matrix as the product sees it.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.stride as isize)
        } else {
            (self.stride as isize, 1)
        }
    }

    /// Whether every value the view spans lies inside its slice.
    fn fits(&self) -> bool {
        let (rows, cols) = if self.transposed { (self.cols, self.rows) } else { (self.rows, self.cols) };
        rows == 0 || cols == 0 || ((rows - 1) * self.stride + cols <= self.data.len() && cols <= self.stride)
    }
}

/// `out = a b` (or `out += a b` with `accumulate`), `out` row-major `a.rows × b.cols`, on rayon's threads.
/// The split of the work over threads never changes the bits: each output element is one thread's sum.
pub fn product(out: &mut [f32], a: Matrix, b: Matrix, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "a {m} x {k} matrix times a {} x {n} one", b.rows);
    assert_eq!(out.len(), m * n, "the {m} x {n} product goes into {} values", out.len());
    assert!(a.fits() && b.fits(), "a view reaches past its values");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    let ((a_rs, a_cs), (b_rs, b_cs)) = (a.strides(), b.strides());
    // SAFETY: the shapes were checked above: `out` holds `m * n` values, and `fits` checked that every value
    // the strides of `a` (`m × k`) and `b` (`k × n`) reach lies inside their slices, so gemm reads and writes
    // inside the three slices only. `out` is a unique borrow, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `out[j] = sum_i g[i, j]` over the rows of the row-major `rows × out.len()` matrix `g` (a bias's gradient).
pub fn column_sums(g: &[f32], out: &mut [f32]) {
    let n = out.len();
    assert!(n > 0 && g.len().is_multiple_of(n), "{} values are not rows of {n}", g.len());
    out.fill(0.0);
    for row in g.chunks_exact(n) {
        out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook triple loop, in f64.
    fn naive(a: &[f32], (m, k): (usize, usize), b: &[f32], n: usize, at: bool, bt: bool) -> Vec<f32> {
        let get_a = |i: usize, p: usize| if at { a[p * m + i] } else { a[i * k + p] } as f64;
        let get_b = |p: usize, j: usize| if bt { b[j * k + p] } else { b[p * n + j] } as f64;
        (0..m * n).map(|ij| (0..k).map(|p| get_a(ij / n, p) * get_b(p, ij % n)).sum::<f64>() as f32).collect()
    }

    #[test]
    fn products_of_every_orientation_equal_the_textbook_sum() {
        let (m, k, n) = (37, 53, 29);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 97) as f32 / 48.0 - 1.0).collect();
        for (at, bt) in [(false, false), (true, false), (false, true), (true, true)] {
            let ma = if at { Matrix::new(&a, k, m).t() } else { Matrix::new(&a, m, k) };
            let mb = if bt { Matrix::new(&b, n, k).t() } else { Matrix::new(&b, k, n) };
            let want = naive(&a, (m, k), &b, n, at, bt);
            let mut out = vec![f32::NAN; m * n];
            product(&mut out, ma, mb, false);
            for (g, w) in out.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "transposed {at}/{bt}: {g} vs {w}");
            }
            // Accumulating adds the product once more.
            product(&mut out, ma, mb, true);
            for (g, w) in out.iter().zip(&want) {
                assert!((g - 2.0 * w).abs() <= 2e-5 * (1.0 + w.abs()), "accumulated {at}/{bt}: {g} vs {}", 2.0 * w);
            }
        }
    }

    #[test]
    #[should_panic(expected = "times a")]
    fn mismatched_inner_dimensions_are_refused() {
        let v = vec![0.0f32; 12];
        product(&mut [0.0; 9], Matrix::new(&v, 3, 4), Matrix::new(&v, 3, 4), false);
    }

    #[test]
    fn column_sums_add_the_rows() {
        let mut out = [f32::NAN; 3];
        column_sums(&[1.0, 2.0, 3.0, 10.0, 20.0, 30.0], &mut out);
        assert_eq!(out, [11.0, 22.0, 33.0]);
    }
}
