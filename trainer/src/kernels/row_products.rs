//! Products of long rows into a small matrix: `out[i, j] = Σ_k a[i, k] b[j, k]` for row-major `a` (`m × len`)
//! and `b` (`n × len`) — a convolution kernel's gradient, the output's gradient by channel times the unfolded
//! input, summed over every position of a minibatch (`len` runs to hundreds of thousands while `m × n` is a
//! few hundred). A general matrix product packs the long operand and runs its small product on one thread; here
//! the rows are cut into a fixed number of pieces, each piece's tile of `ROWS × COLUMNS` dot products runs in
//! `LANES` lanes on one of rayon's threads, and the pieces are added in order. The order of every sum is fixed
//! by the code (lanes, then lanes added in order, then the rest of the piece, then the pieces in order), so the
//! bits depend neither on the number of threads nor on the instruction set.

use super::isa::widest;
use rayon::prelude::*;

/// Lanes of the partial sums (one AVX-512 register, two AVX2 ones).
const LANES: usize = 16;
/// Rows of `a` and of `b` one tile reads together: each lane-block of the eight rows feeds `ROWS × COLUMNS`
/// fused multiply-adds from six loads.
const ROWS: usize = 2;
const COLUMNS: usize = 4;

/// `out[i, j] = Σ_k a[i, k] b[j, k]` for `a` of `m` rows and `b` of `n` rows of one length, in `pieces` fixed
/// blocks of each row (see the module documentation).
pub fn row_products(out: &mut [f32], a: &[f32], b: &[f32], [m, n]: [usize; 2], pieces: usize) {
    let len = a.len().checked_div(m).unwrap_or(0);
    assert!(a.len() == m * len && b.len() == n * len && out.len() == m * n, "{m} x {n} rows of {len} values");
    out.fill(0.0);
    if len == 0 || out.is_empty() {
        return;
    }
    let pieces = pieces.clamp(1, len);
    // Row `r`'s values `start..end`.
    fn row(v: &[f32], r: usize, len: usize, (start, end): (usize, usize)) -> &[f32] {
        &v[r * len + start..r * len + end]
    }
    let partial: Vec<Vec<f32>> = (0..pieces)
        .into_par_iter()
        .map(|p| {
            let range = (p * len / pieces, (p + 1) * len / pieces);
            let mut part = vec![0.0f32; m * n];
            widest(
                #[inline(always)]
                || {
                    for i0 in (0..m).step_by(ROWS) {
                        for j0 in (0..n).step_by(COLUMNS) {
                            match (m - i0 >= ROWS, n - j0 >= COLUMNS) {
                                (true, true) => {
                                    let t = tile(
                                        std::array::from_fn(|i| row(a, i0 + i, len, range)),
                                        std::array::from_fn(|j| row(b, j0 + j, len, range)),
                                    );
                                    for (i, t) in t.iter().enumerate() {
                                        part[(i0 + i) * n + j0..][..COLUMNS].copy_from_slice(t);
                                    }
                                }
                                // The edges: one dot product at a time.
                                _ => {
                                    for i in i0..(i0 + ROWS).min(m) {
                                        for j in j0..(j0 + COLUMNS).min(n) {
                                            part[i * n + j] = dot(row(a, i, len, range), row(b, j, len, range));
                                        }
                                    }
                                }
                            }
                        }
                    }
                },
            );
            part
        })
        .collect();
    for part in &partial {
        out.iter_mut().zip(part).for_each(|(o, p)| *o += p);
    }
}

/// `acc[l] += a[l] b[l]` for every lane (one vector instruction where the CPU has 16 lanes).
#[inline(always)]
fn lanes_mul_add(acc: &mut [f32; LANES], a: &[f32; LANES], b: &[f32; LANES]) {
    for l in 0..LANES {
        acc[l] = a[l].mul_add(b[l], acc[l]);
    }
}

/// Lane block `k` (values `k · LANES..`) of `row`.
#[inline(always)]
fn lane_block(row: &[f32], k: usize) -> &[f32; LANES] {
    row[k * LANES..(k + 1) * LANES].try_into().expect("a whole lane block")
}

