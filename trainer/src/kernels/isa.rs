//! Runs a fused pass compiled for the widest x86-64 vector extension the CPU has (AVX-512F, else AVX2 with
//! FMA), chosen at run time (the standard library detects it once and caches the answer); other CPUs run
//! the portable build. The passes never let the compiler contract `a * b + c` (Rust does not) and write
//! their fused multiply-adds out (`mul_add`, rounded once everywhere), so every build gives the same bits.

/// Calls `f`, inlined into a copy of this function compiled for the CPU's widest vectors.
#[inline(always)]
pub fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { avx512(f) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
