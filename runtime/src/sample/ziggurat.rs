//! The ziggurat method for standard-normal draws (Marsaglia & Tsang 2000), 256 layers, with the layer index,
//! the sign and the position inside the layer taken from disjoint bits of one random word. About 99% of
//! draws cost one random number, a table lookup, a multiply and a compare.
//!
//! [`standard_normal`] takes one 64-bit word per draw (a 53-bit position, f64 arithmetic);
//! [`standard_normal_32`] takes 32 bits (a 23-bit position, the compare done on integers, the multiply in
//! f32): two draws per word, for the bulk noise of local reparameterization.

include!(concat!(env!("OUT_DIR"), "/ziggurat_tables.rs"));

const TO_UNIT: f64 = 1.0 / (1u64 << 53) as f64;

/// One N(0, 1) draw from a source of uniform 64-bit words.
#[inline]
pub(crate) fn standard_normal(mut next_u64: impl FnMut() -> u64) -> f64 {
    loop {
        let bits = next_u64();
        let layer = (bits & 0xff) as usize;
        // Bit 8 becomes the sign bit: a random sign without a branch the CPU would mispredict half the time.
        let sign_bit = (bits & 0x100) << 55;
        let sign = |v: f64| f64::from_bits(v.to_bits() | sign_bit);
        let u = (bits >> 11) as f64 * TO_UNIT;
        let x = u * X[layer];
        if x < X[layer + 1] {
            return sign(x);
        }
        if let Some(v) = outside_rectangle(layer, x, &mut next_u64) {
            return sign(v);
        }
    }
}

/// The rest of a ziggurat step for a position `x` of `layer` outside the layer's inner rectangle: a draw
/// from the tail for the base strip; else `x` if it passes the wedge test (the wedge between the inner
/// rectangle and the curve), `None` if it is rejected.
fn outside_rectangle(layer: usize, x: f64, next_u64: &mut impl FnMut() -> u64) -> Option<f64> {
    if layer == 0 {
        return Some(tail(next_u64));
    }
    let y = F[layer] + (next_u64() >> 11) as f64 * TO_UNIT * (F[layer + 1] - F[layer]);
    (y < crate::math::exp(-0.5 * x * x)).then_some(x)
}

/// One N(0, 1) draw from 32 random bits: bits 0–7 pick the layer, bit 8 the sign, bits 9–31 the position.
/// About 99% of positions fall inside their layer's inner rectangle and are finished here; for the others
/// `next_u64` supplies the exact slow path of [`standard_normal`] (the tail for the base strip, else the
/// wedge test; a rejected point restarts with a fresh 64-bit draw).
#[inline(always)]
pub(crate) fn standard_normal_32(bits: u32, next_u64: impl FnMut() -> u64) -> f32 {
    let layer = (bits & 0xff) as usize;
    let u = bits >> 9;
    let sign_bit = (bits & 0x100) << 23;
    if u < K[layer] {
        return f32::from_bits((u as f32 * W[layer]).to_bits() | sign_bit);
    }
    slow_path_32(layer, u, sign_bit, next_u64)
}

/// [`standard_normal_32`] outside the inner rectangle: [`outside_rectangle`] at the 23-bit position, and a
/// fresh 64-bit draw if that rejects it.
#[cold]
#[inline(never)]
fn slow_path_32(layer: usize, u: u32, sign_bit: u32, mut next_u64: impl FnMut() -> u64) -> f32 {
    let x = u as f64 * (1.0 / (1u32 << 23) as f64) * X[layer];
    match outside_rectangle(layer, x, &mut next_u64) {
        Some(v) => f32::from_bits((v as f32).to_bits() | sign_bit),
        None => standard_normal(next_u64) as f32,
    }
}

/// A draw from the normal tail beyond R (Marsaglia 1964).
fn tail(next_u64: &mut impl FnMut() -> u64) -> f64 {
    loop {
        // 1 - u lies in (0, 1], so the logarithms are finite.
        let a = -crate::math::ln(1.0 - (next_u64() >> 11) as f64 * TO_UNIT) / R;
        let b = -crate::math::ln(1.0 - (next_u64() >> 11) as f64 * TO_UNIT);
        if 2.0 * b > a * a {
            return R + a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layers_tile_the_density() {
        // Every layer has area V, so the last edge lands at the peak: f(x[255]) + V / x[255] = 1.
        let v = X[0] * F[1];
        assert!((F[255] + v / X[255] - 1.0).abs() < 1e-6, "{}", F[255] + v / X[255]);
        assert!(X.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn the_32_bit_fast_path_accepts_exactly_the_inner_rectangles() {
        for layer in 0..256 {
            let inside = |u: u32| (u as f64 / (1u32 << 23) as f64) * X[layer] < X[layer + 1];
            let k = K[layer];
            assert!(k == 0 || inside(k - 1), "layer {layer}: the last accepted position is outside");
            assert!(k >= 1 << 23 || !inside(k), "layer {layer}: the first rejected position is inside");
        }
    }
}
