//! Distribution shift and out-of-distribution sets built from MNIST itself, without downloads: rotated
//! digits, inverted images, and uniform noise.

use super::{Dataset, Targets};
use bnn_runtime::SeededRng;

/// Side of a square image with `dim` pixels.
pub(crate) fn side(dim: usize) -> usize {
    (dim as f64).sqrt().round() as usize
}

/// Rotates one square image by `degrees` (counter-clockwise) about its centre, bilinear, zero outside.
pub fn rotate_image(image: &[f32], degrees: f64) -> Vec<f32> {
    let n = side(image.len());
    let (s, c) = degrees.to_radians().sin_cos();
    let centre = (n as f64 - 1.0) / 2.0;
    let px = |x: i64, y: i64| -> f64 {
        if x < 0 || y < 0 || x >= n as i64 || y >= n as i64 {
            0.0
        } else {
            image[y as usize * n + x as usize] as f64
        }
    };
    let mut out = vec![0.0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            // Inverse map: where in the source does output (x, y) come from?
            let (dx, dy) = (x as f64 - centre, y as f64 - centre);
            let sx = c * dx - s * dy + centre;
            let sy = s * dx + c * dy + centre;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let v = px(x0, y0) * (1.0 - fx) * (1.0 - fy)
                + px(x0 + 1, y0) * fx * (1.0 - fy)
                + px(x0, y0 + 1) * (1.0 - fx) * fy
                + px(x0 + 1, y0 + 1) * fx * fy;
            out[y * n + x] = v as f32;
        }
    }
    out
}

/// Every image rotated by `degrees`; labels kept.
pub fn rotated(data: &Dataset, degrees: f64) -> Dataset {
    let inputs = (0..data.len()).flat_map(|i| rotate_image(data.input(i), degrees)).collect();
    Dataset { inputs, dim: data.dim, targets: data.targets.clone() }
}

/// Every pixel `p` replaced by `1 - p` (white digits become black on white).
pub fn inverted(data: &Dataset) -> Dataset {
    Dataset { inputs: data.inputs.iter().map(|p| 1.0 - p).collect(), dim: data.dim, targets: data.targets.clone() }
}

/// `n` images of independent U[0, 1] pixels, labelled 0 (the label carries no meaning).
pub fn uniform_noise(n: usize, dim: usize, seed: u64) -> Dataset {
    let mut rng = SeededRng::new(seed);
    Dataset {
        inputs: (0..n * dim).map(|_| rng.uniform()).collect(),
        dim,
        targets: Targets::Classes { labels: vec![0; n], classes: 10 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_by_zero_is_identity_and_four_quarter_turns_come_back() {
        let img: Vec<f32> = (0..28 * 28).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        assert_eq!(rotate_image(&img, 0.0), img);
        let mut r = img.clone();
        for _ in 0..4 {
            r = rotate_image(&r, 90.0);
        }
        assert!(r.iter().zip(&img).all(|(a, b)| (a - b).abs() < 1e-4));
    }

    #[test]
    fn a_quarter_turn_moves_the_top_row_to_the_left_column() {
        let mut img = vec![0.0f32; 9];
        img[1] = 1.0; // top-middle of a 3x3 image
        let r = rotate_image(&img, 90.0);
        assert!((r[3] - 1.0).abs() < 1e-6 || (r[5] - 1.0).abs() < 1e-6, "{r:?}");
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
