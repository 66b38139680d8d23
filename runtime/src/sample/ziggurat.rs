//! The ziggurat method for standard-normal draws (Marsaglia & Tsang 2000), with the layer index, the sign
//! and the position inside the layer taken from disjoint bits of one random word. Most draws cost one random
//! number, a table lookup, a multiply and a compare.
//!
//! [`ZIGGURAT_256`] draws one value per 64-bit word (256 layers, a 53-bit position, f64 arithmetic): the
//! draws of [`SeededRng::gaussian`](super::SeededRng::gaussian), the trainer's noise. The bulk noise of local
//! reparameterization is Box–Muller (`kernels/portable/gaussian.rs`), which vectorises where a ziggurat needs table gathers and a
//! slow path.

include!(concat!(env!("OUT_DIR"), "/ziggurat_tables.rs"));

const TO_UNIT: f64 = 1.0 / (1u64 << 53) as f64;

/// One table set: `x[i]` (decreasing, `x[0]` the base strip's virtual width, `x[1]` the tail start, `x[n]` =
/// 0) and `f[i]` = exp(-x[i]^2 / 2). Layer `i` covers `[0, x[i])` at heights `f[i]..f[i + 1]`; its inner
/// rectangle is `[0, x[i + 1])`.
pub(crate) struct Ziggurat {
    /// The number of layers is `2^layer_bits`.
    layer_bits: u32,
    r: f64,
    x: &'static [f64],
    f: &'static [f64],
}

/// 256 layers, one draw per 64-bit word.
pub(crate) const ZIGGURAT_256: Ziggurat =
    Ziggurat { layer_bits: 8, r: layers_256::R, x: &layers_256::X, f: &layers_256::F };

impl Ziggurat {
    /// One N(0, 1) draw from a source of uniform 64-bit words: the low `layer_bits` bits pick the layer, the
    /// next bit is the sign, bits 11–63 the position.
    #[inline]
    pub(crate) fn sample(&self, mut next_u64: impl FnMut() -> u64) -> f64 {
        let layer_mask = (1u64 << self.layer_bits) - 1;
        loop {
            let bits = next_u64();
            let layer = (bits & layer_mask) as usize;
            // The sign goes straight into the sign bit: no branch the CPU would mispredict half the time.
            let sign_bit = ((bits >> self.layer_bits) & 1) << 63;
            let sign = |v: f64| f64::from_bits(v.to_bits() | sign_bit);
            let x = (bits >> 11) as f64 * TO_UNIT * self.x[layer];
            if x < self.x[layer + 1] {
                return sign(x);
            }
            if let Some(v) = self.outside_rectangle(layer, x, &mut next_u64) {
                return sign(v);
            }
        }
    }

    /// The rest of a ziggurat step for a position `x` of `layer` outside the layer's inner rectangle: a draw
    /// from the tail for the base strip; else `x` if it passes the wedge test (the wedge between the inner
    /// rectangle and the curve), `None` if it is rejected.
    fn outside_rectangle(&self, layer: usize, x: f64, next_u64: &mut impl FnMut() -> u64) -> Option<f64> {
        if layer == 0 {
            return Some(self.tail(next_u64));
        }
        let y = self.f[layer] + (next_u64() >> 11) as f64 * TO_UNIT * (self.f[layer + 1] - self.f[layer]);
        (y < crate::math::exp(-0.5 * x * x)).then_some(x)
    }

    /// A draw from the normal tail beyond R (Marsaglia 1964).
    fn tail(&self, next_u64: &mut impl FnMut() -> u64) -> f64 {
        loop {
            // 1 - u lies in (0, 1], so the logarithms are finite.
            let a = -crate::math::ln(1.0 - (next_u64() >> 11) as f64 * TO_UNIT) / self.r;
            let b = -crate::math::ln(1.0 - (next_u64() >> 11) as f64 * TO_UNIT);
            if 2.0 * b > a * a {
                return self.r + a;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layers_tile_the_density() {
        let z = &ZIGGURAT_256;
        let n = 1usize << z.layer_bits;
        assert_eq!(z.x.len(), n + 1);
        // Every layer has area V, so the last edge lands at the peak: f(x[n - 1]) + V / x[n - 1] = 1.
        let v = z.x[0] * z.f[1];
        let top = z.f[n - 1] + v / z.x[n - 1];
        assert!((top - 1.0).abs() < 1e-6, "{n} layers: {top}");
        assert!(z.x.windows(2).all(|w| w[0] > w[1]));
        assert_eq!((z.x[1], z.x[n]), (z.r, 0.0));
    }
}
