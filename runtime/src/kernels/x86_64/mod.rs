//! The x86-64 builds: the portable kernels compiled for AVX2 + FMA ([`avx2`]) and AVX-512 intrinsics for the
//! 32-sample block products ([`avx512`]), and the CPU feature checks behind [`super::Isa::detected`]. "AVX2" is
//! AVX2 together with FMA (every x86-64 CPU with AVX2 since 2013 has FMA); "AVX-512" is AVX-512F, which implies
//! both.

pub(super) mod avx2;
pub(super) mod avx512;

/// Whether the CPU has AVX-512F (the standard library detects it once and caches the answer).
pub(super) fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// Whether the CPU has AVX2 and FMA.
pub(super) fn has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}
