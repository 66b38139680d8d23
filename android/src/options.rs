//! [`NativeOptions`]: prediction options as the plain numbers a Java or C caller passes, checked and turned into
//! the runtime's [`PredictOptions`].

use crate::BindingError;
use bnn_runtime::{PredictOptions, Sampler};

/// The most Monte-Carlo samples one call may ask for (2^24: every count up to it is exact in an `f32`, which the
/// JNI result packing relies on, and it bounds the work one call can demand).
pub const BNN_MAX_SAMPLES: i64 = 1 << 24;

/// Sampler codes shared by the Java enum `io.bnnedge.Sampler` (its ordinal) and the C constants `BNN_SAMPLER_*`.
pub const BNN_SAMPLER_LOCAL_REPARAM: i32 = 0;
pub const BNN_SAMPLER_WEIGHT_SAMPLING: i32 = 1;
pub const BNN_SAMPLER_MEAN: i32 = 2;
/// Shared weights: the inputs of a batch share each sample's network (fixed sample counts only).
pub const BNN_SAMPLER_SHARED_WEIGHTS: i32 = 3;

/// Prediction options as passed over FFI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeOptions {
    /// Fixed number of samples (used when `adaptive_max` is 0).
    pub samples: i64,
    /// When > 0: draw adaptively, up to this many samples, until the standard error is below `tolerance`.
    pub adaptive_max: i64,
    pub tolerance: f32,
    pub seed: u64,
    /// One of the `BNN_SAMPLER_*` codes.
    pub sampler: i32,
    /// Probability mass of regression intervals, in (0, 1).
    pub interval_level: f32,
}

impl NativeOptions {
    /// The runtime options these numbers describe; counts out of `1..=BNN_MAX_SAMPLES` and unknown sampler codes
    /// are rejected here, the rest (tolerance, level) by the runtime with its own messages.
    pub fn to_predict_options(&self) -> Result<PredictOptions, BindingError> {
        let count = |name: &str, n: i64| {
            if (1..=BNN_MAX_SAMPLES).contains(&n) {
                Ok(n as usize)
            } else {
                Err(BindingError::InvalidArgument(format!("{name} must be in 1..={BNN_MAX_SAMPLES}, got {n}")))
            }
        };
        let sampler = match self.sampler {
            BNN_SAMPLER_LOCAL_REPARAM => Sampler::LocalReparam,
            BNN_SAMPLER_WEIGHT_SAMPLING => Sampler::WeightSampling,
            BNN_SAMPLER_MEAN => Sampler::Mean,
            BNN_SAMPLER_SHARED_WEIGHTS => Sampler::SharedWeights,
            other => return Err(BindingError::InvalidArgument(format!("unknown sampler code {other}"))),
        };
        let options = PredictOptions::default().seed(self.seed).sampler(sampler).interval_level(self.interval_level);
        Ok(if self.adaptive_max == 0 {
            options.samples(count("samples", self.samples)?)
        } else {
            options.adaptive(count("adaptive max samples", self.adaptive_max)?, self.tolerance)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_runtime::SampleCount;

    fn base() -> NativeOptions {
        NativeOptions { samples: 32, adaptive_max: 0, tolerance: 0.0, seed: 9, sampler: 0, interval_level: 0.9 }
    }

    #[test]
    fn fixed_and_adaptive_counts_map_to_the_runtime() {
        let o = base().to_predict_options().unwrap();
        assert_eq!(o.samples, SampleCount::Fixed(32));
        assert_eq!((o.seed, o.sampler, o.interval_level), (9, Sampler::LocalReparam, 0.9));
        let o =
            NativeOptions { adaptive_max: 100, tolerance: 0.01, sampler: 2, ..base() }.to_predict_options().unwrap();
        assert_eq!(o.samples, SampleCount::Adaptive { max: 100, tolerance: 0.01 });
        assert_eq!(o.sampler, Sampler::Mean);
        assert_eq!(
            NativeOptions { sampler: 3, ..base() }.to_predict_options().unwrap().sampler,
            Sampler::SharedWeights
        );
    }

    #[test]
    fn bad_counts_and_sampler_codes_are_rejected() {
        for bad in [
            NativeOptions { samples: 0, ..base() },
            NativeOptions { samples: -5, ..base() },
            NativeOptions { samples: BNN_MAX_SAMPLES + 1, ..base() },
            NativeOptions { adaptive_max: -1, ..base() },
            NativeOptions { sampler: 4, ..base() },
            NativeOptions { sampler: -1, ..base() },
        ] {
            assert!(matches!(bad.to_predict_options(), Err(BindingError::InvalidArgument(_))), "{bad:?}");
        }
    }
}
