//! What the intrinsic CSR block kernels (AVX2, AVX-512, NEON) share: [`CsrBlock`], a CSR layer's rows with a
//! block of 32 samples' activations, checked once so that the walks hand each entry its row of activations
//! without a bounds check; the walks over the rows — in pairs with their entries interleaved, or one by one;
//! and [`LocalReparamBlock`], the operands of a one-pass local reparameterization. A walk fixes only the order
//! in which rows and entries are visited; each row's sums still add its entries in order, so any walk gives the
//! portable kernels' bits.

use crate::layers::CsrPattern;
use core::ops::Range;

/// The values of a CSR row's entries: one slice, or two parallel ones read together.
pub(super) trait RowValues: Copy {
    type Entry: Copy;
    fn range(self, r: Range<usize>) -> Self;
    fn split_at(self, n: usize) -> (Self, Self);
    fn entry(self, i: usize) -> Self::Entry;
}

impl RowValues for &[f32] {
    type Entry = f32;
    #[inline(always)]
    fn range(self, r: Range<usize>) -> Self {
        &self[r]
    }
    #[inline(always)]
    fn split_at(self, n: usize) -> (Self, Self) {
        <[f32]>::split_at(self, n)
    }
    #[inline(always)]
    fn entry(self, i: usize) -> f32 {
        self[i]
    }
}

impl RowValues for (&[f32], &[f32]) {
    type Entry = (f32, f32);
    #[inline(always)]
    fn range(self, r: Range<usize>) -> Self {
        (&self.0[r.clone()], &self.1[r])
    }
    #[inline(always)]
    fn split_at(self, n: usize) -> (Self, Self) {
        let ((a, b), (c, d)) = (self.0.split_at(n), self.1.split_at(n));
        ((a, c), (b, d))
    }
    #[inline(always)]
    fn entry(self, i: usize) -> (f32, f32) {
        (self.0[i], self.1[i])
    }
}

/// A CSR layer's rows with their values (one slice per entry kind) and a block `h` of 32 samples' activations
/// (`[_ × 32]`, row-major) in which every column index of the pattern has its row.
pub(super) struct CsrBlock<'a, V> {
    row_ptr: &'a [u32],
    col_idx: &'a [u32],
    values: V,
    h: &'a [[f32; 32]],
}

impl<'a, V: RowValues> CsrBlock<'a, V> {
    /// `None` if `h` lacks the row of one of `pattern`'s column indices (the values must have one entry per
    /// entry of the pattern).
    #[inline(always)]
    pub(super) fn new(pattern: &'a CsrPattern, values: V, h: &'a [f32]) -> Option<Self> {
        let h = h.as_chunks::<32>().0;
        (pattern.columns_used() <= h.len()).then_some(Self {
            row_ptr: pattern.row_ptr(),
            col_idx: pattern.col_idx(),
            values,
            h,
        })
    }

    pub(super) fn rows(&self) -> usize {
        self.row_ptr.len().saturating_sub(1)
    }

    /// Row `j`'s values and column indices (equal lengths).
    #[inline(always)]
    fn row(&self, j: usize) -> (V, &'a [u32]) {
        let r = self.row_ptr[j] as usize..self.row_ptr[j + 1] as usize;
        (self.values.range(r.clone()), &self.col_idx[r])
    }

    /// The row of `h` of column `c`, one of the pattern's column indices.
    #[inline(always)]
    fn h_row(&self, c: u32) -> &'a [f32; 32] {
        // SAFETY: `c` comes from `col_idx` (every caller below reads it there), and every column index is below
        // `h.len()` (checked in `new`). (Bounds checks here cost a measurable share of the kernels:
        // benches/README.md, "How the kernels get there", on `unsafe`.)
        unsafe { self.h.get_unchecked(c as usize) }
    }

    /// Walks the rows in pairs with their entries interleaved (two independent chains of sums hide the adder's
    /// latency), then each row's entries past the shorter row's end, then an odd last row. `add(sums, value,
    /// row of h)` adds one entry to a row's sums (which start at `zero`), in order, and `done(j, sums)` takes
    /// row `j`'s.
    #[inline(always)]
    pub(super) fn row_pairs<A: Copy>(
        &self,
        zero: A,
        add: impl Fn(A, V::Entry, &[f32; 32]) -> A,
        mut done: impl FnMut(usize, A),
    ) {
        let rows = self.rows();
        let add_all = |a: A, row: (V, &[u32])| self.add_row(a, row, &add);
        let mut j = 0;
        while j + 1 < rows {
            let ((v0, k0), (v1, k1)) = (self.row(j), self.row(j + 1));
            let n = k0.len().min(k1.len());
            let ((v0, v0_rest), (v1, v1_rest)) = (v0.split_at(n), v1.split_at(n));
            let ((k0, k0_rest), (k1, k1_rest)) = (k0.split_at(n), k1.split_at(n));
            let (mut a, mut b) = (zero, zero);
            for i in 0..n {
                a = add(a, v0.entry(i), self.h_row(k0[i]));
                b = add(b, v1.entry(i), self.h_row(k1[i]));
            }
            done(j, add_all(a, (v0_rest, k0_rest)));
            done(j + 1, add_all(b, (v1_rest, k1_rest)));
            j += 2;
        }
        if j < rows {
            done(j, add_all(zero, self.row(j)));
        }
    }

    /// Walks the rows one by one (for kernels whose sums of two rows would not fit in the registers: AVX2's);
    /// `add` and `done` as in [`Self::row_pairs`].
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[inline(always)]
    pub(super) fn rows_in_order<A: Copy>(
        &self,
        zero: A,
        add: impl Fn(A, V::Entry, &[f32; 32]) -> A,
        mut done: impl FnMut(usize, A),
    ) {
        for j in 0..self.rows() {
            done(j, self.add_row(zero, self.row(j), &add));
        }
    }

    /// `a` plus the products of a row's entries (`v` sliced to the length of `k`, so that no index is checked
    /// in the loop).
    #[inline(always)]
    fn add_row<A>(&self, mut a: A, (v, k): (V, &[u32]), add: &impl Fn(A, V::Entry, &[f32; 32]) -> A) -> A {
        let v = v.split_at(k.len()).0;
        for (i, c) in k.iter().enumerate() {
            a = add(a, v.entry(i), self.h_row(*c));
        }
        a
    }
}

/// The operands of a one-pass local reparameterization ([`super::csr_local_reparam_one_pass`]): the layer's
/// weight means and variances with the block of activations, and per row its bias (mean, variance) and its 32
/// noise draws.
pub(super) struct LocalReparamBlock<'a> {
    pub csr: CsrBlock<'a, (&'a [f32], &'a [f32])>,
    bias: (&'a [f32], &'a [f32]),
    noise: &'a [[f32; 32]],
}

impl<'a> LocalReparamBlock<'a> {
    /// `noise` is `[_ × 32]`, row-major, with a row (and `bias` a mean and variance) for every row of `csr`.
    #[inline(always)]
    pub(super) fn new(
        csr: CsrBlock<'a, (&'a [f32], &'a [f32])>,
        bias: (&'a [f32], &'a [f32]),
        noise: &'a [f32],
    ) -> Self {
        Self { csr, bias, noise: noise.as_chunks::<32>().0 }
    }

    /// Row `j`'s bias mean, bias variance and noise draws.
    #[inline(always)]
    pub(super) fn row_end(&self, j: usize) -> (f32, f32, &'a [f32; 32]) {
        (self.bias.0[j], self.bias.1[j], &self.noise[j])
    }
}
