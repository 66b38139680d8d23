//! [`BindingError`]: every way a call from a host can fail, and the [`ErrorKind`] each maps to (a Java exception
//! class, a C status code).

use bnn_runtime::{ModelError, PredictError};
use thiserror::Error;

/// Why a call from Java or C failed.
#[derive(Debug, Error)]
pub enum BindingError {
    /// The model file or bytes could not be read or are not a valid model.
    #[error("invalid model: {0}")]
    Model(#[from] ModelError),
    /// The input or the options were rejected by the runtime.
    #[error("invalid prediction request: {0}")]
    Predict(#[from] PredictError),
    /// An argument was rejected before reaching the runtime (null, negative count, unknown sampler, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The handle was closed (or never opened).
    #[error("the model is closed")]
    Closed,
    /// A Rust panic was caught at the boundary; the message is the panic's.
    #[error("internal error (panic caught at the boundary): {0}")]
    Panic(String),
    /// A JNI call itself failed (a Java exception may be pending).
    #[error("JNI call failed: {0}")]
    Jni(#[from] jni::errors::Error),
}

/// The host-facing class of a [`BindingError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Java `IllegalArgumentException`; C `BNN_ERROR_INVALID_ARGUMENT`.
    InvalidArgument,
    /// Java `IOException`; C `BNN_ERROR_MODEL`.
    Model,
    /// Java `IllegalStateException`; C `BNN_ERROR_NULL_HANDLE`.
    Closed,
    /// Java `RuntimeException`; C `BNN_ERROR_INTERNAL`.
    Internal,
}

impl BindingError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BindingError::Model(_) => ErrorKind::Model,
            BindingError::Predict(_) | BindingError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            BindingError::Closed => ErrorKind::Closed,
            BindingError::Panic(_) | BindingError::Jni(_) => ErrorKind::Internal,
        }
    }

    /// A [`BindingError::Panic`] from a caught panic's payload.
    pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(s) => (*s).to_string(),
                Err(_) => "non-string panic payload".to_string(),
            },
        };
        BindingError::Panic(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_documented_mapping() {
        assert_eq!(BindingError::from(ModelError::NoDenseLayer).kind(), ErrorKind::Model);
        assert_eq!(BindingError::from(PredictError::NonFiniteOutput).kind(), ErrorKind::InvalidArgument);
        assert_eq!(BindingError::InvalidArgument("x".into()).kind(), ErrorKind::InvalidArgument);
        assert_eq!(BindingError::Closed.kind(), ErrorKind::Closed);
    }

    #[test]
    fn panic_payloads_keep_their_message() {
        let caught = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(
            BindingError::from_panic(caught).to_string(),
            "internal error (panic caught at the boundary): boom 7"
        );
        let caught = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert!(BindingError::from_panic(caught).to_string().ends_with("static"));
    }
}
