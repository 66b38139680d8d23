//! [`ImportError`]: why a PyTorch `state_dict` could not be imported; each variant names the parameter or module.

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("not a readable safetensors state_dict: {0}")]
    Malformed(String),
    #[error("parameter `{name}`: unsupported dtype {dtype} (expected F32, F64, F16 or BF16)")]
    UnsupportedDtype { name: String, dtype: String },
    #[error("parameter `{name}` is not a {source_name} linear or convolution parameter (is --from right? only linear and convolution layers are imported)")]
    UnknownParameter { name: String, source_name: &'static str },
    #[error("missing parameter `{name}`")]
    MissingParameter { name: String },
    #[error("parameter `{name}`: expected shape {expected:?}, found {found:?}")]
    ParameterShape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("parameter `{name}`: a weight must be a matrix [out, in] or a kernel [out, in / groups, kh, kw], found shape {found:?}")]
    NotAMatrix { name: String, found: Vec<usize> },
    #[error("module `{module}` has both plain `weight`/`bias` and Bayesian parameters")]
    MixedLayer { module: String },
    #[error("layer order: {0}")]
    LayerOrder(String),
    #[error("architecture: {0}")]
    Architecture(String),
    #[error(transparent)]
    Model(#[from] bnn_runtime::ModelError),
}