/// The lanes added in order, then the values of `a` and `b` from `from` on (after the last whole lane block).
#[inline(always)]
fn finish(acc: [f32; LANES], a: &[f32], b: &[f32], from: usize) -> f32 {
    let lanes = acc.into_iter().fold(0.0f32, |s, v| s + v);
    a[from..].iter().zip(&b[from..]).fold(lanes, |s, (a, b)| a.mul_add(*b, s))
}

/// The `ROWS × COLUMNS` dot products of rows `a[i]` and `b[j]` (all of one length): `LANES` partial sums each
/// (see [`finish`]), every lane of the eight kept in registers.
#[inline(always)]
fn tile(a: [&[f32]; ROWS], b: [&[f32]; COLUMNS]) -> [[f32; COLUMNS]; ROWS] {
    let blocks = a[0].len() / LANES;
    let zero = [0.0f32; LANES];
    let (mut s00, mut s01, mut s02, mut s03, mut s10, mut s11, mut s12, mut s13) =
        (zero, zero, zero, zero, zero, zero, zero, zero);
    for k in 0..blocks {
        let (a0, a1) = (lane_block(a[0], k), lane_block(a[1], k));
        let (b0, b1, b2, b3) = (lane_block(b[0], k), lane_block(b[1], k), lane_block(b[2], k), lane_block(b[3], k));
        lanes_mul_add(&mut s00, a0, b0);
        lanes_mul_add(&mut s01, a0, b1);
        lanes_mul_add(&mut s02, a0, b2);
        lanes_mul_add(&mut s03, a0, b3);
        lanes_mul_add(&mut s10, a1, b0);
        lanes_mul_add(&mut s11, a1, b1);
        lanes_mul_add(&mut s12, a1, b2);
        lanes_mul_add(&mut s13, a1, b3);
    }
    let from = blocks * LANES;
    let row = |acc: [[f32; LANES]; COLUMNS], i: usize| std::array::from_fn(|j| finish(acc[j], a[i], b[j], from));
    [row([s00, s01, s02, s03], 0), row([s10, s11, s12, s13], 1)]
}

/// One dot product, summed as [`tile`] sums each of its own.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let blocks = a.len() / LANES;
    let mut acc = [0.0f32; LANES];
    for k in 0..blocks {
        lanes_mul_add(&mut acc, lane_block(a, k), lane_block(b, k));
    }
    finish(acc, a, b, blocks * LANES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook sum in f64.
    fn naive(a: &[f32], b: &[f32], len: usize) -> Vec<f64> {
        let (m, n) = (a.len() / len, b.len() / len);
        (0..m * n).map(|ij| (0..len).map(|k| a[ij / n * len + k] as f64 * b[ij % n * len + k] as f64).sum()).collect()
    }

    fn values(count: usize, seed: usize) -> Vec<f32> {
        (0..count).map(|i| ((i * 7919 + seed * 104_729) % 101) as f32 / 50.0 - 1.0).collect()
    }

    #[test]
    fn row_products_equal_the_textbook_sum_for_any_shape_and_split() {
        // Tiles and edges in both dimensions, rows shorter than a lane block, with and without a remainder.
        for (m, n, len) in [(6, 25, 1000), (5, 7, 203), (1, 1, 3), (2, 4, 16), (3, 9, 47), (16, 150, 640)] {
            let (a, b) = (values(m * len, 1), values(n * len, 2));
            let want = naive(&a, &b, len);
            for pieces in [1, 3, 16, 5000] {
                let mut out = vec![f32::NAN; m * n];
                row_products(&mut out, &a, &b, [m, n], pieces);
                for (g, w) in out.iter().zip(&want) {
                    assert!((*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()), "{m}x{n}x{len}, {pieces}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn the_bits_do_not_depend_on_the_number_of_threads() {
        let (m, n, len) = (6, 25, 5000);
        let (a, b) = (values(m * len, 3), values(n * len, 4));
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut out = vec![0.0f32; m * n];
            pool.install(|| row_products(&mut out, &a, &b, [m, n], 16));
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn empty_rows_give_zeros() {
        let mut out = vec![f32::NAN; 6];
        row_products(&mut out, &[], &[], [2, 3], 16);
        assert_eq!(out, [0.0; 6]);
    }
}
