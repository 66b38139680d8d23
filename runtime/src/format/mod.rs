//! The on-disk format (see `runtime/FORMAT.md`): a safetensors file whose metadata describes the model.
//!
//! This module is the only place that knows the format: the loader ([`Model::from_bytes`](crate::Model::from_bytes)),
//! the [`ModelWriter`] the trainer uses, and the tensor encodings.

#[cfg(feature = "std")]
mod atomic;
mod description;
pub(crate) mod names;
mod reader;
mod tensor;
mod writer;

#[cfg(feature = "std")]
pub use atomic::write_atomically;
pub use tensor::StorageDtype;
pub use writer::ModelWriter;

/// The format version this runtime writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Metadata key holding [`FORMAT_VERSION`] as decimal text.
pub const VERSION_KEY: &str = "bnn.format_version";
/// Metadata key holding the JSON model description.
pub const MODEL_KEY: &str = "bnn.model";
