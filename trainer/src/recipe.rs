//! Recipes: a TOML file that describes a training run completely (data, model, prior, likelihood,
//! optimisation, export), with defaults for everything but the data source.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::TrainError;

/// A complete training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub data: DataSpec,
    #[serde(default)]
    pub model: ModelSpec,
    #[serde(default)]
    pub prior: PriorSpec,
    #[serde(default)]
    pub likelihood: LikelihoodSpec,
    #[serde(default)]
    pub training: TrainingSpec,
    #[serde(default)]
    pub export: ExportSpec,
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    /// MNIST in IDX format (gzipped or not). The directory comes from `--data`, else `BNN_MNIST_DIR`, else `dir`.
    Mnist {
        #[serde(default)]
        dir: Option<String>,
        /// Use only the first `train_limit` training images (for quick runs and tests).
        #[serde(default)]
        train_limit: Option<usize>,
        #[serde(default)]
        test_limit: Option<usize>,
        #[serde(default = "default_global")]
        normalize: NormalizeSpec,
    },
    /// A CSV file with a header row: every column but `target` is a feature.
    Csv {
        path: String,
        target: String,
        #[serde(default = "default_test_fraction")]
        test_fraction: f32,
        #[serde(default = "default_per_feature")]
        normalize: NormalizeSpec,
    },
    /// A built-in synthetic set.
    Synthetic {
        name: SyntheticSet,
        #[serde(default = "default_train_points")]
        train_points: usize,
        #[serde(default = "default_test_points")]
        test_points: usize,
        #[serde(default = "default_per_feature")]
        normalize: NormalizeSpec,
    },
}

/// The built-in synthetic sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyntheticSet {
    /// Blundell et al. (2015): y = x + 0.3 sin(2π(x+ε)) + 0.3 sin(4π(x+ε)) + ε, x ~ U[0, 0.5], ε ~ N(0, 0.02)
    /// read as variance 0.02 (standard deviation 0.1414).
    Curve,
    /// y = sin(x) + ε with ε ~ N(0, (0.05 + 0.1 |x|)^2), x ~ U[-3, 3]: noise that grows with |x|.
    Heteroscedastic,
    /// Two interleaving half circles, two classes, noise N(0, 0.1^2).
    TwoMoons,
    /// 8×8 one-channel images (`1x8x8` in `model.arch`) of a horizontal (class 0) or vertical (class 1) bar at a
    /// random row or column, pixel noise N(0, 0.3^2): the smallest task for a convolutional network.
    Bars,
}

/// How inputs are standardised (the statistics come from the training split and are stored in the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalizeSpec {
    /// No normalisation.
    None,
    /// One mean and standard deviation over all features (right for pixels).
    Global,
    /// A mean and standard deviation per feature.
    PerFeature,
}

fn default_global() -> NormalizeSpec {
    NormalizeSpec::Global
}
fn default_per_feature() -> NormalizeSpec {
    NormalizeSpec::PerFeature
}
fn default_test_fraction() -> f32 {
    0.2
}
fn default_train_points() -> usize {
    256
}
fn default_test_points() -> usize {
    256
}

/// Which kind of network to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Bayes by Backprop: every weight has a Gaussian posterior.
    #[default]
    Bayesian,
    /// Point-estimate weights.
    Deterministic,
    /// Point-estimate weights with dropout kept on at prediction (Gal & Ghahramani 2016).
    McDropout,
}

/// Network architecture and initialisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    pub kind: ModelKind,
    /// Hidden layer widths; input and output sizes come from the data and the likelihood.
    pub hidden: Vec<usize>,
    /// The input and the hidden stages in `bnn import --arch`'s grammar (`crate::arch`), in place of `hidden`:
    /// `"1x28x28-conv6k5p2-maxpool2-conv16k5-maxpool2-flatten-120-84"` is LeNet-5 without its output layer,
    /// which, as with `hidden`, comes from the data and the likelihood.
    pub arch: Option<String>,
    pub activation: bnn_runtime::Activation,
    /// Dropout rate before each hidden dense layer's output is used (MC-dropout models).
    pub dropout: f32,
    /// Initial means ~ N(0, (mu_init_scale / sqrt(fan_in))^2).
    pub mu_init_scale: f32,
    /// Initial rho of every Bayesian parameter (sigma = softplus(rho); -5 gives sigma ≈ 0.0067).
    pub rho_init: f32,
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            kind: ModelKind::Bayesian,
            hidden: vec![50],
            arch: None,
            activation: bnn_runtime::Activation::Relu,
            dropout: 0.0,
            mu_init_scale: 1.0,
            rho_init: -5.0,
        }
    }
}

