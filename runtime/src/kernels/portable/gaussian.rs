//! Bulk standard-normal draws, the noise of local reparameterization: the Box–Muller transform on sixteen
//! xoshiro128++ generators side by side (seeded from the caller's stream).
//!
//! Each step draws two 32-bit words per generator and turns them into a pair of independent N(0, 1) values
//! `(r cos θ, r sin θ)`: the first word gives the radius `r = sqrt(-2 ln u)` with `u` uniform on (0, 1], the
//! second the angle (three bits pick the octant's mirror images: swap the two values, negate either; 29 bits the
//! angle inside the first octant). The logarithm, sine and cosine are short series in plain f32 arithmetic
//! ([`ln_unit`], [`cos_sin_octant`]): no table, no branch. Every operation works on 32-bit lanes, so one portable
//! loop vectorises on every target (SSE2, NEON, and AVX2 / AVX-512 in the x86-64 builds); with `FUSED` the
//! series' multiply-adds are fused, which changes the last bits only. The largest radius is `sqrt(64 ln 2)` =
//! 6.66: the Gaussian beyond it (probability 2.3e-10) is not drawn. `benches/README.md`, "Gaussian draws", has
//! the measurements against the ziggurat it replaced.

use super::madd;
use rand_xoshiro::rand_core::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Generators side by side: one pair of draws per generator and step.
const LANES: usize = 16;
/// Draws per step: the first values of the lanes' pairs, then the second values.
const STEP: usize = 2 * LANES;
/// Steps whose words are drawn before any of them is transformed: the transforms of a batch do not depend on
/// each other or on the generators, so the CPU overlaps their long chains (`benches/README.md`, session 22).
const BATCH: usize = 8;

/// [`LANES`] xoshiro128++ generators; state word `i` of lane `l` is `s[i][l]`.
pub(crate) struct LaneGenerator {
    s: [[u32; LANES]; 4],
}

impl LaneGenerator {
    /// Lanes seeded with 32 words of `main` (their low, then high halves). A lane whose state came out all
    /// zero (probability 2^-128), which xoshiro cannot leave, gets a fixed non-zero state.
    pub(crate) fn seeded(main: &mut Xoshiro256PlusPlus) -> Self {
        let mut s = [[0u32; LANES]; 4];
        for pair in s.as_flattened_mut().chunks_exact_mut(2) {
            let w = main.next_u64();
            (pair[0], pair[1]) = (w as u32, (w >> 32) as u32);
        }
        for l in 0..LANES {
            if s.iter().all(|word| word[l] == 0) {
                s[0][l] = 1;
            }
        }
        Self { s }
    }

    /// One xoshiro128++ step of every lane.
    #[inline(always)]
    fn next(&mut self, out: &mut [u32; LANES]) {
        let [s0, s1, s2, s3] = &mut self.s;
        for l in 0..LANES {
            out[l] = s0[l].wrapping_add(s3[l]).rotate_left(7).wrapping_add(s0[l]);
            let t = s1[l] << 9;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(11);
        }
    }
}

