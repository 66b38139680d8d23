//! Tensor names: `layers.{index}.{weight|bias}.{mu|sigma}`, with `index` the layer's position in the list.

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
