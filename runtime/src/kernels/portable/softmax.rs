//! Softmax probabilities and Shannon entropies of a group of Monte-Carlo samples, in f64, on
//! branch-free `exp` and `ln` (plain arithmetic, so the loops over a whole group vectorise and every CPU
//! computes the same bits).
//!
//! A prediction of S samples over K classes needs S·K exponentials and S·K logarithms; as calls into the
//! platform's libm they were a visible share of a pruned prediction (`benches/README.md`). The same
//! [`entropies`] serves the sampled distributions and their mean, so identical samples give a mutual
//! information of exactly 0.

/// Below this, `exp` is taken at this point instead (about 1e-304): a probability it produces, divided by a
/// sum of at most a few thousand classes, and the mean of such probabilities, stay normal floats.
const EXP_FLOOR: f64 = -700.0;

/// `ln 2` split so that `k * LN2_HI` is exact for every exponent `k` of an f64.
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// `2^52`: the f64 whose low mantissa bits read as an integer below 2^52.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// `1.5 · 2^52`: adding and subtracting it rounds an f64 of magnitude below 2^51 to the nearest integer.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// `e^x` for `x <= 0` (NaN-free input), to within about 2 units in the last place; `x` below
/// [`EXP_FLOOR`] is taken as `EXP_FLOOR`.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f64) -> f64 {
    let x = x.max(EXP_FLOOR);
    // x = k ln 2 + r with |r| <= ln 2 / 2.
    let t = x * core::f64::consts::LOG2_E + ROUND;
    let k = t - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // e^r by its Taylor series to r^13 / 13! (the next term is below 2e-17 relative).
    let mut p = 1.0 / 6_227_020_800.0;
    for c in [479_001_600.0, 39_916_800.0, 3_628_800.0, 362_880.0, 40_320.0, 5_040.0, 720.0, 120.0, 24.0, 6.0, 2.0] {
        p = p * r + 1.0 / c;
    }
    let e_r = (p * r + 1.0) * r + 1.0;
    // 2^k from its exponent bits: the low bits of `t` hold k (two's complement), -1010 <= k <= 0.
    let k_bits = (t.to_bits() as i64).wrapping_sub(ROUND.to_bits() as i64);
    e_r * f64::from_bits(((k_bits + 1023) as u64) << 52)
}

/// `ln x` for a positive normal `x`, to within about 2 units in the last place (absolute, near 1);
/// `ln 1 = 0` exactly.
#[inline(always)]
pub(crate) fn ln_positive(x: f64) -> f64 {
    // x = 2^e m with m in [sqrt(1/2), sqrt(2)). Float compares and selects only (no 64-bit integer compare
    // or conversion), which SSE2 vectors have.
    let bits = x.to_bits();
    let m = f64::from_bits((bits & ((1 << 52) - 1)) | 1f64.to_bits());
    let biased = f64::from_bits((bits >> 52) | TWO_52.to_bits()) - TWO_52;
    let high = m >= core::f64::consts::SQRT_2;
    let (m, e) = if high { (0.5 * m, biased - 1022.0) } else { (m, biased - 1023.0) };
    // ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m - 1)/(m + 1), |s| <= 0.172: to s^23 the next
    // term is below 1e-18 relative.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut q = 1.0 / 23.0;
    for d in [21.0, 19.0, 17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0] {
        q = q * s2 + 1.0 / d;
    }
    let ln_m = 2.0 * s + 2.0 * s * (s2 * q);
    (e * LN2_HI + ln_m) + e * LN2_LO
}

/// [`softmax_rows`] of `logits` into `probs`, then their [`entropies`] into `out`.
#[inline(always)]
pub(crate) fn softmax_entropies(logits: &[f32], k: usize, probs: &mut [f64], terms: &mut [f64], out: &mut [f64]) {
    softmax_rows(logits, k, probs);
    entropies(&probs[..logits.len()], k, terms, out);
}

/// The softmax of each row of the row-major `[n × k]` `logits`, written to `probs` (same shape).
#[inline(always)]
pub(crate) fn softmax_rows(logits: &[f32], k: usize, probs: &mut [f64]) {
    let probs = &mut probs[..logits.len()];
    for (l, p) in logits.chunks_exact(k).zip(probs.chunks_exact_mut(k)) {
        let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        p.iter_mut().zip(l).for_each(|(p, l)| *p = *l as f64 - max);
    }
    probs.iter_mut().for_each(|p| *p = exp_nonpositive(*p));
    for p in probs.chunks_exact_mut(k) {
        let scale = 1.0 / p.iter().sum::<f64>();
        p.iter_mut().for_each(|v| *v *= scale);
    }
}

