//! Training data: the in-memory [`Dataset`], its train/test [`Split`], input normalisation, and the
//! loaders for MNIST, CSV and the built-in synthetic sets; augmentation of training images in [`augment`].

pub mod augment;
mod csv;
mod mnist;
pub mod shift;
mod synthetic;

pub use mnist::{load_mnist, load_mnist_test, read_idx};
pub use synthetic::generate;

use crate::error::{Result, TrainError};
use crate::recipe::{DataSpec, NormalizeSpec};
use bnn_runtime::{Normalization, SeededRng};
use std::path::{Path, PathBuf};

/// Environment variable naming the MNIST directory when `--data` is not given.
pub const MNIST_DIR_ENV: &str = "BNN_MNIST_DIR";

/// Targets of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class index per example.
    Classes { labels: Vec<u32>, classes: usize },
    /// `outputs` values per example, row-major.
    Values { values: Vec<f32>, outputs: usize },
}

/// Examples as a row-major `[len, dim]` matrix with their targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub inputs: Vec<f32>,
    pub dim: usize,
    pub targets: Targets,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.inputs.len().checked_div(self.dim).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn input(&self, i: usize) -> &[f32] {
        &self.inputs[i * self.dim..(i + 1) * self.dim]
    }
    /// The first `n` examples (all of them if there are fewer).
    pub fn first(&self, n: usize) -> Dataset {
        self.select(&(0..n.min(self.len())).collect::<Vec<_>>())
    }
    /// The examples `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let mut inputs = Vec::with_capacity(idx.len() * self.dim);
        idx.iter().for_each(|&i| inputs.extend_from_slice(self.input(i)));
        let targets = match &self.targets {
            Targets::Classes { labels, classes } => {
                Targets::Classes { labels: idx.iter().map(|&i| labels[i]).collect(), classes: *classes }
            }
            Targets::Values { values, outputs } => Targets::Values {
                values: idx.iter().flat_map(|&i| values[i * outputs..(i + 1) * outputs].iter().copied()).collect(),
                outputs: *outputs,
            },
        };
        Dataset { inputs, dim: self.dim, targets }
    }
    /// Splits off `n` examples drawn with `seed` (e.g. a validation set): returns (the rest, the drawn ones),
    /// each in the original order.
    pub fn hold_out(&self, n: usize, seed: u64) -> (Dataset, Dataset) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        shuffle(&mut order, seed);
        let (held, rest) = order.split_at_mut(n.min(self.len()));
        held.sort_unstable();
        rest.sort_unstable();
        (self.select(rest), self.select(held))
    }
    /// Width of the targets: classes, or regression outputs.
    pub fn target_width(&self) -> usize {
        match &self.targets {
            Targets::Classes { classes, .. } => *classes,
            Targets::Values { outputs, .. } => *outputs,
        }
    }
}

/// A training set and a test set with the same inputs and targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
}

/// Loads the data a recipe names. `data_dir` (the `--data` flag) overrides the MNIST directory.
pub fn load(spec: &DataSpec, data_dir: Option<&Path>, seed: u64) -> Result<Split> {
    match spec {
        DataSpec::Mnist { dir, train_limit, test_limit, .. } => {
            let dir = mnist_dir(data_dir, dir.as_deref())?;
            load_mnist(&dir, *train_limit, *test_limit)
        }
        DataSpec::Csv { path, target, test_fraction, .. } => {
            let path = data_dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(path));
            csv::load_csv(&path, target, *test_fraction, seed)
        }
        DataSpec::Synthetic { .. } if data_dir.is_some() => Err(TrainError::Argument(
            "the recipe's data is synthetic (made from its seed): a data path would be ignored, so none is taken"
                .into(),
        )),
        DataSpec::Synthetic { name, train_points, test_points, .. } => Ok(Split {
            train: generate(*name, *train_points, seed),
            test: generate(*name, *test_points, seed.wrapping_add(0x5eed)),
        }),
    }
}

/// E[y | x] of the data in closed form, where the data are a built-in 1-D regression set.
pub fn conditional_mean(spec: &DataSpec) -> Option<fn(f64) -> f64> {
    match spec {
        DataSpec::Synthetic { name, .. } => synthetic::conditional_mean(*name),
        DataSpec::Mnist { .. } | DataSpec::Csv { .. } => None,
    }
}

