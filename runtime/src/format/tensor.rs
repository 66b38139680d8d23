//! Tensor encodings: f32, f16 and bf16 little-endian storage, decoded to f32 at load.

use crate::error::ModelError;
use crate::prelude::*;
use alloc::borrow::Cow;
use half::{bf16, f16};
use safetensors::tensor::{Dtype, TensorView, View};

/// How tensor values are stored in the file. Every tensor of a file uses the same dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageDtype {
    /// 4 bytes per value, exact.
    #[default]
    F32,
    /// 2 bytes per value, 11-bit significand, range ±65504.
    F16,
    /// 2 bytes per value, 8-bit significand, the f32 range.
    Bf16,
}

impl StorageDtype {
    pub(crate) fn safetensors_dtype(self) -> Dtype {
        match self {
            StorageDtype::F32 => Dtype::F32,
            StorageDtype::F16 => Dtype::F16,
            StorageDtype::Bf16 => Dtype::BF16,
        }
    }
}

/// A tensor ready to be written.
pub(crate) struct EncodedTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl EncodedTensor {
    pub(crate) fn new(values: &[f32], shape: Vec<usize>, dtype: StorageDtype) -> Self {
        let bytes = match dtype {
            StorageDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            StorageDtype::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
            StorageDtype::Bf16 => values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect(),
        };
        Self { dtype: dtype.safetensors_dtype(), shape, bytes }
    }
}

impl EncodedTensor {
    /// Sparse indices: u16 when `narrow`, else u32.
    pub(crate) fn indices(values: &[u32], narrow: bool) -> Self {
        let (dtype, bytes) = if narrow {
            (Dtype::U16, values.iter().flat_map(|v| (*v as u16).to_le_bytes()).collect())
        } else {
            (Dtype::U32, values.iter().flat_map(|v| v.to_le_bytes()).collect())
        };
        Self { dtype, shape: vec![values.len()], bytes }
    }
}

impl View for &EncodedTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Checks a stored tensor's dtype and shape and decodes it to f32.
pub(crate) fn decode(name: &str, view: &TensorView<'_>, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
    let dtype = view.dtype();
    if !matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
        return Err(ModelError::UnsupportedDtype { name: name.into(), dtype: format!("{dtype:?}") });
    }
    check_shape(name, view, shape)?;
    let data = view.data();
    Ok(match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        _ => data.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
    })
}

/// Checks a stored index tensor (U16 or U32) and its shape, and widens it to u32.
pub(crate) fn decode_indices(name: &str, view: &TensorView<'_>, shape: &[usize]) -> Result<Vec<u32>, ModelError> {
    let dtype = view.dtype();
    if !matches!(dtype, Dtype::U16 | Dtype::U32) {
        return Err(ModelError::UnsupportedDtype {
            name: name.into(),
            dtype: format!("{dtype:?} (expected U16 or U32)"),
        });
    }
    check_shape(name, view, shape)?;
    let data = view.data();
    Ok(match dtype {
        Dtype::U16 => data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as u32).collect(),
        _ => data.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
    })
}

fn check_shape(name: &str, view: &TensorView<'_>, shape: &[usize]) -> Result<(), ModelError> {
    if view.shape() != shape {
        return Err(ModelError::TensorShape {
            name: name.into(),
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    Ok(())
}