/// The Shannon entropy in nats (`0 ln 0 = 0`) of each row of the row-major `[n × k]` `probs`, written to
/// `out` (`n` values); `terms` is scratch of `probs.len()`. Each row's terms `-p ln p` are added in order.
#[inline(always)]
pub(crate) fn entropies(probs: &[f64], k: usize, terms: &mut [f64], out: &mut [f64]) {
    let terms = &mut terms[..probs.len()];
    for (t, p) in terms.iter_mut().zip(probs) {
        // No branch, so the loop vectorises: a zero `p` gives `-0 · ln(MIN_POSITIVE) = 0`.
        *t = -p * ln_positive(p.max(f64::MIN_POSITIVE));
    }
    for (o, row) in out.iter_mut().zip(terms.chunks_exact(k)) {
        *o = row.iter().sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `step`-th f64 bit pattern between `lo` and `hi` (both positive or both negative).
    fn floats(lo: f64, hi: f64, count: u64) -> impl Iterator<Item = f64> {
        let (a, b) = (lo.to_bits().min(hi.to_bits()), lo.to_bits().max(hi.to_bits()));
        (0..=count).map(move |i| f64::from_bits(a + (b - a) / count * i))
    }

    #[test]
    fn exp_is_within_two_ulps_of_the_standard_library() {
        let n = if cfg!(miri) { 500 } else { 200_000 };
        for x in floats(-1e-300, EXP_FLOOR, n).chain([0.0, -0.0, -1.0, -0.5 * core::f64::consts::LN_2]) {
            let (got, want) = (exp_nonpositive(x), x.exp());
            assert!((got - want).abs() <= 2.0 * f64::EPSILON * want, "exp({x}) = {got}, want {want}");
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-1e6), exp_nonpositive(EXP_FLOOR));
        assert!(exp_nonpositive(EXP_FLOOR) > 1e3 * f64::MIN_POSITIVE);
    }

    #[test]
    fn ln_is_within_two_ulps_of_the_standard_library() {
        let n = if cfg!(miri) { 500 } else { 200_000 };
        for x in floats(f64::MIN_POSITIVE, 1.0, n).chain(floats(1.0, 1e300, n / 4)).chain([0.5, 2.0, 1.0 - 1e-16]) {
            let (got, want) = (ln_positive(x), x.ln());
            assert!((got - want).abs() <= 2.0 * f64::EPSILON * want.abs().max(1.0), "ln({x}) = {got}, want {want}");
        }
        assert_eq!(ln_positive(1.0), 0.0);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_keep_the_order_of_the_logits() {
        let logits = [1.0, 2.0, 0.5, -3.0, 100.0, -100.0, 0.0, 0.0, 0.0];
        let mut p = [0.0; 9];
        softmax_rows(&logits, 3, &mut p);
        for row in p.chunks_exact(3) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        }
        let z: f64 = [1.0f64, 2.0, 0.5].iter().map(|l| l.exp()).sum();
        assert!((p[0] - 1.0f64.exp() / z).abs() < 1e-15 && p[1] > p[0] && p[0] > p[2]);
        assert!(p[4] > 1.0 - 1e-16 && (p[5] / (-200f64).exp() - 1.0).abs() < 1e-14);
        assert_eq!(&p[6..], &[1.0 / 3.0; 3]);
    }

    #[test]
    fn entropies_match_the_definition() {
        let probs = [0.25, 0.25, 0.25, 0.25, 1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4];
        let (mut terms, mut h) = ([0.0; 16], [f64::NAN; 4]);
        entropies(&probs, 4, &mut terms, &mut h);
        let want = |p: &[f64]| -p.iter().filter(|v| **v > 0.0).map(|v| v * v.ln()).sum::<f64>();
        assert!((h[0] - 4f64.ln()).abs() < 1e-15);
        assert_eq!(h[1], 0.0);
        assert!((h[2] - 2f64.ln()).abs() < 1e-15);
        assert!((h[3] - want(&probs[12..])).abs() < 1e-15);
    }
}
