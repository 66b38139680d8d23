//! [`Source`]: the PyTorch Bayesian-deep-learning libraries `bnn import` reads, and how each names a linear or
//! convolution layer's parameters and turns its scale parameter into a standard deviation.
//!
//! Read from each library's source (versions in the fixtures' script):
//! - bayesian-torch (IntelLabs) `LinearReparameterization` / `LinearFlipout`: `mu_weight`, `rho_weight`,
//!   `mu_bias`, `rho_bias`; sigma = log1p(exp(rho)); the prior is not saved (its buffers are not persistent).
//!   `Conv2dReparameterization` / `Conv2dFlipout`: `mu_kernel`, `rho_kernel` for the kernel, the same bias names.
//! - blitz-bayesian-pytorch `BayesianLinear`: `weight_mu`, `weight_rho`, `bias_mu`, `bias_rho`, and the copies its
//!   forward pass samples around, `weight_sampler.{mu,rho}` / `bias_sampler.{mu,rho}`, plus a noise buffer
//!   `*_sampler.eps_w`; sigma = log1p(exp(rho)). `BayesianConv2d` names its parameters the same way.
//! - torchbnn `BayesLinear`: `weight_mu`, `weight_log_sigma`, `bias_mu`, `bias_log_sigma`, and `weight_eps` /
//!   `bias_eps` noise buffers once frozen; sigma = exp(log_sigma). `BayesConv2d` names its parameters the same way.
//!
//! Plain `nn.Linear` and `nn.Conv2d` layers (`weight`, `bias`) are read for every source as deterministic layers.

use bnn_runtime::Named;

/// A library whose `state_dict` can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    BayesianTorch,
    Blitz,
    Torchbnn,
}

/// The names `bnn import --from` takes (`FromStr`, `Display`).
impl Named for Source {
    const WHAT: &'static str = "library";
    const NAMES: &'static [(Self, &'static str)] =
        &[(Source::BayesianTorch, "bayesian-torch"), (Source::Blitz, "blitz"), (Source::Torchbnn, "torchbnn")];
}
bnn_runtime::impl_named!(Source);

/// What one parameter of a linear layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    WeightMean,
    WeightScale,
    BiasMean,
    BiasScale,
    /// The sampler's own copy of a mean (blitz), preferred over the layer's.
    SamplerWeightMean,
    SamplerWeightScale,
    SamplerBiasMean,
    SamplerBiasScale,
    /// `nn.Linear`.
    PlainWeight,
    PlainBias,
    /// A buffer of last-drawn noise: carries no model information.
    Noise,
}

impl Source {
    /// Every parameter suffix of this library's Bayesian linear layer and of `nn.Linear`, with its role. The
    /// first entry of a role is the name an error message asks for when it is missing.
    fn table(self) -> &'static [(&'static str, Role)] {
        use Role::*;
        match self {
            Source::BayesianTorch => &[
                ("mu_weight", WeightMean),
                ("rho_weight", WeightScale),
                ("mu_bias", BiasMean),
                ("rho_bias", BiasScale),
                ("mu_kernel", WeightMean),
                ("rho_kernel", WeightScale),
                ("weight", PlainWeight),
                ("bias", PlainBias),
            ],
            Source::Blitz => &[
                ("weight_mu", WeightMean),
                ("weight_rho", WeightScale),
                ("bias_mu", BiasMean),
                ("bias_rho", BiasScale),
                ("weight_sampler.mu", SamplerWeightMean),
                ("weight_sampler.rho", SamplerWeightScale),
                ("bias_sampler.mu", SamplerBiasMean),
                ("bias_sampler.rho", SamplerBiasScale),
                ("weight_sampler.eps_w", Noise),
                ("bias_sampler.eps_w", Noise),
                ("weight", PlainWeight),
                ("bias", PlainBias),
            ],
            Source::Torchbnn => &[
                ("weight_mu", WeightMean),
                ("weight_log_sigma", WeightScale),
                ("bias_mu", BiasMean),
                ("bias_log_sigma", BiasScale),
                ("weight_eps", Noise),
                ("bias_eps", Noise),
                ("weight", PlainWeight),
                ("bias", PlainBias),
            ],
        }
    }

    /// Splits a full parameter name into module prefix and role (`fc1.weight_sampler.mu` → `fc1`, sampler weight
    /// mean); the longest matching suffix wins, so `weight_sampler.mu` is not read as a module `weight_sampler`.
    pub fn split(self, name: &str) -> Option<(&str, Role)> {
        self.table()
            .iter()
            .filter_map(|&(suffix, role)| match name.strip_suffix(suffix)? {
                "" => Some(("", suffix.len(), role)),
                prefix => prefix.strip_suffix('.').map(|module| (module, suffix.len(), role)),
            })
            .max_by_key(|&(_, len, _)| len)
            .map(|(module, _, role)| (module, role))
    }

    /// The suffix this library gives a role (for messages about missing parameters).
    pub fn suffix_of(self, role: Role) -> &'static str {
        self.table().iter().find(|(_, r)| *r == role).map_or("?", |(s, _)| s)
    }

    /// The standard deviation a scale parameter stands for, computed in f64 (PyTorch's f32 `log1p(exp(rho))`
    /// overflows to infinity above rho ≈ 88; this does not).
    pub fn sigma(self, scale: f32) -> f32 {
        let s = f64::from(scale);
        let sigma = match self {
            Source::BayesianTorch | Source::Blitz => {
                if s > 30.0 {
                    s + (-s).exp().ln_1p()
                } else {
                    s.exp().ln_1p()
                }
            }
            Source::Torchbnn => s.exp(),
        };
        sigma as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_transforms_follow_each_library() {
        let softplus = |x: f64| (1.0 + x.exp()).ln();
        for rho in [-10.0f32, -3.0, 0.0, 2.5] {
            let expected = softplus(f64::from(rho)) as f32;
            assert_eq!(Source::BayesianTorch.sigma(rho), expected);
            assert_eq!(Source::Blitz.sigma(rho), expected);
            assert_eq!(Source::Torchbnn.sigma(rho), f64::from(rho).exp() as f32);
        }
        assert_eq!(Source::Blitz.sigma(100.0), 100.0);
    }

    #[test]
    fn names_split_into_module_and_role_per_library() {
        assert_eq!(Source::BayesianTorch.split("fc1.rho_weight"), Some(("fc1", Role::WeightScale)));
        assert_eq!(Source::BayesianTorch.split("fc1.weight_rho"), None);
        assert_eq!(Source::Blitz.split("net.0.weight_sampler.mu"), Some(("net.0", Role::SamplerWeightMean)));
        assert_eq!(Source::Blitz.split("weight_mu"), Some(("", Role::WeightMean)));
        assert_eq!(Source::Torchbnn.split("fc2.weight_log_sigma"), Some(("fc2", Role::WeightScale)));
        assert_eq!(Source::Torchbnn.split("head.weight"), Some(("head", Role::PlainWeight)));
        assert_eq!(Source::Torchbnn.split("bn.running_mean"), None);
        assert_eq!(Source::Torchbnn.split("fc1xweight"), None);
        assert_eq!(Source::BayesianTorch.suffix_of(Role::BiasScale), "rho_bias");
    }
}
