//! CSV data: a header row, numeric columns; one named target column, every other column a feature.
//! A target column of whole numbers 0..K-1 is read as classes only when the recipe's likelihood is
//! categorical; the loader keeps the values and the trainer decides.

use super::shuffle;
use super::{Dataset, Split, Targets};
use crate::error::{Result, TrainError};
use std::path::Path;

/// Loads `path`, shuffles the rows with `seed` and holds out `test_fraction` of them.
pub fn load_csv(path: &Path, target: &str, test_fraction: f32, seed: u64) -> Result<Split> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| TrainError::io(path, e))?;
    let headers = reader.headers().map_err(|e| TrainError::io(path, e))?.clone();
    let t = headers
        .iter()
        .position(|h| h.trim() == target)
        .ok_or_else(|| TrainError::Data(format!("{}: no column named `{target}`", path.display())))?;
    let dim = headers.len() - 1;
    let mut rows: Vec<(Vec<f32>, f32)> = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| TrainError::io(path, e))?;
        let mut features = Vec::with_capacity(dim);
        let mut y = 0.0;
        for (col, field) in record.iter().enumerate() {
            let v: f32 = field.trim().parse().map_err(|_| {
                TrainError::Data(format!(
                    "{} row {}: column {col} is not a number: `{field}`",
                    path.display(),
                    line + 2
                ))
            })?;
            if !v.is_finite() {
                return Err(TrainError::Data(format!("{} row {}: non-finite value", path.display(), line + 2)));
            }
            if col == t {
                y = v;
            } else {
                features.push(v);
            }
        }
        rows.push((features, y));
    }
    if rows.len() < 2 {
        return Err(TrainError::Data(format!("{}: needs at least 2 rows", path.display())));
    }
    shuffle(&mut rows, seed);
    let n_test = ((rows.len() as f32 * test_fraction).round() as usize).min(rows.len() - 1);
    let test = rows.split_off(rows.len() - n_test);
    let to_dataset = |rows: Vec<(Vec<f32>, f32)>| Dataset {
        inputs: rows.iter().flat_map(|(x, _)| x.iter().copied()).collect(),
        dim,
        targets: Targets::Values { values: rows.iter().map(|(_, y)| *y).collect(), outputs: 1 },
    };
    Ok(Split { train: to_dataset(rows), test: to_dataset(test) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_rows_and_names_bad_fields() {
        let dir = std::env::temp_dir().join(format!("bnn-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.csv");
        let rows: String = (0..10).map(|i| format!("{i},{},{}\n", i * 2, i as f32 * 0.5)).collect();
        std::fs::write(&good, format!("a,b,y\n{rows}")).unwrap();
        let split = load_csv(&good, "y", 0.2, 1).unwrap();
        assert_eq!((split.train.len(), split.test.len(), split.train.dim), (8, 2, 2));
        let Targets::Values { values, .. } = &split.train.targets else { panic!("regression targets") };
        for (i, y) in values.iter().enumerate() {
            assert_eq!(*y, split.train.input(i)[0] * 0.5, "targets stay with their rows");
        }
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "a,y\n1,2\nx,3\n").unwrap();
        assert!(matches!(load_csv(&bad, "y", 0.2, 1), Err(TrainError::Data(m)) if m.contains("row 3")));
        assert!(matches!(load_csv(&good, "z", 0.2, 1), Err(TrainError::Data(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
