//! The ziggurat method for standard-normal draws (Marsaglia & Tsang 2000), with the layer index, the sign
//! and the position inside the layer taken from disjoint bits of one random word. Most draws cost one random
//! number, a table lookup, a multiply and a compare.
//!
//! Two table sets ([`Ziggurat`]): [`ZIGGURAT_256`] draws one value per 64-bit word (a 53-bit position, f64
//! arithmetic; [`SeededRng::gaussian`](super::SeededRng::gaussian) and the trainer's noise), and
//! [`ZIGGURAT_1024`] serves the bulk draws of local reparameterization at 32 bits per draw ([`fast_32`]: a
//! 21-bit position, the compare done on integers, the multiply in f32). With 1024 layers 0.43% of draws leave
//! the fast path (1.49% with 256), and the slow path costs some fifty times the fast one.

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

/// 1024 layers: the 32-bit bulk draws ([`fast_32`], [`slow_32`]).
pub(crate) const ZIGGURAT_1024: Ziggurat =
    Ziggurat { layer_bits: 10, r: layers_1024::R, x: &layers_1024::X, f: &layers_1024::F };

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

/// Where the tail of [`ZIGGURAT_1024`] starts.
#[cfg(test)]
pub(crate) const ZIGGURAT_1024_TAIL_START: f64 = layers_1024::R;

/// The layer bits of a 32-bit draw (bits 0–9); bit 10 is the sign, bits 11–31 the position.
const LAYER_MASK_32: u32 = 1023;
const SIGN_SHIFT_32: u32 = 10;
const POSITION_SHIFT_32: u32 = 11;

/// The fast path of a 32-bit draw of [`ZIGGURAT_1024`]: the candidate value and whether it is final (its
/// position lies in the layer's inner rectangle, 99.57% of draws). Otherwise [`slow_32`] finishes the draw.
#[inline(always)]
pub(crate) fn fast_32(bits: u32) -> (f32, bool) {
    let layer = (bits & LAYER_MASK_32) as usize;
    let u = bits >> POSITION_SHIFT_32;
    let sign_bit = ((bits >> SIGN_SHIFT_32) & 1) << 31;
    (f32::from_bits((u as f32 * layers_1024::W[layer]).to_bits() | sign_bit), u < layers_1024::K[layer])
}

/// [`fast_32`] for eight draws at once with AVX2 table gathers: the same values (every step is exact or one
/// correctly rounded f32 multiply), and a bit mask of the draws that are not final.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn fast_32_x8_avx2(words: &[u32; 8], out: &mut [f32; 8]) -> u32 {
    use core::arch::x86_64::*;
    const { assert!(POSITION_SHIFT_32 == 11 && SIGN_SHIFT_32 == 10) };
    // SAFETY: the unaligned load and store touch exactly the eight values of `words` and `out`; every
    // gathered index is masked to 0..1024, inside `K` and `W` (1024 entries each).
    unsafe {
        let bits = _mm256_loadu_si256(words.as_ptr().cast());
        let layer = _mm256_and_si256(bits, _mm256_set1_epi32(LAYER_MASK_32 as i32));
        let u = _mm256_srli_epi32::<11>(bits);
        let sign_bit = _mm256_slli_epi32::<31>(_mm256_srli_epi32::<10>(bits));
        let k = _mm256_i32gather_epi32::<4>(layers_1024::K.as_ptr().cast(), layer);
        let w = _mm256_i32gather_ps::<4>(layers_1024::W.as_ptr(), layer);
        // u < 2^21 and K <= 2^21, so the signed compare is the unsigned one.
        let inside = _mm256_cmpgt_epi32(k, u);
        let value = _mm256_or_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(u), w), _mm256_castsi256_ps(sign_bit));
        _mm256_storeu_ps(out.as_mut_ptr(), value);
        !(_mm256_movemask_ps(_mm256_castsi256_ps(inside)) as u32) & 0xff
    }
}

/// Finishes a 32-bit draw that [`fast_32`] left outside the inner rectangle: the tail for the base strip,
/// else the wedge test at the 21-bit position; a rejected point is replaced by a fresh 64-bit draw of
/// [`ZIGGURAT_1024`]. `next_u64` supplies the extra words.
#[cold]
#[inline(never)]
pub(crate) fn slow_32(bits: u32, mut next_u64: impl FnMut() -> u64) -> f32 {
    let layer = (bits & LAYER_MASK_32) as usize;
    let u = bits >> POSITION_SHIFT_32;
    let sign_bit = ((bits >> SIGN_SHIFT_32) & 1) << 31;
    let x = u as f64 * (1.0 / (1u32 << (32 - POSITION_SHIFT_32)) as f64) * layers_1024::X[layer];
    match ZIGGURAT_1024.outside_rectangle(layer, x, &mut next_u64) {
        Some(v) => f32::from_bits((v as f32).to_bits() | sign_bit),
        None => ZIGGURAT_1024.sample(next_u64) as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layers_tile_the_density() {
        for z in [&ZIGGURAT_256, &ZIGGURAT_1024] {
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

    #[test]
    fn the_32_bit_fast_path_accepts_exactly_the_inner_rectangles() {
        let x = &layers_1024::X;
        for layer in 0..1024u32 {
            let inside = |u: u32| (u as f64 / (1u32 << 21) as f64) * x[layer as usize] < x[layer as usize + 1];
            let k = layers_1024::K[layer as usize];
            let word = |u: u32| (u << POSITION_SHIFT_32) | layer;
            assert!(k == 0 || (inside(k - 1) && fast_32(word(k - 1)).1), "layer {layer}: last accepted");
            assert!(k >= 1 << 21 || (!inside(k) && !fast_32(word(k)).1), "layer {layer}: first rejected");
        }
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[test]
    fn the_avx2_fast_path_gives_the_scalar_bits() {
        if !std::is_x86_feature_detected!("avx2") {
            eprintln!("no AVX2 on this CPU: the scalar fast path alone is used");
            return;
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let words: [u32; 8] = core::array::from_fn(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (state >> 32) as u32
            });
            let mut out = [0.0f32; 8];
            // SAFETY: the CPU has AVX2, checked above.
            let outside = unsafe { fast_32_x8_avx2(&words, &mut out) };
            for (l, w) in words.iter().enumerate() {
                let (v, fin) = fast_32(*w);
                assert_eq!(out[l].to_bits(), v.to_bits());
                assert_eq!(outside >> l & 1 == 1, !fin);
            }
        }
    }
}
