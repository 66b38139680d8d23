//! The walk over a CSR pattern that the intrinsic block kernels (AVX-512, NEON) share: rows in pairs, their
//! entries interleaved. It fixes only the order in which rows and entries are visited; each row's sums still add
//! its entries in order, so any walk gives the portable kernels' bits.

/// The values of a CSR row's entries for [`csr_row_pairs`]: one slice, or two parallel ones read together.
pub(super) trait RowValues: Copy {
    type Entry: Copy;
    fn split_at(self, n: usize) -> (Self, Self);
    fn entry(self, i: usize) -> Self::Entry;
}

impl RowValues for &[f32] {
    type Entry = f32;
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
    fn split_at(self, n: usize) -> (Self, Self) {
        let ((a, b), (c, d)) = (self.0.split_at(n), self.1.split_at(n));
        ((a, c), (b, d))
    }
    #[inline(always)]
    fn entry(self, i: usize) -> (f32, f32) {
        (self.0[i], self.1[i])
    }
}

/// The walk over a CSR pattern that the intrinsic kernels share: rows in pairs with their entries interleaved
/// (two independent chains of sums hide the adder's latency), then each row's entries past the shorter
/// row's end, then an odd last row. `row(j)` gives row `j`'s values and column indices (equal lengths),
/// `add(sums, value, column)` adds one entry to a row's sums (which start at `zero`), in order, and
/// `done(j, sums)` takes row `j`'s.
#[inline(always)]
pub(super) fn csr_row_pairs<'a, V: RowValues, A: Copy>(
    rows: usize,
    row: impl Fn(usize) -> (V, &'a [u32]),
    zero: A,
    add: impl Fn(A, V::Entry, u32) -> A,
    mut done: impl FnMut(usize, A),
) {
    // `a` plus the products of a whole row's entries (sliced to their common length so that no index is
    // checked in the loop).
    let add_all = |mut a: A, (v, k): (V, &[u32])| {
        let v = v.split_at(k.len()).0;
        for (i, c) in k.iter().enumerate() {
            a = add(a, v.entry(i), *c);
        }
        a
    };
    let mut j = 0;
    while j + 1 < rows {
        let ((v0, k0), (v1, k1)) = (row(j), row(j + 1));
        let n = k0.len().min(k1.len());
        let ((v0, v0_rest), (v1, v1_rest)) = (v0.split_at(n), v1.split_at(n));
        let ((k0, k0_rest), (k1, k1_rest)) = (k0.split_at(n), k1.split_at(n));
        let (mut a, mut b) = (zero, zero);
        for i in 0..n {
            a = add(a, v0.entry(i), k0[i]);
            b = add(b, v1.entry(i), k1[i]);
        }
        done(j, add_all(a, (v0_rest, k0_rest)));
        done(j + 1, add_all(b, (v1_rest, k1_rest)));
        j += 2;
    }
    if j < rows {
        done(j, add_all(zero, row(j)));
    }
}
