//! The shift study of a classifier: how accuracy, calibration and uncertainty move as test images are rotated,
//! and how well predictive entropy and mutual information tell out-of-distribution sets (rotated 90°, inverted,
//! uniform noise) from the test images.

use super::decisions::{set_coverage, SetCoverage};
use super::{evaluate_classifier, ClassificationReport, OodDetection};
use crate::data::shift::{inverted, rotated, uniform_noise};
use crate::data::Dataset;
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
    for (set, data) in [
        ("rotated 90°", rotated(base, 90.0)),
        ("inverted", inverted(base)),
        ("uniform noise", uniform_noise(base.len(), base.dim, NOISE_SEED)),
    ] {
        let (entropy, mi, conformal) = scores(&data)?;
        ood.push(OodRow {
            set,
            by_entropy: OodDetection::new(&entropy, &id_entropy),
            by_mutual_information: OodDetection::new(&mi, &id_mi),
            conformal,
        });
    }
    Ok(ShiftStudy { rotation, ood })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Targets;
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
        }
    }
}
