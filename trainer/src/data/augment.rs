//! Data augmentation of training images: [`RandomTranslation`] moves each image of a minibatch by a random
//! whole-pixel offset, drawn from a seeded stream, so that a run (and a run resumed from a checkpoint) sees the
//! same moved images every time. Validation and test images are never moved.

use super::shift::side;
use crate::error::{Result, TrainError};
use bnn_runtime::SeededRng;

/// Random translations of square single-channel images by up to `max` pixels along each axis, each offset
/// pair uniform on `[-max, max]²`; the pixels moved in from outside the image take `background` (the value a
/// blank pixel has after the input normalisation).
#[derive(Debug, Clone, PartialEq)]
pub struct RandomTranslation {
    side: usize,
    max: usize,
    background: f32,
}

impl RandomTranslation {
    /// Translations of images of `dim` pixels (a square: MNIST's 28 × 28 = 784).
    pub fn new(dim: usize, max: usize, background: f32) -> Result<Self> {
        let side = side(dim);
        if side * side != dim || side == 0 {
            return Err(TrainError::Data(format!(
                "training.shift_pixels moves square single-channel images; an input of {dim} values is not one"
            )));
        }
        if max >= side {
            return Err(TrainError::Recipe(format!(
                "training.shift_pixels = {max} would move a {side}×{side} image out of its frame"
            )));
        }
        Ok(Self { side, max, background })
    }

    /// Writes `image` moved down by `dy` and right by `dx` pixels (negative: up, left) into `out`:
    /// `out[y][x] = image[y - dy][x - dx]`, `background` where that lies outside the image.
    pub fn translate(&self, image: &[f32], dy: isize, dx: isize, out: &mut [f32]) {
        let n = self.side as isize;
        for (y, row) in out.chunks_exact_mut(self.side).enumerate() {
            let sy = y as isize - dy;
            if !(0..n).contains(&sy) {
                row.fill(self.background);
                continue;
            }
            let source = &image[sy as usize * self.side..][..self.side];
            for (x, v) in row.iter_mut().enumerate() {
                let sx = x as isize - dx;
                *v = if (0..n).contains(&sx) { source[sx as usize] } else { self.background };
            }
        }
    }

    /// Moves every image (each row of `dim` values) of the row-major batch `x` in place by its own offset,
    /// drawn from `rng`.
    pub fn apply(&self, x: &mut [f32], rng: &mut SeededRng) {
        let span = 2 * self.max as u64 + 1;
        let mut moved = vec![0.0f32; self.side * self.side];
        for image in x.chunks_exact_mut(self.side * self.side) {
            let mut draw = || (rng.next_u64() % span) as isize - self.max as isize;
            let (dy, dx) = (draw(), draw());
            if (dy, dx) != (0, 0) {
                self.translate(image, dy, dx, &mut moved);
                image.copy_from_slice(&moved);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4×4 image whose pixel (y, x) holds 10 y + x + 1 (no pixel is 0, the background below).
    fn ramp() -> Vec<f32> {
        (0..16).map(|i| (10 * (i / 4) + i % 4 + 1) as f32).collect()
    }

    #[test]
    fn a_translation_moves_every_pixel_by_its_offset_and_fills_the_rest() {
        let t = RandomTranslation::new(16, 2, -0.5).unwrap();
        let image = ramp();
        let mut out = vec![0.0; 16];
        t.translate(&image, 0, 0, &mut out);
        assert_eq!(out, image);
        t.translate(&image, 1, -2, &mut out);
        for y in 0..4 {
            for x in 0..4 {
                let (sy, sx) = (y as isize - 1, x as isize + 2);
                let want = if (0..4).contains(&sy) && (0..4).contains(&sx) {
                    image[sy as usize * 4 + sx as usize]
                } else {
                    -0.5
                };
                assert_eq!(out[y * 4 + x], want, "pixel ({y}, {x})");
            }
        }
        assert_eq!(out[4], 3.0, "pixel (1, 0) comes from (0, 2)");
    }

    #[test]
    fn offsets_cover_the_square_evenly_and_repeat_with_the_seed() {
        let t = RandomTranslation::new(16, 1, 0.0).unwrap();
        // One bright pixel in the centre-ish (1, 1): where it lands tells the offset drawn.
        let mut one = vec![0.0; 16];
        one[5] = 1.0;
        let images = 9_000;
        let batch: Vec<f32> = (0..images).flat_map(|_| one.clone()).collect();
        let moved = |seed| {
            let mut x = batch.clone();
            t.apply(&mut x, &mut SeededRng::new(seed));
            x
        };
        let x = moved(3);
        assert_eq!(x, moved(3), "the same seed moves the images the same way");
        assert_ne!(x, moved(4));
        let mut counts = [0usize; 16];
        for image in x.chunks_exact(16) {
            assert_eq!(image.iter().sum::<f32>(), 1.0, "a one-pixel move keeps an interior pixel");
            counts[image.iter().position(|&v| v == 1.0).unwrap()] += 1;
        }
        // The nine offsets in [-1, 1]² put the pixel on the 3×3 block around (1, 1), each 1/9 of the time:
        // 1,000 expected, sd about 31.
        for (p, &c) in counts.iter().enumerate() {
            let (y, x) = (p / 4, p % 4);
            if y <= 2 && x <= 2 {
                assert!((850..1150).contains(&c), "offset to ({y}, {x}) drawn {c} times of {images}");
            } else {
                assert_eq!(c, 0, "({y}, {x}) is no offset in [-1, 1]²");
            }
        }
    }

    #[test]
    fn no_move_is_the_identity_and_impossible_moves_are_refused() {
        let t = RandomTranslation::new(16, 0, 9.0).unwrap();
        let mut x: Vec<f32> = (0..3).flat_map(|_| ramp()).collect();
        let before = x.clone();
        t.apply(&mut x, &mut SeededRng::new(1));
        assert_eq!(x, before);
        assert!(matches!(RandomTranslation::new(15, 1, 0.0), Err(TrainError::Data(_))));
        assert!(matches!(RandomTranslation::new(16, 4, 0.0), Err(TrainError::Recipe(_))));
    }
}