/// The prior over Bayesian weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PriorSpec {
    /// N(0, sigma^2), with a closed-form KL.
    Gaussian { sigma: f32 },
    /// pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2), with a Monte-Carlo KL (Blundell et al. 2015, eq. 7).
    ScaleMixture { pi: f32, sigma1: f32, sigma2: f32 },
}

impl Default for PriorSpec {
    fn default() -> Self {
        PriorSpec::Gaussian { sigma: 1.0 }
    }
}

/// The likelihood, which also fixes the task of the exported model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LikelihoodSpec {
    /// Softmax over the outputs.
    #[default]
    Categorical,
    /// Gaussian with a fixed noise standard deviation, or, with `learn = true`, one learned from `sigma`.
    Gaussian {
        sigma: f32,
        #[serde(default)]
        learn: bool,
    },
    /// Gaussian whose mean and scale the network outputs.
    Heteroscedastic,
}

/// The gradient estimator for Bayesian layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// Local reparameterization (Kingma et al. 2015): sample pre-activations; lower variance, faster.
    #[default]
    LocalReparam,
    /// One weight sample per minibatch, shared by its examples (Blundell et al. 2015).
    WeightSampling,
}

/// How the KL term is spread over the minibatches of an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KlWeighting {
    /// pi_i = 1 / M for each of the M minibatches.
    #[default]
    Uniform,
    /// pi_i = 2^(M-i) / (2^M - 1) (Blundell et al. 2015, section 3.4).
    Blundell,
}

/// Optimisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSpec {
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam step size.
    pub learning_rate: f64,
    /// Multiply the step size by this factor after each epoch.
    pub lr_decay: f64,
    pub estimator: Estimator,
    pub kl_weighting: KlWeighting,
    /// Scale of the KL term (beta = 1 is the ELBO).
    pub kl_scale: f64,
    /// Ramp the KL weight linearly from 0 to `kl_scale` over this many epochs.
    pub kl_warmup_epochs: usize,
    /// L2 penalty `weight_decay / 2 * sum w^2` added to the per-example loss of deterministic and MC-dropout
    /// weights (the gradient is `weight_decay * w`, as with PyTorch's `weight_decay`).
    pub weight_decay: f64,
    pub seed: u64,
    /// Monte-Carlo samples for the per-epoch test (and validation) metrics.
    pub eval_samples: usize,
    /// Hold out this many training examples (a seeded draw) as a validation set: every epoch reports its
    /// metrics, and the exported model is the epoch with the lowest validation NLL. The test set never chooses
    /// anything. 0: no validation set; the last epoch is exported.
    pub validation: usize,
    /// With a validation set: stop once this many epochs have passed without a lower validation NLL (0: never).
    pub patience: usize,
    /// Data augmentation: every time a training image is drawn into a minibatch it is moved by a whole-pixel
    /// offset drawn uniformly from `[-shift_pixels, shift_pixels]` along each axis, blank pixels moving in
    /// (`data::augment`; MNIST or the bars set, `normalize` global or none). Validation and test images are
    /// never moved. 0: off.
    pub shift_pixels: usize,
}

impl Default for TrainingSpec {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 128,
            learning_rate: 1e-3,
            lr_decay: 1.0,
            estimator: Estimator::LocalReparam,
            kl_weighting: KlWeighting::Uniform,
            kl_scale: 1.0,
            kl_warmup_epochs: 0,
            weight_decay: 0.0,
            seed: 1,
            eval_samples: 10,
            validation: 0,
            patience: 0,
            shift_pixels: 0,
        }
    }
}

/// How the model is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportSpec {
    /// `f32`, `f16` or `bf16`.
    pub dtype: String,
}

impl Default for ExportSpec {
    fn default() -> Self {
        Self { dtype: "f32".into() }
    }
}

impl Recipe {
    /// Parses and validates a recipe.
    pub fn from_toml(text: &str) -> Result<Recipe, TrainError> {
        let recipe: Recipe = toml::from_str(text).map_err(|e| TrainError::Recipe(e.to_string()))?;
        recipe.validate()?;
        Ok(recipe)
    }

