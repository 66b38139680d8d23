//! Branch-free f32 `exp`, `ln` and `ln(1 + x)` for the fused Bayes-by-Backprop passes: plain arithmetic,
//! fused multiply-adds, compares and selects, so a loop over a parameter tensor vectorises (the platform's
//! libm calls do not, and were about 15% of an unfused training epoch's profile). Accurate to a few units in
//! the last place, far inside what the training passes need (their tests compare with candle's libm-based
//! ops to 1e-5). A fused multiply-add rounds once on every CPU (in hardware, or in libm's `fmaf` where the
//! build has no FMA instruction), so the bits do not depend on the instruction set.

/// `ln 2` in two parts: `k * LN2_HI` is exact for the exponents `k` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `1.5 · 2^23`: adding and subtracting it rounds an f32 below 2^22 in magnitude to the nearest integer.
const ROUND: f32 = 12_582_912.0;
/// Below this `e^x` is 0 in f32 (the smallest subnormal is `e^-103.3`).
const EXP_ZERO_BELOW: f32 = -104.0;

/// `e^x` for `x <= 0` to within 2 units in the last place (subnormal results included); NaN stays NaN.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    let zero = x < EXP_ZERO_BELOW;
    let xc = if zero { EXP_ZERO_BELOW } else { x };
    // x = k ln 2 + r, |r| <= ln 2 / 2.
    let t = xc * std::f32::consts::LOG2_E + ROUND;
    let k = t - ROUND;
    let r = k.mul_add(-LN2_LO, k.mul_add(-LN2_HI, xc));
    // Minimax polynomial (straight-line Horner steps, see `ln_positive`) for (e^r - 1 - r) / r^2 on [-ln 2 / 2, ln 2 / 2] (Cephes `expf`).
    let p: f32 = 1.987_569_1e-4;
    let p = p.mul_add(r, 1.398_199_9e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 1.666_666_5e-1);
    let p = p.mul_add(r, 0.5);
    let e_r = p.mul_add(r * r, r) + 1.0;
    // 2^k as two normal powers of two (k >= -150), so subnormal results round once.
    let k = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let half = k >> 1;
    let pow = |n: i32| f32::from_bits(((n + 127) as u32) << 23);
    let y = e_r * pow(half) * pow(k - half);
    if zero {
        0.0
    } else {
        y
    }
}

/// `ln x` for `x > 0` (subnormal `x` included) to within 2 units in the last place; `ln 0 = -inf`,
/// `ln inf = inf`, NaN and negative `x` give NaN.
#[inline(always)]
pub fn ln_positive(x: f32) -> f32 {
    // Subnormals are scaled into the normal range first.
    let tiny = x < f32::MIN_POSITIVE;
    let xs = if tiny { x * 16_777_216.0 } else { x };
    let bits = xs.to_bits() as i32;
    let mut e = ((bits >> 23) & 0xff) - 127;
    let mut m = f32::from_bits(((bits as u32) & 0x007f_ffff) | 0x3f80_0000);
    // m in [sqrt(1/2), sqrt(2)).
    let high = m > std::f32::consts::SQRT_2;
    m = if high { 0.5 * m } else { m };
    e += high as i32;
    let e = e as f32 - if tiny { 24.0 } else { 0.0 };
    let f = m - 1.0;
    let z = f * f;
    // Minimax polynomial for (ln(1 + f) - f + f^2 / 2) / f^3 on [sqrt(1/2) - 1, sqrt(2) - 1] (Cephes `logf`).
    // Straight-line Horner steps: a loop over the coefficients would stay a loop and keep callers from vectorising.
    let p: f32 = 7.037_683_6e-2;
    let p = p.mul_add(f, -1.151_461e-1);
    let p = p.mul_add(f, 1.167_699_9e-1);
    let p = p.mul_add(f, -1.242_014_1e-1);
    let p = p.mul_add(f, 1.424_932_3e-1);
    let p = p.mul_add(f, -1.666_805_8e-1);
    let p = p.mul_add(f, 2.000_071_5e-1);
    let p = p.mul_add(f, -2.499_999_4e-1);
    let p = p.mul_add(f, 0.333_333_3);
    let ln = e.mul_add(LN2_HI, f + (f * z).mul_add(p, (-0.5f32).mul_add(z, e * LN2_LO)));
    if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        f32::INFINITY
    } else if x < 0.0 || x.is_nan() {
        f32::NAN
    } else {
        ln
    }
}

/// `ln(1 + x)` for `0 <= x <= 1`, accurate in relative terms also for the tiniest `x` (where it is `x`).
#[inline(always)]
pub fn ln_1p_unit(x: f32) -> f32 {
    ln_1p_and_reciprocal(x).0
}

