//! The shift study of a classifier: how accuracy, calibration and uncertainty move as test images are rotated,
//! and how well predictive entropy and mutual information tell out-of-distribution sets (rotated 90°, inverted,
//! uniform noise) from the test images.

use super::decisions::{set_coverage, SetCoverage};
use super::{auroc, evaluate_classifier, ClassificationReport, OodDetection};
use crate::data::shift::{inverted, rotated, uniform_noise};
use crate::data::{Dataset, Targets};
use crate::error::Result;
use bnn_runtime::{ClassificationPrediction, Model, PredictOptions};
use serde::Serialize;

/// The rotation angles of the study, in degrees.
pub const ROTATION_ANGLES: [f64; 13] = [0., 15., 30., 45., 60., 75., 90., 105., 120., 135., 150., 165., 180.];

/// Seed of the uniform-noise set.
const NOISE_SEED: u64 = 11;

/// The metrics on the test images rotated by one angle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RotationRow {
    pub angle: f64,
    #[serde(flatten)]
    pub report: ClassificationReport,
}

/// Telling one out-of-distribution set from the test images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OodRow {
    pub set: &'static str,
    pub by_entropy: OodDetection,
    pub by_mutual_information: OodDetection,
    /// For a set made from the labelled images (rotated, inverted): the AUROC by mutual information of the
    /// inputs made from each class's images alone (index = class; NaN for a class with none), against all the
    /// test images — which digits the transformation leaves looking like digits. Empty for noise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auroc_mi_by_class: Vec<f64>,
    /// With a calibrated model: how its conformal sets treat these inputs, per stored level (a singleton is a
    /// confident answer about an input that has none: the lower the better).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conformal: Vec<SetCoverage>,
}

/// The whole study.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShiftStudy {
    /// One row per [`ROTATION_ANGLES`] angle.
    pub rotation: Vec<RotationRow>,
    /// Rotated 90°, inverted, uniform noise (as many inputs as the test images); the test images are negatives.
    pub ood: Vec<OodRow>,
}

/// How a calibrated model's conformal sets treat `preds`, per stored level (none if uncalibrated).
fn conformal_sets(model: &Model, preds: &[ClassificationPrediction]) -> Vec<SetCoverage> {
    let Some(c) = model.calibration() else { return vec![] };
    let calibrated: Vec<Vec<f32>> = preds.iter().map(|p| c.calibrated(&p.probabilities)).collect();
    set_coverage(&calibrated, None, c)
}

/// One out-of-distribution set of the study.
pub struct OodSet {
    pub name: &'static str,
    pub data: Dataset,
    /// Whether the inputs are the images of `base` transformed (one per image, in order, with its label).
    pub from_base: bool,
}

/// The study's out-of-distribution sets made from the labelled images `base` (square, pixels in [0, 1]):
/// rotated 90°, inverted, and as many uniform-noise images (always the same ones for one size).
pub fn ood_sets(base: &Dataset) -> [OodSet; 3] {
    [
        OodSet { name: "rotated 90°", data: rotated(base, 90.0), from_base: true },
        OodSet { name: "inverted", data: inverted(base), from_base: true },
        OodSet { name: "uniform noise", data: uniform_noise(base.len(), base.dim, NOISE_SEED), from_base: false },
    ]
}

/// Runs the study on the labelled images `base` (square, pixels in [0, 1]).
pub fn shift_study(model: &Model, base: &Dataset, options: &PredictOptions, threads: usize) -> Result<ShiftStudy> {
    let mut rotation = Vec::with_capacity(ROTATION_ANGLES.len());
    for angle in ROTATION_ANGLES {
        let (report, _) = evaluate_classifier(model, &rotated(base, angle), options, threads)?;
        rotation.push(RotationRow { angle, report });
    }
    let scores = |set: &Dataset| -> Result<(Vec<f64>, Vec<f64>, Vec<SetCoverage>)> {
        let (_, preds) = evaluate_classifier(model, set, options, threads)?;
        let (entropy, mi) = preds.iter().map(|p| (p.predictive_entropy as f64, p.mutual_information as f64)).unzip();
        Ok((entropy, mi, conformal_sets(model, &preds)))
    };
    let (id_entropy, id_mi, _) = scores(base)?;
    let mut ood = Vec::with_capacity(3);
    for OodSet { name: set, data, from_base } in ood_sets(base) {
        let (entropy, mi, conformal) = scores(&data)?;
        let auroc_mi_by_class = match (&base.targets, from_base) {
            (Targets::Classes { labels, classes }, true) => auroc_by_class(&mi, labels, *classes, &id_mi),
            _ => vec![],
        };
        ood.push(OodRow {
            set,
            by_entropy: OodDetection::new(&entropy, &id_entropy),
            by_mutual_information: OodDetection::new(&mi, &id_mi),
            auroc_mi_by_class,
            conformal,
        });
    }
    Ok(ShiftStudy { rotation, ood })
}

