//! Numeric kernels shared by every layer: the dot product, the matrix–vector product built on it, and the
//! block products of local reparameterization.
//!
//! Weights are row-major `[out_features, in_features]`, so each output is one contiguous dot product. The
//! dot product keeps eight independent partial sums (lane `l` sums products `l, l + 8, ...`); [`gemv`]
//! computes four rows at once with explicit 8-lane vectors (`wide`, which maps them to SSE, AVX or NEON)
//! but keeps each row's lanes, so it gives every row the bits of [`dot`]. Every single-sample path goes
//! through these, which makes `Mean`, dense and sparse storage bit-identical, and none fuses multiply and
//! add, so `Mean` and weight sampling give the same bits on every CPU. The block products of local
//! reparameterization use fused multiply-adds where the CPU has them (x86-64 with AVX2 and FMA): twice the
//! throughput, but local-reparameterization draws then differ in the last bits between CPUs with and
//! without FMA (a seed still gives the same bits on any one machine). With AVX-512 the 32-sample block
//! products run on 512-bit registers (written with intrinsics: the compiler keeps the portable kernels at 256
//! bits), with the same fused operations in the same order, so the same bits as with AVX2 + FMA.

use wide::f32x8;

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

/// Rows handled together by [`gemv`]: each load of `x` serves this many rows, and their partial sums form
/// independent dependency chains.
const ROW_BLOCK: usize = 4;

/// `y[j] = dot(W[j], x)` for a row-major `[y.len() × cols]` matrix `w`. Row `j` gets exactly the bits of
/// [`dot`]`(W[j], x)`: the rows are processed [`ROW_BLOCK`] at a time, but each keeps its own eight partial
/// sums in the same order.
pub fn gemv(w: &[f32], cols: usize, x: &[f32], y: &mut [f32]) {
    let x = &x[..cols];
    let mut rows = w.chunks_exact(cols * ROW_BLOCK);
    let mut outs = y.chunks_exact_mut(ROW_BLOCK);
    for (block, out) in (&mut rows).zip(&mut outs) {
        out.copy_from_slice(&dot_rows(block, cols, x));
    }
    for (row, yj) in rows.remainder().chunks_exact(cols).zip(outs.into_remainder()) {
        *yj = dot(row, x);
    }
}

