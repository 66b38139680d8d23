//! The float functions the runtime needs. With the `std` feature they are the standard library's (a hardware
//! square root, the platform's libm), which Miri can also run; without it (`no_std`) the `libm` crate's.

macro_rules! float_functions {
    ($($name:ident($t:ty) => $std:ident, $libm:ident;)*) => {$(
        #[inline(always)]
        pub(crate) fn $name(x: $t) -> $t {
            #[cfg(feature = "std")]
            {
                x.$std()
            }
            #[cfg(not(feature = "std"))]
            {
                libm::$libm(x)
            }
        }
    )*};
}

float_functions! {
    sqrtf(f32) => sqrt, sqrtf;
    expf(f32) => exp, expf;
    tanhf(f32) => tanh, tanhf;
    ln_1pf(f32) => ln_1p, log1pf;
    sqrt(f64) => sqrt, sqrt;
    exp(f64) => exp, exp;
    ln(f64) => ln, log;
}

/// `a * b + c` with one rounding. Only the kernels compiled for CPUs with FMA call it; elsewhere it would
/// be a slow software routine.
#[inline(always)]
pub(crate) fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(feature = "std"))]
    {
        libm::fmaf(a, b, c)
    }
}

/// 1 if `v` is infinite or NaN (exponent bits all set), else 0: an integer test without a branch, so that a pass
/// that ORs it over a slice vectorises.
#[inline(always)]
pub(crate) fn non_finite_bit(v: f32) -> u32 {
    const EXPONENT: u32 = 0x7f80_0000;
    u32::from(v.to_bits() & EXPONENT == EXPONENT)
}

/// Whether any value of `x` is infinite or NaN, without an early exit so that the test vectorises.
#[inline(always)]
pub(crate) fn any_non_finite(x: &[f32]) -> bool {
    x.iter().fold(0, |acc, v| acc | non_finite_bit(*v)) != 0
}
