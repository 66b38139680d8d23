//! The ziggurat method for standard-normal draws (Marsaglia & Tsang 2000), 256 layers, with the layer index,
//! the sign and the position inside the layer taken from disjoint bits of one 64-bit draw. About 99% of
//! draws cost one random number, a table lookup, a multiply and a compare.

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
        if layer == 0 {
            return sign(tail(&mut next_u64));
        }
        // The wedge between the layer's inner rectangle and the curve.
        let y = F[layer] + (next_u64() >> 11) as f64 * TO_UNIT * (F[layer + 1] - F[layer]);
        if y < crate::math::exp(-0.5 * x * x) {
            return sign(x);
        }
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
}