/// `(ln(1 + x), 1 / (1 + x))` for `0 <= x <= 1`, from one division: the logarithm as [`ln_1p_unit`] gives it.
#[inline(always)]
pub fn ln_1p_and_reciprocal(x: f32) -> (f32, f32) {
    let u = 1.0 + x;
    let inv = 1.0 / u;
    // ln(u) is exact for the rounded u; the first-order term corrects for the rounding of 1 + x.
    let corrected = (x - (u - 1.0)).mul_add(inv, ln_positive(u));
    (if u == 1.0 { x } else { corrected }, inv)
}

/// `(softplus(rho), sigmoid(rho))` = `(ln(1 + e^rho), 1 / (1 + e^-rho))`, the posterior standard deviation and
/// its derivative, from one exponential. Stable for every `rho`; NaN stays NaN.
#[inline(always)]
pub fn softplus_sigmoid(rho: f32) -> (f32, f32) {
    let e = exp_nonpositive(-rho.abs());
    let (l, inv) = ln_1p_and_reciprocal(e);
    let softplus = if rho > 0.0 { rho + l } else { l };
    let sigmoid = if rho >= 0.0 { inv } else { e * inv };
    // NaN compares false both ways: keep it visible in the result.
    let nan = rho.is_nan();
    (if nan { f32::NAN } else { softplus }, if nan { f32::NAN } else { sigmoid })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error in f64, with the exact value from f64's libm.
    fn rel(got: f32, exact: f64) -> f64 {
        if exact == 0.0 {
            got.abs() as f64
        } else {
            ((got as f64 - exact) / exact).abs()
        }
    }

    fn sweep(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    #[test]
    fn exp_is_within_a_few_ulp_down_to_the_subnormals() {
        for x in sweep(-87.0, 0.0, 200_000) {
            let e = rel(exp_nonpositive(x), (x as f64).exp());
            assert!(e < 2.5e-7, "exp({x}): relative error {e}");
        }
        // Subnormal results: absolute error below one subnormal step's few units.
        for x in sweep(-103.0, -87.5, 1000) {
            let exact = (x as f64).exp();
            assert!((exp_nonpositive(x) as f64 - exact).abs() <= 2.0 * 1.4e-45 + exact * 2.5e-7, "exp({x})");
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-200.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }

    #[test]
    fn ln_is_within_a_few_ulp_over_the_whole_range() {
        for k in -149..128 {
            for m in [1.0f64, 1.1, 1.2345, 1.414, 1.5, 1.99] {
                let x = (m * 2f64.powi(k)) as f32;
                let exact = (x as f64).ln();
                let got = ln_positive(x) as f64;
                assert!((got - exact).abs() <= 2.5e-7 * exact.abs().max(1.0), "ln({x}) = {got}, expected {exact}");
            }
        }
        for x in sweep(0.5, 2.0, 100_000) {
            let exact = (x as f64).ln();
            assert!((ln_positive(x) as f64 - exact).abs() < 1.2e-7, "ln({x})");
        }
        assert_eq!(ln_positive(1.0), 0.0);
        assert_eq!(ln_positive(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_positive(f32::INFINITY), f32::INFINITY);
        assert!(ln_positive(-1.0).is_nan() && ln_positive(f32::NAN).is_nan());
    }

    #[test]
    fn ln_1p_keeps_relative_accuracy_for_tiny_arguments() {
        for x in sweep(0.0, 1.0, 100_000).chain((1..120).map(|k| 2f32.powi(-k))) {
            let e = rel(ln_1p_unit(x), (x as f64).ln_1p());
            assert!(e < 3e-7, "ln_1p({x}): relative error {e}");
        }
    }

    #[test]
    fn softplus_and_sigmoid_match_their_definitions_everywhere() {
        for rho in sweep(-100.0, 60.0, 100_000) {
            let r = rho as f64;
            let (s, g) = softplus_sigmoid(rho);
            let exact_s = if r > 30.0 { r + (-r).exp() } else { r.exp().ln_1p() };
            // Below rho = -87 both are subnormal: there a few units of 1.4e-45 is all f32 can hold.
            let close =
                |got: f32, exact: f64| rel(got, exact) < 4e-7 || (r < -87.0 && (got as f64 - exact).abs() < 3e-45);
            assert!(close(s, exact_s), "softplus({rho}) = {s}, expected {exact_s}");
            assert!(close(g, 1.0 / (1.0 + (-r).exp())), "sigmoid({rho}) = {g}");
            assert!(s > 0.0 || r < -103.0, "softplus({rho}) must stay positive");
        }
        let (s, g) = softplus_sigmoid(f32::NAN);
        assert!(s.is_nan() && g.is_nan());
    }
}
