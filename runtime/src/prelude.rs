//! The `alloc` types that the standard prelude provides, imported explicitly so that the crate also builds
//! without `std` (feature `std` off).

pub(crate) use alloc::boxed::Box;
pub(crate) use alloc::string::{String, ToString};
pub(crate) use alloc::vec::Vec;
pub(crate) use alloc::{format, vec};