/// The [`auroc`] of the `positives` whose `labels` are each class in turn (`classes` of them; NaN for a class
/// with none) against all the `negatives`.
fn auroc_by_class(positives: &[f64], labels: &[u32], classes: usize, negatives: &[f64]) -> Vec<f64> {
    (0..classes as u32)
        .map(|k| {
            let of_k: Vec<f64> = positives.iter().zip(labels).filter(|(_, y)| **y == k).map(|(v, _)| *v).collect();
            if of_k.is_empty() {
                f64::NAN
            } else {
                auroc(&of_k, negatives)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_runtime::{BayesianDense, Layer, Provenance, Task};

    #[test]
    fn the_study_rotates_at_every_angle_and_scores_three_ood_sets_against_the_unrotated_images() {
        // 3×3 images, two classes; the first class's weights look at the left column, the second's at the right.
        let mu = vec![1., 0., -1., 1., 0., -1., 1., 0., -1., -1., 0., 1., -1., 0., 1., -1., 0., 1.];
        let sigma = vec![0.5; 18];
        let layer = BayesianDense::new(9, 2, mu, sigma, vec![0.0; 2], vec![0.1; 2]);
        let task = Task::Classification { classes: 2, labels: vec![] };
        let model = Model::new(vec![Layer::BayesianDense(layer)], task, None, Provenance::default()).unwrap();
        let (left, right) = ([1., 0., 0., 1., 0., 0., 1., 0., 0.], [0., 0., 1., 0., 0., 1., 0., 0., 1.]);
        let inputs: Vec<f32> = (0..6).flat_map(|i| if i % 2 == 0 { left } else { right }).collect();
        let base = Dataset { inputs, dim: 9, targets: Targets::Classes { labels: vec![0, 1, 0, 1, 0, 1], classes: 2 } };
        let options = PredictOptions::default().samples(16);

        let study = shift_study(&model, &base, &options, 2).unwrap();
        let angles: Vec<f64> = study.rotation.iter().map(|r| r.angle).collect();
        assert_eq!(angles, ROTATION_ANGLES);
        let (unrotated, _) = evaluate_classifier(&model, &base, &options, 1).unwrap();
        assert_eq!(study.rotation[0].report, unrotated);
        // Turned by 180°, a left column becomes a right one: every label is wrong.
        assert_eq!(study.rotation[12].report.accuracy, 0.0);
        let sets: Vec<&str> = study.ood.iter().map(|o| o.set).collect();
        assert_eq!(sets, ["rotated 90°", "inverted", "uniform noise"]);
        for o in &study.ood {
            for d in [o.by_entropy, o.by_mutual_information] {
                assert!((0.0..=1.0).contains(&d.auroc) && (0.0..=1.0).contains(&d.fpr_at_95_tpr), "{o:?}");
            }
            // Per class for the sets made from the images, each in [0, 1]; none for noise.
            let classes = if o.set == "uniform noise" { 0 } else { 2 };
            assert_eq!(o.auroc_mi_by_class.len(), classes, "{}", o.set);
            assert!(o.auroc_mi_by_class.iter().all(|a| (0.0..=1.0).contains(a)), "{o:?}");
        }
    }

    #[test]
    fn the_auroc_by_class_scores_each_class_alone() {
        // Class 0's positives all score above every negative, class 1's all below, class 2 has none.
        let (positives, labels) = ([5.0, 0.1, 6.0, 0.2], [0, 1, 0, 1]);
        let negatives = [1.0, 2.0, 3.0];
        let by_class = auroc_by_class(&positives, &labels, 3, &negatives);
        assert_eq!(&by_class[..2], &[1.0, 0.0]);
        assert!(by_class[2].is_nan());
        // Mixed: 4.0 beats all three negatives, 1.5 beats one: (3 + 1) / 6.
        assert_eq!(auroc_by_class(&[4.0, 1.5], &[0, 0], 1, &negatives), vec![4.0 / 6.0]);
    }
}
