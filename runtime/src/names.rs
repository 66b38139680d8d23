//! The names of the runtime's choices as users type them (`f16`, `local-reparam`, `relu`): `FromStr` and
//! `Display` for [`StorageDtype`], [`Sampler`] and [`Activation`], one table each, so that command lines,
//! bindings and configuration files parse them the same way.

use crate::format::StorageDtype;
use crate::layers::Activation;
use crate::prelude::*;
use crate::sample::Sampler;
use core::fmt;
use core::str::FromStr;

/// A name that is not one of a choice's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{found}` (use {expected})")]
pub struct UnknownName {
    what: &'static str,
    found: String,
    expected: String,
}

/// Each value with its name.
trait Named: Sized + Copy + PartialEq + 'static {
    const WHAT: &'static str;
    const NAMES: &'static [(Self, &'static str)];

    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(v, _)| *v == self).map(|(_, n)| *n).expect("every value is named")
    }

    fn parse_name(s: &str) -> Result<Self, UnknownName> {
        Self::NAMES.iter().find(|(_, n)| *n == s).map(|(v, _)| *v).ok_or_else(|| UnknownName {
            what: Self::WHAT,
            found: s.to_string(),
            expected: Self::NAMES.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", "),
        })
    }
}

impl Named for StorageDtype {
    const WHAT: &'static str = "dtype";
    const NAMES: &'static [(Self, &'static str)] =
        &[(StorageDtype::F32, "f32"), (StorageDtype::F16, "f16"), (StorageDtype::Bf16, "bf16")];
}

impl Named for Sampler {
    const WHAT: &'static str = "sampler";
    const NAMES: &'static [(Self, &'static str)] = &[
        (Sampler::LocalReparam, "local-reparam"),
        (Sampler::WeightSampling, "weight-sampling"),
        (Sampler::Mean, "mean"),
    ];
}

impl Named for Activation {
    const WHAT: &'static str = "activation";
    const NAMES: &'static [(Self, &'static str)] = &[
        (Activation::Relu, "relu"),
        (Activation::Tanh, "tanh"),
        (Activation::Sigmoid, "sigmoid"),
        (Activation::Gelu, "gelu"),
        (Activation::Identity, "identity"),
    ];
}

macro_rules! by_name {
    ($($t:ty),*) => {$(
        impl FromStr for $t {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                <$t as Named>::parse_name(s)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}
by_name!(StorageDtype, Sampler, Activation);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Named + FromStr<Err = UnknownName> + fmt::Display + fmt::Debug>() {
        for (v, n) in T::NAMES {
            assert_eq!(v.to_string(), *n);
            assert_eq!(n.parse::<T>(), Ok(*v));
        }
        let err = "nope".parse::<T>().unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains(T::NAMES[0].1), "{err}");
    }

    #[test]
    fn every_name_round_trips_and_unknown_names_list_the_known_ones() {
        round_trips::<StorageDtype>();
        round_trips::<Sampler>();
        round_trips::<Activation>();
    }

    #[test]
    fn activation_names_are_the_file_formats() {
        // The model description stores activations through serde; the names must agree.
        for (a, n) in Activation::NAMES {
            assert_eq!(serde_json::to_value(a).unwrap(), serde_json::Value::String(n.to_string()));
        }
    }
}
