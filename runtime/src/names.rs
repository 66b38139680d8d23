//! The names of the runtime's choices as users type them (`f16`, `local-reparam`, `relu`): `FromStr` and
//! `Display` for [`StorageDtype`], [`Sampler`] and [`Activation`], one table each, so that command lines,
//! bindings and configuration files parse them the same way. [`Named`] and [`impl_named!`](crate::impl_named)
//! give other crates' choices (the trainer's pruning criteria) the same names and errors.

use crate::format::StorageDtype;
use crate::layers::Activation;
use crate::prelude::*;
use crate::sample::Sampler;

/// A name that is not one of a choice's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{found}` (use {expected})")]
pub struct UnknownName {
    what: &'static str,
    found: String,
    expected: String,
}

/// A choice whose every value has one name; [`impl_named!`](crate::impl_named) derives `FromStr` and `Display`
/// from the table.
pub trait Named: Sized + Copy + PartialEq + 'static {
    /// What the choice is, for error messages ("dtype").
    const WHAT: &'static str;
    /// Every value with its name.
    const NAMES: &'static [(Self, &'static str)];

    /// The value's name.
    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(v, _)| *v == self).map(|(_, n)| *n).expect("every value is named")
    }

    /// The value named `s`.
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
        (Sampler::SharedWeights, "shared-weights"),
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

/// `FromStr` (error [`UnknownName`]) and `Display` for types that implement [`Named`].
#[macro_export]
macro_rules! impl_named {
    ($($t:ty),*) => {$(
        impl ::core::str::FromStr for $t {
            type Err = $crate::UnknownName;
            fn from_str(s: &str) -> ::core::result::Result<Self, $crate::UnknownName> {
                <$t as $crate::Named>::parse_name(s)
            }
        }
        impl ::core::fmt::Display for $t {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str($crate::Named::name(*self))
            }
        }
    )*};
}
crate::impl_named!(StorageDtype, Sampler, Activation);

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt;
    use core::str::FromStr;

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
