//! The fused CPU passes of a Bayes-by-Backprop step, on plain slices: branch-free element-wise math
//! ([`math`]), the per-parameter-tensor forward and backward-and-update passes of a Bayesian layer
//! ([`posterior`]), and slice access to candle tensors ([`tensor_values`]). Their gradients are checked against
//! candle's autograd of the composed reference ops (`trainer/tests/fused_gradients.rs`).

pub mod isa;
pub mod math;
pub mod matmul;
pub mod posterior;
pub mod tensor_values;