/// [`dot`] of each of the four consecutive rows of `w` (row length `cols`) with `x`, eight lanes per
/// vector: lane `l` of a row's accumulator is [`dot`]'s partial sum `l`.
#[inline(always)]
fn dot_rows(w: &[f32], cols: usize, x: &[f32]) -> [f32; ROW_BLOCK] {
    let body = cols / LANES;
    let row = |r: usize| &w[r * cols..(r + 1) * cols];
    let rows = [row(0), row(1), row(2), row(3)];
    let chunks = rows.map(|r| r.as_chunks::<LANES>().0);
    let mut acc = [f32x8::ZERO; ROW_BLOCK];
    for (k, xs) in x.as_chunks::<LANES>().0[..body].iter().enumerate() {
        let xs = f32x8::new(*xs);
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
pub fn sparse_dot(values: &[f32], cols: &[u32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for (v, c) in values.iter().zip(cols) {
        let c = *c as usize;
        acc[c % LANES] += v * x[c];
    }
    combine(acc)
}

/// The indices of the rows of the row-major `[rows × s]` block `h` that hold a non-zero value, in increasing
/// order, written to the front of `out` (at least `rows` long). ReLU leaves many hidden units at exactly zero
/// for every sample of a block; the block product skips them.
pub fn live_rows<'o>(h: &[f32], s: usize, out: &'o mut [u32]) -> &'o [u32] {
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

/// `$kernel::<N, FUSED>(args)` with `N` the block size `$s` when it is one of [`BLOCK_SIZES`] above 1 (each
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

/// Block sizes with a register-resident kernel; the predictor splits its samples into these.
pub const BLOCK_SIZES: [usize; 6] = [32, 16, 8, 4, 2, 1];

/// `y = W · h` for a dense row-major `[rows × cols]` matrix `w` and a block `h` of `s > 1` samples
/// (`[cols × s]`, row-major; `y` is `[rows × s]`), summing over the columns in `live` only, in their order.
/// Two rows of `W` share each row of `h` loaded, and for the sizes in [`BLOCK_SIZES`] the sums stay in
/// registers. `y[j, t]` is the plain sequential sum over `live` of `W[j, c] * h[c, t]`, each product added
/// with a fused multiply-add when `FUSED` (one rounding instead of two: the bits differ from the unfused
/// sum, the accuracy does not get worse).
#[inline(always)]
pub fn block_product_dense<const FUSED: bool>(
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
const H_SLICE_BYTES: usize = 16 * 1024;

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

/// [`block_product_dense`] for blocks of 32 samples on AVX-512 (fused): four rows of `W` at a time, each
/// row's 32 sums in two 512-bit registers, so one load of a row of `h` serves eight independent sums. The
/// bits of `block_product_dense::<true>`: every sum still adds its products in column order, fused. (The
/// compiler keeps the portable kernel at 256 bits even when AVX-512 is enabled, hence the intrinsics.)
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f")]
pub fn block_product_dense_32_avx512(w: &[f32], cols: usize, h: &[f32], live: &[u32], y: &mut [f32]) {
    use core::arch::x86_64::*;
    use row32::{load, madd, store};
    let h = h.as_chunks::<32>().0;
    let rows = w.len() / cols.max(1);
    let y = &mut y.as_chunks_mut::<32>().0[..rows];
    y.fill([0.0; 32]);
    for live in live.chunks(H_SLICE_BYTES / (4 * 32)) {
        let mut y_quads = y.chunks_exact_mut(4);
        let mut w_quads = w.chunks_exact(4 * cols);
        for (quad, y_quad) in (&mut w_quads).zip(&mut y_quads) {
            let (w0, rest) = quad.split_at(cols);
            let (w1, rest) = rest.split_at(cols);
            let (w2, w3) = rest.split_at(cols);
            let ([mut a0, mut a1], [mut b0, mut b1]) = (load(&y_quad[0]), load(&y_quad[1]));
            let ([mut c0, mut c1], [mut d0, mut d1]) = (load(&y_quad[2]), load(&y_quad[3]));
            for c in live.iter().map(|c| *c as usize) {
                let [h0, h1] = load(&h[c]);
                let (u, v) = (_mm512_set1_ps(w0[c]), _mm512_set1_ps(w1[c]));
                a0 = _mm512_fmadd_ps(u, h0, a0);
                a1 = _mm512_fmadd_ps(u, h1, a1);
                b0 = _mm512_fmadd_ps(v, h0, b0);
                b1 = _mm512_fmadd_ps(v, h1, b1);
                let (u, v) = (_mm512_set1_ps(w2[c]), _mm512_set1_ps(w3[c]));
                c0 = _mm512_fmadd_ps(u, h0, c0);
                c1 = _mm512_fmadd_ps(u, h1, c1);
                d0 = _mm512_fmadd_ps(v, h0, d0);
                d1 = _mm512_fmadd_ps(v, h1, d1);
            }
            store(&mut y_quad[0], [a0, a1]);
            store(&mut y_quad[1], [b0, b1]);
            store(&mut y_quad[2], [c0, c1]);
            store(&mut y_quad[3], [d0, d1]);
        }
        for (row, y_row) in w_quads.remainder().chunks_exact(cols).zip(y_quads.into_remainder()) {
            let sums = live.iter().fold(load(y_row), |a, c| madd(a, row[*c as usize], &h[*c as usize]));
            store(y_row, sums);
        }
    }
}

/// [`block_product_csr`] for blocks of 32 samples on AVX-512 (fused): rows in pairs with their entries
/// interleaved, as in the portable kernel ([`csr_row_pairs`]), each row's 32 sums in two 512-bit registers.
/// The bits of `block_product_csr::<true>`.
///
/// # Safety
/// The CPU supports AVX-512F, and every index in `col_idx` is below `h.len() / 32`.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f")]
pub unsafe fn block_product_csr_32_avx512(row_ptr: &[u32], col_idx: &[u32], values: &[f32], h: &[f32], y: &mut [f32]) {
    use core::arch::x86_64::*;
    use row32::{madd, store};
    let h = h.as_chunks::<32>().0;
    let rows = row_ptr.len().saturating_sub(1);
    let y = &mut y.as_chunks_mut::<32>().0[..rows];
    let range = |j: usize| row_ptr[j] as usize..row_ptr[j + 1] as usize;
    // SAFETY: `c` is one of `col_idx`, all below `h.len()` (the caller's promise). Bounds checks at each
    // use cost 13% of the kernel's time in a micro-benchmark.
    let h_row = |c: u32| unsafe { h.get_unchecked(c as usize) };
    csr_row_pairs(
        rows,
        |j| (&values[range(j)], &col_idx[range(j)]),
        [_mm512_setzero_ps(); 2],
        |a, u, c| madd(a, u, h_row(c)),
        |j, sums| store(&mut y[j], sums),
    );
}

/// Local reparameterization of a CSR Bayesian layer for a block of 32 samples on AVX-512, in one pass
/// over the pattern: `y[j, t] = m + (bias_mu[j] + sqrt(v + bias_var[j]) * noise[j, t])` with `m` the sum of
/// `mu[j, c] * h[c, t]` and `v` that of `var[j, c] * h[c, t]^2` over row `j`'s entries in order, each
/// product added with a fused multiply-add. Every operation and its order is that of two
/// [`block_product_csr`]`::<true>` calls (on `h` and its squares) followed by the element-wise sum, so the
/// bits are theirs; but each column index and row of `h` is read once for both sums and the squares and
/// variances never go through memory. `h`, `noise` and `y` are `[_ × 32]`, row-major.
///
/// # Safety
/// The CPU supports AVX-512F, and every index in `col_idx` is below `h.len() / 32`.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f")]
pub unsafe fn local_reparam_csr_32_avx512(
    (row_ptr, col_idx): (&[u32], &[u32]),
    (mu, var): (&[f32], &[f32]),
    (bias_mu, bias_var): (&[f32], &[f32]),
    h: &[f32],
    noise: &[f32],
    y: &mut [f32],
) {
    use core::arch::x86_64::*;
    use row32::{load, madd_pair, store};
    let h = h.as_chunks::<32>().0;
    let rows = row_ptr.len().saturating_sub(1);
    let (y, noise) = (&mut y.as_chunks_mut::<32>().0[..rows], &noise.as_chunks::<32>().0[..rows]);
    let range = |j: usize| row_ptr[j] as usize..row_ptr[j + 1] as usize;
    // SAFETY: `c` is one of `col_idx`, all below `h.len()` (the caller's promise).
    let h_row = |c: u32| unsafe { h.get_unchecked(c as usize) };
    // `m + (b_mu + sqrt(v + b_var) * e)`, lane by lane, written to row `j` of `y`.
    let finish = |j: usize, (m, v): ([__m512; 2], [__m512; 2])| {
        let (b_mu, b_var, e) = (_mm512_set1_ps(bias_mu[j]), _mm512_set1_ps(bias_var[j]), load(&noise[j]));
        let lane = |k: usize| {
            let sd = _mm512_sqrt_ps(_mm512_add_ps(v[k], b_var));
            _mm512_add_ps(m[k], _mm512_add_ps(b_mu, _mm512_mul_ps(sd, e[k])))
        };
        store(&mut y[j], [lane(0), lane(1)]);
    };
    csr_row_pairs(
        rows,
        |j| ((&mu[range(j)], &var[range(j)]), &col_idx[range(j)]),
        ([_mm512_setzero_ps(); 2], [_mm512_setzero_ps(); 2]),
        |a, (u, w), c| madd_pair(a, u, w, h_row(c)),
        finish,
    );
}

/// The values of a CSR row's entries for [`csr_row_pairs`]: one slice, or two parallel ones read together.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
trait RowValues: Copy {
    type Entry: Copy;
    fn split_at(self, n: usize) -> (Self, Self);
    fn entry(self, i: usize) -> Self::Entry;
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
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

#[cfg(all(feature = "std", target_arch = "x86_64"))]
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

/// The walk over a CSR pattern that the AVX-512 kernels share: rows in pairs with their entries interleaved
/// (two independent chains of sums hide the adder's latency), then each row's entries past the shorter
/// row's end, then an odd last row. `row(j)` gives row `j`'s values and column indices (equal lengths),
/// `add(sums, value, column)` adds one entry to a row's sums (which start at `zero`), in order, and
/// `done(j, sums)` takes row `j`'s.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[inline(always)]
fn csr_row_pairs<'a, V: RowValues, A: Copy>(
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

/// Rows of 32 floats as two 512-bit halves, for the AVX-512 block products.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod row32 {
    use core::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn load(r: &[f32; 32]) -> [__m512; 2] {
        // SAFETY: reads exactly the 32 floats of `r`.
        unsafe { [_mm512_loadu_ps(r.as_ptr()), _mm512_loadu_ps(r.as_ptr().add(16))] }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn store(r: &mut [f32; 32], a: [__m512; 2]) {
        // SAFETY: writes exactly the 32 floats of `r`.
        unsafe {
            _mm512_storeu_ps(r.as_mut_ptr(), a[0]);
            _mm512_storeu_ps(r.as_mut_ptr().add(16), a[1]);
        }
    }

    /// `(m + u · r, v + w · r²)`, each lane one rounded square and two fused multiply-adds.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn madd_pair(
        (m, v): ([__m512; 2], [__m512; 2]),
        u: f32,
        w: f32,
        r: &[f32; 32],
    ) -> ([__m512; 2], [__m512; 2]) {
        let ([r0, r1], u, w) = (load(r), _mm512_set1_ps(u), _mm512_set1_ps(w));
        let (q0, q1) = (_mm512_mul_ps(r0, r0), _mm512_mul_ps(r1, r1));
        (
            [_mm512_fmadd_ps(u, r0, m[0]), _mm512_fmadd_ps(u, r1, m[1])],
            [_mm512_fmadd_ps(w, q0, v[0]), _mm512_fmadd_ps(w, q1, v[1])],
        )
    }

    /// `a + u · r`, each lane one fused multiply-add.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn madd(a: [__m512; 2], u: f32, r: &[f32; 32]) -> [__m512; 2] {
        let ([r0, r1], u) = (load(r), _mm512_set1_ps(u));
        [_mm512_fmadd_ps(u, r0, a[0]), _mm512_fmadd_ps(u, r1, a[1])]
    }
}

/// `y = W · h` for a CSR matrix (`row_ptr`, `col_idx`, `values`) and a block `h` of `s > 1` samples
/// (`[_ × s]`, row-major; `y` is `[rows × s]`). `y[j, t]` is the sequential sum over row `j`'s entries, in
/// their order, of `W[j, c] * h[c, t]` (fused when `FUSED`, as in [`block_product_dense`]). Rows go in
/// pairs, their entries interleaved, so two independent sets of sums hide the adder's latency.
#[inline(always)]
pub fn block_product_csr<const FUSED: bool>(
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
    fn dot_equals_the_naive_sum_for_every_length() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
            assert!((dot(&a, &b) as f64 - naive).abs() < 1e-5, "n = {n}");
        }
    }

    #[test]
    fn block_products_are_weighted_sums_of_rows_for_any_block_size() {
        // W = [[2, -1, 0.5], [0, 3, 1], [1, 1, 1]], h rows: t, 1 - t, and zeros (not live).
        let w = [2.0, -1.0, 0.5, 0.0, 3.0, 1.0, 1.0, 1.0, 1.0];
        for s in [2usize, 3, 4, 8, 16, crate::predict::SAMPLE_BLOCK] {
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

    #[test]
    fn sparse_dot_skips_absent_entries() {
        let x: Vec<f32> = (0..20).map(|i| i as f32).collect();
        assert_eq!(sparse_dot(&[2.0, -1.0, 0.5], &[1, 9, 19], &x), 2.0 - 9.0 + 9.5);
        assert_eq!(sparse_dot(&[], &[], &x), 0.0);
    }
}
