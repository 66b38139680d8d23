//! Which x86-64 vector extensions this CPU has, for the kernels that are compiled more than once and chosen
//! at run time (the standard library detects them once and caches the answer). Every such kernel asks here,
//! so all follow one policy: "AVX-512" is AVX-512F (which implies AVX2 and FMA); "AVX2" is AVX2 together with
//! FMA (every x86-64 CPU with AVX2 since 2013 also has FMA).

/// Whether the CPU has AVX-512F.
#[inline]
pub(crate) fn avx512() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// Whether the CPU has AVX2 and FMA.
#[inline]
pub(crate) fn avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}
