//! [`BnnModel`]: the heap-allocated model behind a C pointer or a Java `long` handle, with the only code that
//! creates, borrows and frees it.
//!
//! A handle is shared, not owned, while predictions run: the runtime's `Model` is `Send + Sync` and each call
//! makes its own `Predictor`, so any number of threads may predict through one handle at once. Freeing must not
//! race with those calls; the Java wrapper guarantees it with a read-write lock, C callers by contract.

use crate::c_api::{BNN_TASK_CLASSIFICATION, BNN_TASK_REGRESSION};
use crate::BindingError;
use bnn_runtime::{Model, Task};

/// Opaque to hosts: a loaded, validated model.
pub struct BnnModel {
    model: Model,
}

impl BnnModel {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BindingError> {
        Ok(Self { model: Model::from_bytes(bytes)? })
    }

    pub fn from_path(path: &str) -> Result<Self, BindingError> {
        Ok(Self { model: Model::load(path)? })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// `BNN_TASK_CLASSIFICATION` or `BNN_TASK_REGRESSION`, which are also the ordinals of Java's `io.bnnedge.Task`.
    pub fn task_code(&self) -> i32 {
        match self.model.task() {
            Task::Classification { .. } => BNN_TASK_CLASSIFICATION,
            Task::Regression { .. } => BNN_TASK_REGRESSION,
        }
    }

    /// Classes of a classifier, or outputs of a regression model.
    pub fn output_dim(&self) -> usize {
        match self.model.task() {
            Task::Classification { classes, .. } => *classes,
            Task::Regression { outputs, .. } => *outputs,
        }
    }

    /// Moves the model to the heap; the pointer stays valid until [`BnnModel::release`].
    pub fn into_raw(self) -> *mut BnnModel {
        Box::into_raw(Box::new(self))
    }

    /// The model behind a handle; a null handle is [`BindingError::Closed`].
    ///
    /// # Safety
    /// `handle` is null or came from [`BnnModel::into_raw`] and has not been released.
    pub unsafe fn borrow<'a>(handle: *const BnnModel) -> Result<&'a BnnModel, BindingError> {
        // SAFETY: by the caller's contract a non-null handle points to a live BnnModel.
        unsafe { handle.as_ref() }.ok_or(BindingError::Closed)
    }

    /// Frees a handle; null is ignored.
    ///
    /// # Safety
    /// `handle` is null or came from [`BnnModel::into_raw`], has not been released, and no call uses it any more.
    pub unsafe fn release(handle: *mut BnnModel) {
        if !handle.is_null() {
            // SAFETY: by the caller's contract we hold the only remaining use of a Box-allocated model.
            drop(unsafe { Box::from_raw(handle) });
        }
    }
}
