//! The aarch64 builds (phones: arm64-v8a). NEON and FMA are part of the aarch64 baseline, so the portable
//! kernels already compile to NEON here and the fused ones to single `fmla` instructions; [`neon`] adds
//! intrinsics where the compiler's code falls short: the 32-sample block products (a block row in eight 128-bit
//! registers) and the sliced sparse products.

mod neon;

pub(super) use neon::{block_product_csr, block_product_dense, local_reparam_csr, sliced_group};
