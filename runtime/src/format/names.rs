//! Tensor names: `layers.{index}.{weight|bias}.{mu|sigma}`, with `index` the layer's position in the list.

use crate::prelude::*;

pub fn weight_mu(index: usize) -> String {
    format!("layers.{index}.weight.mu")
}
pub fn weight_sigma(index: usize) -> String {
    format!("layers.{index}.weight.sigma")
}
pub fn bias_mu(index: usize) -> String {
    format!("layers.{index}.bias.mu")
}
pub fn bias_sigma(index: usize) -> String {
    format!("layers.{index}.bias.sigma")
}
/// CSR row pointers of a sparse weight matrix.
pub fn weight_row_ptr(index: usize) -> String {
    format!("layers.{index}.weight.row_ptr")
}
/// CSR column indices of a sparse weight matrix.
pub fn weight_col_idx(index: usize) -> String {
    format!("layers.{index}.weight.col_idx")
}