/// The MNIST directory: the flag, else `BNN_MNIST_DIR`, else the recipe's `dir`.
pub fn mnist_dir(flag: Option<&Path>, recipe_dir: Option<&str>) -> Result<PathBuf> {
    if let Some(d) = flag {
        return Ok(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os(MNIST_DIR_ENV) {
        return Ok(PathBuf::from(d));
    }
    recipe_dir.map(PathBuf::from).ok_or_else(|| {
        TrainError::Data(format!(
            "no MNIST directory: pass --data DIR, set {MNIST_DIR_ENV}, or set data.dir in the recipe"
        ))
    })
}

/// The normalisation a recipe asks for, fitted on `train`.
pub fn fit_normalization(spec: &DataSpec, train: &Dataset) -> Option<Normalization> {
    let mode = match spec {
        DataSpec::Mnist { normalize, .. } | DataSpec::Csv { normalize, .. } | DataSpec::Synthetic { normalize, .. } => {
            *normalize
        }
    };
    let (n, d) = (train.len(), train.dim);
    if n == 0 {
        return None;
    }
    let fix = |s: f64| if s > 1e-6 { s as f32 } else { 1.0 };
    match mode {
        NormalizeSpec::None => None,
        NormalizeSpec::Global => {
            let mean = train.inputs.iter().map(|v| *v as f64).sum::<f64>() / train.inputs.len() as f64;
            let var = train.inputs.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / train.inputs.len() as f64;
            Some(Normalization::global(mean as f32, fix(var.sqrt())))
        }
        NormalizeSpec::PerFeature => {
            let mut mean = vec![0.0f64; d];
            let mut sq = vec![0.0f64; d];
            for i in 0..n {
                for (j, v) in train.input(i).iter().enumerate() {
                    mean[j] += *v as f64;
                    sq[j] += (*v as f64) * (*v as f64);
                }
            }
            let mean: Vec<f64> = mean.iter().map(|m| m / n as f64).collect();
            let std = sq.iter().zip(&mean).map(|(s, m)| fix((s / n as f64 - m * m).max(0.0).sqrt())).collect();
            Some(Normalization { mean: mean.iter().map(|m| *m as f32).collect(), std })
        }
    }
}

/// Fisher–Yates shuffle with the project's seeded generator.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = SeededRng::new(seed);
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

impl Dataset {
    /// Reads regression targets of whole numbers 0..K-1 as K classes (for a categorical likelihood on CSV data).
    pub fn into_classes(self) -> Result<Dataset> {
        let Targets::Values { values, outputs: 1 } = &self.targets else {
            return Ok(self);
        };
        let mut labels = Vec::with_capacity(values.len());
        for v in values {
            if *v < 0.0 || v.fract() != 0.0 || *v > u32::MAX as f32 {
                return Err(TrainError::Data(format!("class targets must be whole numbers >= 0, found {v}")));
            }
            labels.push(*v as u32);
        }
        let classes = labels.iter().max().map_or(0, |m| *m as usize + 1).max(2);
        Ok(Dataset { inputs: self.inputs, dim: self.dim, targets: Targets::Classes { labels, classes } })
    }
}

/// Applies a normalisation to every input of a dataset, in place.
pub fn normalize(data: &mut Dataset, n: &Normalization) {
    data.inputs.chunks_exact_mut(data.dim).for_each(|row| n.apply_in_place(row));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_out_set_is_a_seeded_disjoint_draw_and_the_rest_keeps_its_order() {
        let data = Dataset {
            inputs: (0..20).map(|v| v as f32).collect(),
            dim: 2,
            targets: Targets::Classes { labels: (0..10).collect(), classes: 10 },
        };
        let (rest, held) = data.hold_out(3, 7);
        let labels = |d: &Dataset| match &d.targets {
            Targets::Classes { labels, .. } => labels.clone(),
            _ => unreachable!(),
        };
        let (r, h) = (labels(&rest), labels(&held));
        assert_eq!((r.len(), h.len()), (7, 3));
        assert!(r.windows(2).all(|w| w[0] < w[1]) && h.windows(2).all(|w| w[0] < w[1]));
        let mut all = [r.clone(), h.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<u32>>());
        // Inputs travel with their labels; the draw depends on the seed alone.
        assert_eq!(held.input(0), &[2.0 * h[0] as f32, 2.0 * h[0] as f32 + 1.0]);
        assert_eq!(labels(&data.hold_out(3, 7).1), h);
        assert_ne!(labels(&data.hold_out(3, 8).1), h);
    }

    #[test]
    fn per_feature_normalization_gives_zero_mean_unit_variance_on_train() {
        let mut data = generate(crate::recipe::SyntheticSet::TwoMoons, 500, 3);
        let spec = DataSpec::Synthetic {
            name: crate::recipe::SyntheticSet::TwoMoons,
            train_points: 500,
            test_points: 10,
            normalize: NormalizeSpec::PerFeature,
        };
        let n = fit_normalization(&spec, &data).unwrap();
        normalize(&mut data, &n);
        for j in 0..2 {
            let col: Vec<f64> = (0..data.len()).map(|i| data.input(i)[j] as f64).collect();
            let m = col.iter().sum::<f64>() / col.len() as f64;
            let v = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / col.len() as f64;
            assert!(m.abs() < 1e-5 && (v - 1.0).abs() < 1e-4, "feature {j}: mean {m}, var {v}");
        }
    }
}
