//! 2-D pooling over NCHW images: the maximum or the mean of each window, channel by channel.

use crate::prelude::*;
use serde::{Deserialize, Serialize};

/// Which statistic of a window a [`Pool2d`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest value (padding never wins: padded positions are left out).
    Max,
    /// The mean over the whole window, padded positions counting as zeros (PyTorch's `AvgPool2d` default,
    /// `count_include_pad = True`).
    Avg,
}

/// Pooling with a `[height, width]` window, stride (the window by default) and padding (at most half the
/// window, as in PyTorch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolGeometry {
    pub kernel: [usize; 2],
    #[serde(default)]
    pub stride: Option<[usize; 2]>,
    #[serde(default)]
    pub padding: [usize; 2],
}

impl PoolGeometry {
    /// A window of `kernel` moved by its own size, without padding.
    pub fn new(kernel: [usize; 2]) -> Self {
        Self { kernel, stride: None, padding: [0, 0] }
    }
    pub fn stride(mut self, stride: [usize; 2]) -> Self {
        self.stride = Some(stride);
        self
    }
    pub fn padding(mut self, padding: [usize; 2]) -> Self {
        self.padding = padding;
        self
    }
    /// The stride: the one given, else the window.
    pub fn step(&self) -> [usize; 2] {
        self.stride.unwrap_or(self.kernel)
    }

    /// Whether these windows tile an image of `[h, w]`: 2 x 2, stride 2, no padding, even sides (each input in
    /// exactly one window).
    pub(crate) fn tiles_in_pairs(&self, [h, w]: [usize; 2]) -> bool {
        self.kernel == [2, 2] && self.step() == [2, 2] && self.padding == [0, 0] && [h % 2, w % 2] == [0, 0]
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.kernel.contains(&0) || self.step().contains(&0) {
            return Err(format!("pooling window and stride must be positive: {self:?}"));
        }
        if (0..2).any(|d| self.padding[d] > self.kernel[d] / 2) {
            return Err(format!("pooling padding {:?} exceeds half the window {:?}", self.padding, self.kernel));
        }
        Ok(())
    }

    /// The output height and width for an input of `[height, width]`, or why there is none.
    pub fn output_size(&self, input: [usize; 2]) -> Result<[usize; 2], String> {
        let mut out = [0; 2];
        for d in 0..2 {
            match self.padding[d].checked_mul(2).and_then(|p| p.checked_add(input[d])) {
                Some(p) if self.kernel[d] <= p => out[d] = (p - self.kernel[d]) / self.step()[d] + 1,
                _ => {
                    return Err(format!(
                        "a {:?} pooling window does not fit a {}x{} input",
                        self.kernel, input[0], input[1]
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// A pooling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    pub kind: PoolKind,
    pub geometry: PoolGeometry,
}
