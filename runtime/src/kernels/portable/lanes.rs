//! The single-sample products of [`super::dot`] for [`INPUT_LANES`] inputs side by side: lane `i` of every
//! [`Lanes`] value belongs to input `i`, so one load of a weight serves all of them and the weights stream
//! through the cache once per group of inputs instead of once per input (what a batch's first layer needs).
//! Each lane gets exactly the bits of [`super::dot`] on its input: eight partial sums by column residue,
//! every product added in column order with its own rounding (never fused), folded in `dot`'s order.

use super::dot::LANES as RESIDUES;

/// Inputs per [`Lanes`] value.
pub(crate) const INPUT_LANES: usize = 8;

/// One value per input of a group.
pub(crate) type Lanes = [f32; INPUT_LANES];

/// `acc[i] += w * x[i]` in every lane, unfused.
#[inline(always)]
pub(crate) fn add_product(acc: &mut Lanes, w: f32, x: &Lanes) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a += w * v;
    }
}

/// Folds the eight partial sums of every lane in [`super::dot`]'s order.
#[inline(always)]
pub(crate) fn fold(acc: &[Lanes; RESIDUES]) -> Lanes {
    core::array::from_fn(|i| {
        let pairs = [acc[0][i] + acc[4][i], acc[1][i] + acc[5][i], acc[2][i] + acc[6][i], acc[3][i] + acc[7][i]];
        (pairs[0] + pairs[2]) + (pairs[1] + pairs[3])
    })
}

/// `y[j][i] = dot(W[j], x_i)` for a row-major `[y.len() × cols]` matrix `w` and the inputs transposed,
/// `xt[c][i]` = value `c` of input `i` (`cols` rows).
// Inlined where `Isa::run` compiles it for an instruction set (x86-64); one copy elsewhere (smaller
// phone libraries: android/README.md, "Size").
#[cfg_attr(target_arch = "x86_64", inline(always))]
pub(crate) fn gemv_lanes(w: &[f32], cols: usize, xt: &[Lanes], y: &mut [Lanes]) {
    let xt = &xt[..cols];
    let (body, tail) = xt.as_chunks::<RESIDUES>();
    for (row, yj) in w.chunks_exact(cols.max(1)).zip(y) {
        let (row_body, row_tail) = row.as_chunks::<RESIDUES>();
        // Named sums: the compiler keeps them in registers (an array of them indexed in a loop stays on the
        // stack).
        let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7] = [[0.0f32; INPUT_LANES]; RESIDUES];
        for (ws, xs) in row_body.iter().zip(body) {
            add_product(&mut a0, ws[0], &xs[0]);
            add_product(&mut a1, ws[1], &xs[1]);
            add_product(&mut a2, ws[2], &xs[2]);
            add_product(&mut a3, ws[3], &xs[3]);
            add_product(&mut a4, ws[4], &xs[4]);
            add_product(&mut a5, ws[5], &xs[5]);
            add_product(&mut a6, ws[6], &xs[6]);
            add_product(&mut a7, ws[7], &xs[7]);
        }
        let mut acc = [a0, a1, a2, a3, a4, a5, a6, a7];
        for (l, (w, x)) in row_tail.iter().zip(tail).enumerate() {
            add_product(&mut acc[l], *w, x);
        }
        *yj = fold(&acc);
    }
}

#[cfg(test)]
mod tests {
    use super::super::dot::dot;
    use super::*;

    #[test]
    fn every_lane_gets_the_bits_of_dot() {
        for (rows, cols) in [(0, 5), (1, 3), (4, 8), (5, 17), (9, 40), (3, 1)] {
            let w: Vec<f32> =
                (0..rows * cols).map(|k| (k as f32 * 0.73).sin() * 1e3f32.powf((k % 5) as f32 - 2.0)).collect();
            let inputs: Vec<Vec<f32>> =
                (0..INPUT_LANES).map(|i| (0..cols).map(|c| ((c * 3 + i) as f32 * 0.29).cos()).collect()).collect();
            let xt: Vec<Lanes> = (0..cols).map(|c| core::array::from_fn(|i| inputs[i][c])).collect();
            let mut y = vec![[f32::NAN; INPUT_LANES]; rows];
            gemv_lanes(&w, cols, &xt, &mut y);
            for (j, yj) in y.iter().enumerate() {
                for (i, x) in inputs.iter().enumerate() {
                    let want = dot(&w[j * cols..(j + 1) * cols], x);
                    assert_eq!(yj[i].to_bits(), want.to_bits(), "{rows}x{cols}, row {j}, input {i}");
                }
            }
        }
    }
}
