//! The reference kernels in plain Rust. The single-sample products, softmax and entropies are never fused; the
//! block products and the Gaussian draws come unfused and fused (`FUSED`), and every instruction set's build
//! must give the bits of one of the two.

mod block;
mod columns;
mod conv;
mod dot;
mod gaussian;
mod lanes;
mod pool;
mod softmax;

#[cfg(any(all(feature = "std", target_arch = "x86_64"), all(target_arch = "aarch64", target_feature = "neon")))]
pub(crate) use block::H_SLICE_BYTES;
pub(crate) use block::{block_product_csr, block_product_dense, live_rows, madd};
pub(crate) use columns::ColumnWeights;
pub(crate) use conv::{conv2d_block, conv2d_block_pooled, ConvPlan};
pub(crate) use dot::{dot, gemv, sparse_dot};
pub(crate) use gaussian::{fill as fill_gaussian, LaneGenerator};
pub(crate) use lanes::{add_product, fold as fold_lanes, gemv_lanes, Lanes, INPUT_LANES};
pub(crate) use pool::pool2d_block;
pub(crate) use softmax::{entropies, softmax_entropies};
