//! [`LineAligned`]: a zeroed `f32` buffer that starts on a cache-line boundary, for the blocks of local
//! reparameterization. A block's row of 32 samples is then exactly two cache lines, where a buffer from the
//! allocator (16-byte aligned) spreads every such row over three.

use crate::prelude::*;
use core::ops::{Deref, DerefMut};

/// Bytes per cache line.
const LINE: usize = 64;
/// Floats per cache line: at most this many are skipped to reach the boundary.
const LINE_FLOATS: usize = LINE / core::mem::size_of::<f32>();

/// `len` zeroed floats, the first on a 64-byte boundary.
#[derive(Debug)]
pub(crate) struct LineAligned {
    storage: Vec<f32>,
    start: usize,
    len: usize,
}

impl LineAligned {
    pub(crate) fn new(len: usize) -> Self {
        let storage = vec![0.0f32; len + LINE_FLOATS];
        // `align_offset` is at most 15 floats for an `f32` pointer; were it ever unknown (`usize::MAX`), the
        // buffer would start unaligned, which is slower but correct.
        let start = storage.as_ptr().align_offset(LINE).min(LINE_FLOATS);
        Self { storage, start, len }
    }
}

impl Deref for LineAligned {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.storage[self.start..self.start + self.len]
    }
}

impl DerefMut for LineAligned {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

impl Clone for LineAligned {
    /// A new aligned buffer with the same contents (a plain copy of the storage could lose the alignment).
    fn clone(&self) -> Self {
        let mut copy = Self::new(self.len);
        copy.copy_from_slice(self);
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_a_cache_line_and_clones_keep_contents_and_alignment() {
        for len in [0, 1, 31, 32 * 400] {
            let mut b = LineAligned::new(len);
            assert_eq!((b.len(), b.as_ptr() as usize % LINE), (len, 0));
            b.iter_mut().enumerate().for_each(|(i, v)| *v = i as f32);
            let c = b.clone();
            assert_eq!((&*c, c.as_ptr() as usize % LINE), (&*b, 0));
        }
    }
}
