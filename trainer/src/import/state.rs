//! Reads a PyTorch `state_dict` saved with `safetensors.torch.save_file` into named f32 parameters.

use super::ImportError;
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

/// One tensor of the state dict, converted to f32 (row-major).
#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Every tensor of the file, in name order.
pub fn read_state(bytes: &[u8]) -> Result<Vec<Parameter>, ImportError> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| ImportError::Malformed(e.to_string()))?;
    let mut names = file.names();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let view = file.tensor(name).map_err(|e| ImportError::Malformed(e.to_string()))?;
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
                Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
                    .collect(),
                Dtype::F16 => data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                Dtype::BF16 => data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                other => {
                    return Err(ImportError::UnsupportedDtype { name: name.to_string(), dtype: format!("{other:?}") })
                }
            };
            Ok(Parameter { name: name.to_string(), shape: view.shape().to_vec(), values })
        })
        .collect()
}
