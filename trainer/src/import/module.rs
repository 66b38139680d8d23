//! Groups a state dict's parameters by module (`fc1.mu_weight` → module `fc1`) and assembles each module into
//! one runtime layer: a `BayesianDense` or `BayesianConv2d` from means and scales, a `Dense` or `Conv2d` from a
//! plain `nn.Linear` or `nn.Conv2d`.

use super::source::{Role, Source};
use super::state::Parameter;
use super::ImportError;
use bnn_runtime::{BayesianConv2d, BayesianDense, Conv2d, ConvGeometry, Dense, Layer, Named};
use std::collections::BTreeMap;

/// The parameters of one module, by role.
#[derive(Debug, Default)]
pub struct Module {
    pub name: String,
    params: BTreeMap<Role, Parameter>,
}

/// Splits every parameter name into module and suffix and groups them; noise buffers are dropped.
pub fn group_modules(source: Source, params: Vec<Parameter>) -> Result<Vec<Module>, ImportError> {
    let mut modules: BTreeMap<String, Module> = BTreeMap::new();
    for param in params {
        let (module, role) = source
            .split(&param.name)
            .ok_or_else(|| ImportError::UnknownParameter { name: param.name.clone(), source_name: source.name() })?;
        if role == Role::Noise {
            continue;
        }
        let module = module.to_string();
        modules
            .entry(module.clone())
            .or_insert_with(|| Module { name: module, ..Default::default() })
            .params
            .insert(role, param);
    }
    Ok(modules.into_values().collect())
}

/// The layer a module must become, from the architecture.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Dense { out: usize, inp: usize },
    Conv(ConvGeometry),
}

impl Target {
    /// The weight shape this layer needs.
    pub(super) fn weight_shape(&self) -> Vec<usize> {
        match self {
            Target::Dense { out, inp } => vec![*out, *inp],
            Target::Conv(g) => g.weight_shape().to_vec(),
        }
    }
    fn outputs(&self) -> usize {
        match self {
            Target::Dense { out, .. } => *out,
            Target::Conv(g) => g.out_channels,
        }
    }
}

impl Module {
    /// The shape of the module's weight: `[out, in]` for a linear layer, `[out, in / groups, kh, kw]` for a
    /// convolution.
    pub fn shape(&self) -> Result<&[usize], ImportError> {
        let weight = [Role::PlainWeight, Role::SamplerWeightMean, Role::WeightMean]
            .iter()
            .find_map(|r| self.params.get(r))
            .ok_or_else(|| self.missing("weight"))?;
        match weight.shape.len() {
            2 | 4 => Ok(&weight.shape),
            _ => Err(ImportError::NotAMatrix { name: weight.name.clone(), found: weight.shape.clone() }),
        }
    }

    fn missing(&self, what: &str) -> ImportError {
        let prefix = if self.name.is_empty() { String::new() } else { format!("{}.", self.name) };
        ImportError::MissingParameter { name: format!("{prefix}{what}") }
    }

    fn take(&self, role: Role, shape: &[usize]) -> Result<Option<&Parameter>, ImportError> {
        match self.params.get(&role) {
            Some(p) if p.shape != shape => Err(ImportError::ParameterShape {
                name: p.name.clone(),
                expected: shape.to_vec(),
                found: p.shape.clone(),
            }),
            other => Ok(other),
        }
    }

    /// The parameter the library's forward pass uses for a role: the sampler's copy when the library keeps one
    /// (blitz), else the layer's own. When both exist and differ, a note says by how much.
    fn effective(
        &self,
        own: Role,
        sampler: Role,
        shape: &[usize],
        notes: &mut Vec<String>,
    ) -> Result<Option<&Parameter>, ImportError> {
        match (self.take(own, shape)?, self.take(sampler, shape)?) {
            (Some(a), Some(b)) => {
                let gap = a.values.iter().zip(&b.values).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                if gap > 0.0 {
                    notes.push(format!(
                        "`{}` differs from `{}` by up to {gap:.3e}; using `{}`, the copy the forward pass samples around",
                        a.name, b.name, b.name
                    ));
                }
                Ok(Some(b))
            }
            (a, b) => Ok(b.or(a)),
        }
    }

    /// The runtime layer this module becomes: `target`'s kind, with the module's parameters (whose shapes must be
    /// the target's).
    pub fn to_layer(&self, source: Source, target: Target, notes: &mut Vec<String>) -> Result<Layer, ImportError> {
        let (shape, out) = (target.weight_shape(), target.outputs());
        let plain = self.params.contains_key(&Role::PlainWeight) || self.params.contains_key(&Role::PlainBias);
        let bayesian = self.params.keys().any(|r| !matches!(r, Role::PlainWeight | Role::PlainBias));
        if plain && bayesian {
            return Err(ImportError::MixedLayer { module: self.name.clone() });
        }
        if plain {
            let weight = self.take(Role::PlainWeight, &shape)?.ok_or_else(|| self.missing("weight"))?.values.clone();
            let bias = self.take(Role::PlainBias, &[out])?.map_or_else(|| vec![0.0; out], |b| b.values.clone());
            return Ok(match target {
                Target::Dense { out, inp } => Layer::Dense(Dense::new(inp, out, weight, bias)),
                Target::Conv(g) => Layer::Conv2d(Conv2d::new(g, weight, bias)),
            });
        }
        let w_mu = self.effective(Role::WeightMean, Role::SamplerWeightMean, &shape, notes)?;
        let w_scale = self.effective(Role::WeightScale, Role::SamplerWeightScale, &shape, notes)?;
        let w_mu = w_mu.ok_or_else(|| self.missing(source.suffix_of(Role::WeightMean)))?.values.clone();
        let w_scale = w_scale.ok_or_else(|| self.missing(source.suffix_of(Role::WeightScale)))?;
        let b_mu = self.effective(Role::BiasMean, Role::SamplerBiasMean, &[out], notes)?;
        let b_scale = self.effective(Role::BiasScale, Role::SamplerBiasScale, &[out], notes)?;
        let (b_mu, b_sigma) = match (b_mu, b_scale) {
            (Some(m), Some(s)) => (m.values.clone(), s.values.iter().map(|&r| source.sigma(r)).collect()),
            (None, None) => (vec![0.0; out], vec![0.0; out]), // a layer built with bias=False
            (Some(_), None) => return Err(self.missing(source.suffix_of(Role::BiasScale))),
            (None, Some(_)) => return Err(self.missing(source.suffix_of(Role::BiasMean))),
        };
        let w_sigma = w_scale.values.iter().map(|&r| source.sigma(r)).collect();
        Ok(match target {
            Target::Dense { out, inp } => {
                Layer::BayesianDense(BayesianDense::new(inp, out, w_mu, w_sigma, b_mu, b_sigma))
            }
            Target::Conv(g) => Layer::BayesianConv2d(BayesianConv2d::new(g, w_mu, w_sigma, b_mu, b_sigma)),
        })
    }
}