/// Fills `out` from `lanes`: the steps in batches of [`BATCH`] (each batch's words first, then its transforms;
/// the generators advance in the same order either way); a last partial step is computed whole and cut.
/// `CHUNK` (dividing [`LANES`]) is how many lanes the transform takes at once: 16 fill a 512-bit vector, 8 a
/// 256-bit one (AVX2 spills registers with 16); every chunking computes the same bits.
#[inline(always)]
pub(crate) fn fill<const CHUNK: usize, const FUSED: bool>(lanes: &mut LaneGenerator, out: &mut [f32]) {
    let mut words = [[[0u32; LANES]; 2]; BATCH];
    let (steps, rest) = out.as_chunks_mut::<STEP>();
    for batch in steps.chunks_mut(BATCH) {
        for [radius, angle] in &mut words[..batch.len()] {
            lanes.next(radius);
            lanes.next(angle);
        }
        for ([radius, angle], step) in words.iter().zip(batch) {
            box_muller::<CHUNK, FUSED>(radius, angle, step);
        }
    }
    if !rest.is_empty() {
        let (mut last, [radius, angle]) = ([0.0f32; STEP], &mut words[0]);
        lanes.next(radius);
        lanes.next(angle);
        box_muller::<CHUNK, FUSED>(radius, angle, &mut last);
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// Bit 31 of an angle word negates the first value, bit 30 the second, bit 29 swaps them; bits 0–28 are the
/// angle inside the first octant.
const ANGLE_BITS: u32 = 29;
/// From the 29 angle bits to φ in [0, π/4].
const ANGLE_SCALE: f32 = core::f32::consts::FRAC_PI_4 / (1u32 << ANGLE_BITS) as f32;
/// From a 31-bit integer plus one half to u in (0, 1].
const UNIT_SCALE: f32 = 1.0 / (1u64 << 31) as f32;
/// The coefficients of [`ln_unit`], [`cos_sin_octant`]: 1/3, 1/5, 1/7, 1/9; 1/2!, ..., 1/8!; 1/3!, ..., 1/9!
/// (alternating signs), each rounded to f32 once.
const ATANH: [f32; 4] = [1.0 / 3.0, 1.0 / 5.0, 1.0 / 7.0, 1.0 / 9.0];
const COS: [f32; 4] = [-1.0 / 2.0, 1.0 / 24.0, -1.0 / 720.0, 1.0 / 40_320.0];
const SIN: [f32; 4] = [-1.0 / 6.0, 1.0 / 120.0, -1.0 / 5_040.0, 1.0 / 362_880.0];
/// ln 2 in two parts: `LN_2_HI` has trailing zero bits, so `e * LN_2_HI` is exact for |e| < 2^11.
const LN_2_HI: f32 = 0.693_145_75;
const LN_2_LO: f32 = 1.428_606_8e-6;
/// The bits of √½ (rounded): the mantissas of [`ln_unit`] start there.
const SQRT_HALF_BITS: i32 = 0x3f35_04f3;

/// One step's draws: the pair of lane `l` (radius word `radius[l]`, angle word `angle[l]`) goes to
/// `out[l]` and `out[LANES + l]`, `CHUNK` lanes at a time.
#[inline(always)]
fn box_muller<const CHUNK: usize, const FUSED: bool>(
    radius: &[u32; LANES],
    angle: &[u32; LANES],
    out: &mut [f32; STEP],
) {
    let (first, second) = out.split_at_mut(LANES);
    let (first, second) = (first.as_chunks_mut::<CHUNK>().0, second.as_chunks_mut::<CHUNK>().0);
    let (radius, angle) = (radius.as_chunks::<CHUNK>().0, angle.as_chunks::<CHUNK>().0);
    for (((r, a), x), y) in radius.iter().zip(angle).zip(first).zip(second) {
        for l in 0..CHUNK {
            (x[l], y[l]) = pair::<FUSED>(r[l], a[l]);
        }
    }
}

/// The pair of draws of one radius word and one angle word (see the module documentation).
#[inline(always)]
fn pair<const FUSED: bool>(radius_bits: u32, angle: u32) -> (f32, f32) {
    // u = (k + 1/2) / 2^31 for the 31-bit k: in (0, 1], the +1/2 keeps it off zero.
    let u = ((radius_bits >> 1) as i32 as f32 + 0.5) * UNIT_SCALE;
    let r = crate::math::sqrtf(-2.0 * ln_unit::<FUSED>(u));
    let phi = (angle & ((1 << ANGLE_BITS) - 1)) as i32 as f32 * ANGLE_SCALE;
    let (c, s) = cos_sin_octant::<FUSED>(phi);
    let swap = (angle >> ANGLE_BITS) & 1 == 1;
    let (x, y) = (if swap { s } else { c }, if swap { c } else { s });
    let (sign_x, sign_y) = ((angle >> 31) << 31, ((angle >> 30) & 1) << 31);
    (f32::from_bits((r * x).to_bits() ^ sign_x), f32::from_bits((r * y).to_bits() ^ sign_y))
}

/// `ln u` for a normal float `u` in (0, 1]: `u = 2^e m` with `m` in [√½, √2), and `ln m = 2 atanh(t)` with
/// `t = (m - 1) / (m + 1)`, |t| ≤ 0.172, summed to `t^9 / 9` (the next term is below 2e-9 of the sum).
#[inline(always)]
fn ln_unit<const FUSED: bool>(u: f32) -> f32 {
    let shifted = u.to_bits() as i32 - SQRT_HALF_BITS;
    let e = (shifted >> 23) as f32;
    let m = f32::from_bits(((shifted & 0x7f_ffff) + SQRT_HALF_BITS) as u32);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let odd = t2 * madd::<FUSED>(ATANH[0], t2, madd::<FUSED>(ATANH[1], t2, madd::<FUSED>(ATANH[2], t2, ATANH[3])));
    madd::<FUSED>(madd::<FUSED>(2.0 * madd::<FUSED>(t, t, odd), e, LN_2_LO), e, LN_2_HI)
}

/// `(cos φ, sin φ)` for φ in [0, π/4]: Taylor series to the φ^8 and φ^9 terms (the next terms are below
/// 3e-8 and 2e-9).
#[inline(always)]
fn cos_sin_octant<const FUSED: bool>(phi: f32) -> (f32, f32) {
    let p2 = phi * phi;
    let cos = madd::<FUSED>(1.0, p2, series::<FUSED>(COS, p2));
    let sin = madd::<FUSED>(phi, phi, p2 * series::<FUSED>(SIN, p2));
    (cos, sin)
}

/// `c0 + x (c1 + x (c2 + x c3))`. (A function, not a closure: closures do not inherit the caller's target
/// features.)
#[inline(always)]
fn series<const FUSED: bool>(c: [f32; 4], x: f32) -> f32 {
    madd::<FUSED>(c[0], x, madd::<FUSED>(c[1], x, madd::<FUSED>(c[2], x, c[3])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_xoshiro::rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro128PlusPlus;

    #[test]
    fn the_lanes_are_sixteen_xoshiro128_plus_plus_generators() {
        // Lane l's state words are s[0][l]..s[3][l]; a reference generator with that state (little-endian
        // bytes) must give the same outputs.
        let mut main = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut lanes = LaneGenerator::seeded(&mut main);
        let mut reference: Vec<Xoshiro128PlusPlus> = (0..LANES)
            .map(|l| {
                let mut seed = [0u8; 16];
                for (i, chunk) in seed.chunks_exact_mut(4).enumerate() {
                    chunk.copy_from_slice(&lanes.s[i][l].to_le_bytes());
                }
                Xoshiro128PlusPlus::from_seed(seed)
            })
            .collect();
        let mut got = [0u32; LANES];
        for _ in 0..100 {
            lanes.next(&mut got);
            for (l, r) in reference.iter_mut().enumerate() {
                assert_eq!(got[l], r.next_u32());
            }
        }
    }

    #[test]
    fn the_logarithm_is_accurate_on_the_whole_unit_interval() {
        // Every 4099th float from the smallest u (2^-32) to 1, plus the ends: |error| <= 2e-7 |ln u| + 1e-10.
        let (lo, hi) = ((2.0f32).powi(-32).to_bits(), 1.0f32.to_bits());
        let step = if cfg!(miri) { 400_009 } else { 4099 };
        for bits in (lo..=hi).step_by(step).chain([lo, hi]) {
            let u = f32::from_bits(bits);
            let exact = (u as f64).ln();
            for got in [ln_unit::<false>(u), ln_unit::<true>(u)].map(f64::from) {
                assert!((got - exact).abs() <= 2e-7 * exact.abs() + 1e-10, "ln {u}: {got} vs {exact}");
            }
        }
    }

    #[test]
    fn the_octant_cosine_and_sine_are_accurate() {
        let n = if cfg!(miri) { 1_000 } else { 100_000 };
        for i in 0..=n {
            let phi = core::f32::consts::FRAC_PI_4 * i as f32 / n as f32;
            let p = phi as f64;
            for (c, s) in [cos_sin_octant::<false>(phi), cos_sin_octant::<true>(phi)] {
                assert!((c as f64 - p.cos()).abs() < 1.5e-7, "cos {phi}");
                assert!((s as f64 - p.sin()).abs() < 1.5e-7, "sin {phi}");
            }
        }
    }

    #[test]
    fn the_radius_spans_zero_to_its_largest_value() {
        // The smallest and largest 31-bit k give the largest and smallest radii.
        let draw = |radius: u32, angle: u32| {
            let mut out = [0.0f32; STEP];
            box_muller::<1, false>(&[radius; LANES], &[angle; LANES], &mut out);
            (out[0], out[LANES])
        };
        let largest = draw(0, 0).0;
        assert!((largest - (64.0f32 * core::f32::consts::LN_2).sqrt()).abs() < 1e-5, "{largest}");
        assert_eq!(draw(u32::MAX, 12345), (0.0, 0.0));
        // Angle 0 with both sign bits set: r cos 0 = r and r sin 0 = 0, negated.
        let (a, b) = draw(0, 0b11 << 30);
        assert_eq!((a, b.to_bits()), (-largest, (-0.0f32).to_bits()));
        // The swap bit: (sin 0, cos 0) r = (0, r).
        assert_eq!(draw(0, 1 << 29), (0.0, largest));
    }

    /// The tails: P(|X| > 4) = 6.334e-5, about 127 of 2,000,000 draws (standard deviation 11.3); P(|X| > 3)
    /// = 2.700e-3, 5400 (sd 73).
    #[test]
    #[cfg_attr(miri, ignore = "two million draws are too slow under Miri")]
    fn draws_reach_the_tails_at_the_normal_rate() {
        let mut out = vec![0.0f32; 2_000_000];
        fill::<16, false>(&mut LaneGenerator::seeded(&mut Xoshiro256PlusPlus::seed_from_u64(21)), &mut out);
        let beyond = |r: f32| out.iter().filter(|v| v.abs() > r).count();
        assert!((80..175).contains(&beyond(4.0)), "{} draws beyond 4", beyond(4.0));
        assert!((5_100..5_700).contains(&beyond(3.0)), "{} draws beyond 3", beyond(3.0));
    }

    /// The two values of a pair are uncorrelated, and so are the squares (dependent pairs would correlate
    /// through the shared radius): |correlation| < 5 / sqrt(n).
    #[test]
    fn the_two_values_of_a_pair_are_uncorrelated() {
        let n = if cfg!(miri) { 2_000 } else { 200_000 };
        let mut out = vec![0.0f32; 2 * n];
        fill::<16, false>(&mut LaneGenerator::seeded(&mut Xoshiro256PlusPlus::seed_from_u64(4)), &mut out);
        let pairs: Vec<(f64, f64)> = out
            .as_chunks::<STEP>()
            .0
            .iter()
            .flat_map(|step| (0..LANES).map(move |l| (step[l] as f64, step[LANES + l] as f64)))
            .collect();
        let corr = |f: fn(f64) -> f64| {
            let m = pairs.len() as f64;
            let (mx, my) = pairs.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + f(*x) / m, b + f(*y) / m));
            let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
            for (x, y) in &pairs {
                let (dx, dy) = (f(*x) - mx, f(*y) - my);
                (sxy, sxx, syy) = (sxy + dx * dy, sxx + dx * dx, syy + dy * dy);
            }
            sxy / (sxx * syy).sqrt()
        };
        let bound = 5.0 / (pairs.len() as f64).sqrt();
        assert!(corr(|v| v).abs() < bound, "values: {}", corr(|v| v));
        assert!(corr(|v| v * v).abs() < bound, "squares: {}", corr(|v| v * v));
    }

    #[test]
    fn every_chunking_of_the_lanes_gives_the_same_bits() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for len in [0, 1, 31, 33, 1000] {
            let draw = |fill_with: &dyn Fn(&mut LaneGenerator, &mut [f32])| {
                let mut out = vec![1.0f32; len];
                fill_with(&mut LaneGenerator::seeded(&mut Xoshiro256PlusPlus::seed_from_u64(9)), &mut out);
                bits(&out)
            };
            let one = draw(&|g, out| fill::<1, false>(g, out));
            assert_eq!(draw(&|g, out| fill::<8, false>(g, out)), one, "len {len}");
            assert_eq!(draw(&|g, out| fill::<16, false>(g, out)), one, "len {len}");
            let fused = draw(&|g, out| fill::<1, true>(g, out));
            assert_eq!(draw(&|g, out| fill::<16, true>(g, out)), fused, "len {len}");
        }
    }
}
