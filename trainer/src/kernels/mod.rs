//! The kernels of the fused CPU training step, on plain slices: the convolution of convolutional networks with
//! its backward pass ([`conv`]), branch-free element-wise math ([`math`]),
//! the instruction-set dispatch of the passes ([`isa`]), matrix products ([`matmul`]), the per-parameter-tensor
//! forward and backward-and-update passes of a Bayesian layer ([`posterior`]), and slice access to candle
//! tensors ([`tensor_values`]). The step's gradients are checked against candle's autograd of the composed
//! reference ops (`trainer/tests/fused_gradients.rs`).

pub mod conv;
pub mod isa;
pub mod math;
pub mod matmul;
pub mod posterior;
pub mod row_products;
pub mod tensor_values;