    pub fn load(path: &Path) -> Result<Recipe, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        Recipe::from_toml(&text)
    }

    /// Checks the ranges a TOML type cannot express.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Recipe(m));
        let t = &self.training;
        if t.batch_size == 0 || t.epochs == 0 || t.eval_samples == 0 {
            return bad("training.batch_size, training.epochs and training.eval_samples must be > 0".into());
        }
        if !(t.learning_rate > 0.0 && t.learning_rate.is_finite() && t.lr_decay > 0.0 && t.lr_decay <= 1.0) {
            return bad("training.learning_rate must be > 0 and training.lr_decay in (0, 1]".into());
        }
        if !(t.kl_scale >= 0.0 && t.weight_decay >= 0.0) {
            return bad("training.kl_scale and training.weight_decay must be >= 0".into());
        }
        if t.patience > 0 && t.validation == 0 {
            return bad("training.patience needs a validation set (training.validation > 0)".into());
        }
        if self.model.hidden.contains(&0) {
            return bad("model.hidden widths must be > 0".into());
        }
        if let Some(text) = &self.model.arch {
            let arch =
                crate::arch::Architecture::parse(text).map_err(|e| TrainError::Recipe(format!("model.arch {e}")))?;
            if self.model.hidden != ModelSpec::default().hidden && !self.model.hidden.is_empty() {
                return bad("give the network by model.arch or by model.hidden, not both".into());
            }
            if arch.stages.iter().any(|s| matches!(s, crate::arch::Stage::Dense(0))) {
                return bad("model.arch widths must be > 0".into());
            }
        }
        if !(0.0..1.0).contains(&self.model.dropout) {
            return bad(format!("model.dropout must lie in [0, 1), found {}", self.model.dropout));
        }
        match self.prior {
            PriorSpec::Gaussian { sigma } if !(sigma > 0.0 && sigma.is_finite()) => {
                return bad(format!("prior.sigma must be > 0, found {sigma}"))
            }
            PriorSpec::ScaleMixture { pi, sigma1, sigma2 }
                if !((0.0..=1.0).contains(&pi)
                    && sigma1 > 0.0
                    && sigma2 > 0.0
                    && sigma1.is_finite()
                    && sigma2.is_finite()) =>
            {
                return bad("prior: pi must lie in [0, 1] and sigma1, sigma2 must be > 0".into())
            }
            _ => {}
        }
        if let LikelihoodSpec::Gaussian { sigma, .. } = self.likelihood {
            if !(sigma > 0.0 && sigma.is_finite()) {
                return bad(format!("likelihood.sigma must be > 0, found {sigma}"));
            }
        }
        if let Err(e) = self.export.dtype.parse::<bnn_runtime::StorageDtype>() {
            return bad(format!("export.dtype: {e}"));
        }
        if let DataSpec::Csv { test_fraction, .. } = self.data {
            if !(0.0..1.0).contains(&test_fraction) {
                return bad("data.test_fraction must lie in [0, 1)".into());
            }
        }
        let images_normalised_alike = match self.data {
            DataSpec::Mnist { normalize, .. } | DataSpec::Synthetic { name: SyntheticSet::Bars, normalize, .. } => {
                normalize != NormalizeSpec::PerFeature
            }
            _ => false,
        };
        if t.shift_pixels > 0 && !images_normalised_alike {
            return bad(
                "training.shift_pixels moves pixels: it needs images (MNIST or the bars set) normalised alike \
                 (normalize = \"global\" or \"none\")"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_recipe_takes_defaults_and_bad_values_are_rejected() {
        let r = Recipe::from_toml("[data]\nsource = \"synthetic\"\nname = \"curve\"\n").unwrap();
        assert_eq!(r.training.estimator, Estimator::LocalReparam);
        assert_eq!(r.model.kind, ModelKind::Bayesian);
        for bad in [
            "[data]\nsource = \"synthetic\"\nname = \"curve\"\n[training]\nbatch_size = 0\n",
            "[data]\nsource = \"synthetic\"\nname = \"curve\"\n[prior]\nkind = \"gaussian\"\nsigma = -1.0\n",
            "[data]\nsource = \"synthetic\"\nname = \"nope\"\n",
            "[data]\nsource = \"synthetic\"\nname = \"curve\"\n[model]\nhiden = [3]\n",
            "[data]\nsource = \"synthetic\"\nname = \"curve\"\n[export]\ndtype = \"int8\"\n",
            "[data]\nsource = \"synthetic\"\nname = \"curve\"\n[training]\nshift_pixels = 2\n",
            "[data]\nsource = \"mnist\"\nnormalize = \"per_feature\"\n[training]\nshift_pixels = 2\n",
        ] {
            assert!(matches!(Recipe::from_toml(bad), Err(TrainError::Recipe(_))), "{bad}");
        }
    }
}
