//! Typed errors: [`ModelError`] for building, reading and validating models, [`PredictError`] for prediction.
//!
//! Every variant names what a user must fix: the tensor, the layer index or the metadata field, with the value
//! that was expected and the one that was found.

use crate::prelude::*;
use thiserror::Error;

/// Why a model could not be built, loaded or written.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum ModelError {
    /// The bytes are not a well-formed safetensors file (bad header length, bad JSON, offsets out of range, ...).
    #[error("malformed safetensors file: {0}")]
    MalformedFile(String),
    /// A required `__metadata__` key is absent.
    #[error("missing metadata key `{0}`")]
    MissingMetadata(&'static str),
    /// The file declares a format version this runtime does not read.
    #[error("unsupported format version `{found}` (this runtime reads version {supported})")]
    UnsupportedVersion { found: String, supported: u32 },
    /// The JSON model description could not be parsed.
    #[error("invalid model description in `{key}`: {message}")]
    InvalidDescription { key: &'static str, message: String },
    /// A layer names a kind this runtime does not know.
    #[error("layer {index}: unknown layer kind `{kind}`")]
    UnknownLayerKind { index: usize, kind: String },
    /// A layer's own fields are invalid (dropout rate outside [0, 1), zero size, unknown activation, ...).
    #[error("layer {index}: {message}")]
    InvalidLayer { index: usize, message: String },
    /// A layer's input size does not match the output size of what comes before it.
    #[error("layer {index}: expects {expected} inputs but the previous layer gives {found}")]
    LayerSizeMismatch { index: usize, expected: usize, found: usize },
    /// The model has no layer with weights.
    #[error("the model has no dense layer")]
    NoDenseLayer,
    /// The model's input shape is empty or too large.
    #[error("invalid input shape: {0}")]
    InvalidInputShape(String),
    /// A tensor the description requires is absent from the file.
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    /// The file holds a tensor the description does not account for.
    #[error("unexpected tensor `{0}`")]
    UnexpectedTensor(String),
    /// A sparse weight matrix's row pointers or column indices are inconsistent.
    #[error("sparse tensor `{name}`: {message}")]
    InvalidSparse { name: String, message: String },
    /// A tensor has the wrong shape.
    #[error("tensor `{name}`: expected shape {expected:?}, found {found:?}")]
    TensorShape { name: String, expected: Vec<usize>, found: Vec<usize> },
    /// A tensor is stored in a dtype other than F32, F16 or BF16.
    #[error("tensor `{name}`: unsupported dtype {dtype} (expected F32, F16 or BF16)")]
    UnsupportedDtype { name: String, dtype: String },
    /// A mean (or a deterministic weight) is NaN or infinite.
    #[error("tensor `{name}`: non-finite value {value} at element {element}")]
    NonFiniteValue { name: String, element: usize, value: f32 },
    /// A standard deviation is negative, NaN or infinite.
    #[error("tensor `{name}`: standard deviation must be finite and >= 0, found {value} at element {element}")]
    InvalidSigma { name: String, element: usize, value: f32 },
    /// The last layer's width does not fit the task (class count, regression outputs, heteroscedastic 2x).
    #[error("head inconsistent with the task: {0}")]
    HeadMismatch(String),
    /// The task description itself is invalid (fewer than 2 classes, non-positive noise, wrong label count, ...).
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// The input normalisation is invalid (wrong length, non-positive or non-finite std, ...).
    #[error("invalid input normalization: {0}")]
    InvalidNormalization(String),
    /// The calibration block is out of range, or calibrates a model that is not a classifier.
    #[error("invalid calibration: {0}")]
    InvalidCalibration(String),
    /// Reading or writing a file failed.
    #[error("i/o error on `{path}`: {message}")]
    Io { path: String, message: String },
}

/// Why a prediction could not be made.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum PredictError {
    /// The input has the wrong number of features.
    #[error("input has {found} features, the model expects {expected}")]
    InputLength { expected: usize, found: usize },
    /// A batch's flat buffer is not a whole number of inputs.
    #[error("batch buffer of {found} values is not a multiple of the input size {input_dim}")]
    BatchLength { input_dim: usize, found: usize },
    /// The input holds NaN or infinity.
    #[error("input feature {index} is not finite ({value})")]
    NonFiniteInput { index: usize, value: f32 },
    /// The options ask for no samples, or for an invalid tolerance or interval level.
    #[error("invalid prediction options: {0}")]
    InvalidOptions(String),
    /// The network produced NaN or infinity (overflow inside the model).
    #[error(
        "the model's computation overflowed (a non-finite value inside the network): the input is far outside \
         what the model can represent, so there is no prediction to trust"
    )]
    NonFiniteOutput,
}
