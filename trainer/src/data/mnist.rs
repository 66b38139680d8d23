//! MNIST in IDX format (`train-images-idx3-ubyte[.gz]`, ...), gzipped or not. Pixels become [0, 1].

use super::{Dataset, Split, Targets};
use crate::error::{Result, TrainError};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// Reads an IDX file (optionally gzipped): returns its dimensions and raw bytes. The magic number's type
/// byte must be 0x08 (unsigned bytes).
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let raw = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|e| TrainError::io(path, e))?;
        out
    } else {
        raw
    };
    let bad = |m: &str| TrainError::Data(format!("{}: {m}", path.display()));
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(bad("not an unsigned-byte IDX file"));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(bad("truncated IDX header"));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|k| u32::from_be_bytes(bytes[4 + 4 * k..8 + 4 * k].try_into().expect("4 bytes")) as usize)
        .collect();
    let count = dims.iter().try_fold(1usize, |a, d| a.checked_mul(*d)).ok_or_else(|| bad("dimensions overflow"))?;
    if bytes.len() - header != count {
        return Err(bad(&format!("expected {count} data bytes, found {}", bytes.len() - header)));
    }
    Ok((dims, bytes[header..].to_vec()))
}

fn find(dir: &Path, stem: &str) -> Result<std::path::PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(TrainError::Data(format!("{} has no {stem}[.gz]", dir.display())))
}

fn load_part(dir: &Path, images: &str, labels: &str, limit: Option<usize>) -> Result<Dataset> {
    let (idims, pixels) = read_idx(&find(dir, images)?)?;
    let (ldims, label_bytes) = read_idx(&find(dir, labels)?)?;
    if idims.len() != 3 || ldims.len() != 1 || idims[0] != ldims[0] {
        return Err(TrainError::Data(format!(
            "{}: image and label files disagree: {idims:?} vs {ldims:?}",
            dir.display()
        )));
    }
    let n = limit.unwrap_or(idims[0]).min(idims[0]);
    let dim = idims[1] * idims[2];
    let labels: Vec<u32> = label_bytes[..n].iter().map(|l| *l as u32).collect();
    if let Some(l) = labels.iter().find(|l| **l > 9) {
        return Err(TrainError::Data(format!("label {l} outside 0..=9")));
    }
    Ok(Dataset {
        inputs: pixels[..n * dim].iter().map(|p| *p as f32 / 255.0).collect(),
        dim,
        targets: Targets::Classes { labels, classes: 10 },
    })
}

/// Loads the MNIST training and test sets from `dir`, optionally only their first examples.
pub fn load_mnist(dir: &Path, train_limit: Option<usize>, test_limit: Option<usize>) -> Result<Split> {
    Ok(Split {
        train: load_part(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", train_limit)?,
        test: load_mnist_test(dir, test_limit)?,
    })
}

/// Loads only the MNIST test set from `dir` (the training files need not be there).
pub fn load_mnist_test(dir: &Path, limit: Option<usize>) -> Result<Dataset> {
    load_part(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
        b.extend(data);
        b
    }

    #[test]
    fn reads_plain_and_gzipped_idx_and_rejects_truncated_files() {
        let dir = std::env::temp_dir().join(format!("bnn-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        std::fs::write(dir.join("plain"), &file).unwrap();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&file).unwrap();
        std::fs::write(dir.join("zipped"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.join("short"), &file[..file.len() - 1]).unwrap();
        for name in ["plain", "zipped"] {
            assert_eq!(read_idx(&dir.join(name)).unwrap(), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
        }
        assert!(matches!(read_idx(&dir.join("short")), Err(TrainError::Data(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_test_set_loads_without_the_training_files() {
        let dir = std::env::temp_dir().join(format!("bnn-mnist-test-only-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx(&[2, 2, 2], &[0, 255, 0, 0, 51, 0, 0, 0])).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[2], &[7, 3])).unwrap();
        let test = load_mnist_test(&dir, None).unwrap();
        assert_eq!((test.len(), test.dim, test.input(1)[0]), (2, 4, 0.2));
        assert!(load_mnist(&dir, None, None).is_err(), "the full load still needs the training files");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
