//! The x86-64 builds: the portable kernels compiled for AVX2 + FMA ([`avx2`]) and AVX-512 intrinsics for the
//! 32-sample block products ([`avx512`]), and the CPU feature checks behind [`super::Isa::detected`]. "AVX2" is
//! AVX2 together with FMA (every x86-64 CPU with AVX2 since 2013 has FMA); "AVX-512" is AVX-512F, which implies
//! both.

/// The entry points whose bodies are portable code, compiled with the instruction set `$features`: `run` (see
/// [`super::Isa::run`]) and `softmax_entropies` ([`super::portable::softmax_entropies`], nothing fused).
macro_rules! portable_entry_points {
    ($features:literal) => {
        /// `work.run()` compiled with this module's instruction set (see [`super::super::Isa::run`]).
        #[target_feature(enable = $features)]
        pub(in crate::kernels) fn run<W: super::super::Compiled>(work: W) -> W::Output {
            work.run()
        }

        /// [`super::super::portable::softmax_entropies`] on this module's vectors (nothing fused).
        #[target_feature(enable = $features)]
        pub(in crate::kernels) fn softmax_entropies(
            logits: &[f32],
            k: usize,
            probs: &mut [f64],
            terms: &mut [f64],
            out: &mut [f64],
        ) {
            super::super::portable::softmax_entropies(logits, k, probs, terms, out)
        }
    };
}

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
