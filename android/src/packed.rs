//! The flat `float[]` layout in which a prediction crosses JNI (one array allocation per call instead of one
//! Java object per field); `io.bnnedge.NativeBridge` decodes it. A batch is the records one after another.
//!
//! Classification record (`CLASSIFICATION_HEADER + classes` floats):
//! `[samples_used, class, predictive_entropy, expected_entropy, mutual_information, p_0, ..., p_{k-1}]`.
//!
//! Regression record (`REGRESSION_HEADER + 6 * outputs` floats):
//! `[samples_used, interval_level, mean.., aleatoric.., epistemic.., total.., lower.., upper..]`.
//!
//! Counts are exact: sample counts are capped at [`crate::BNN_MAX_SAMPLES`] = 2^24 and class indices are far below.

use bnn_runtime::{Prediction, Task};

pub const CLASSIFICATION_HEADER: usize = 5;
pub const REGRESSION_HEADER: usize = 2;

/// Length of one packed record for a model with this task.
pub fn packed_len(task: &Task) -> usize {
    match task {
        Task::Classification { classes, .. } => CLASSIFICATION_HEADER + classes,
        Task::Regression { outputs, .. } => REGRESSION_HEADER + 6 * outputs,
    }
}

/// Appends one prediction's record to `out`.
pub fn pack_prediction(prediction: &Prediction, out: &mut Vec<f32>) {
    match prediction {
        Prediction::Classification(c) => {
            out.extend([
                c.samples_used as f32,
                c.class as f32,
                c.predictive_entropy,
                c.expected_entropy,
                c.mutual_information,
            ]);
            out.extend_from_slice(&c.probabilities);
        }
        Prediction::Regression(r) => {
            out.extend([r.samples_used as f32, r.interval_level]);
            for part in [&r.mean, &r.aleatoric_variance, &r.epistemic_variance, &r.total_variance, &r.lower, &r.upper] {
                out.extend_from_slice(part);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_runtime::{BayesianDense, Layer, Model, NoiseModel, PredictOptions, Provenance};

    fn model(task: Task, width: usize) -> Model {
        let layer = BayesianDense::new(
            2,
            width,
            vec![0.5; 2 * width],
            vec![0.1; 2 * width],
            vec![0.0; width],
            vec![0.0; width],
        );
        Model::new(vec![Layer::BayesianDense(layer)], task, None, Provenance::default()).unwrap()
    }

    #[test]
    fn records_have_the_documented_length_and_order() {
        let classify = model(Task::Classification { classes: 3, labels: vec![] }, 3);
        let p = classify.predict(&[1.0, -1.0], &PredictOptions::default().samples(7)).unwrap();
        let mut out = vec![];
        pack_prediction(&p, &mut out);
        let c = p.as_classification().unwrap();
        assert_eq!(out.len(), packed_len(classify.task()));
        assert_eq!(out[..5], [7.0, c.class as f32, c.predictive_entropy, c.expected_entropy, c.mutual_information]);
        assert_eq!(out[5..], c.probabilities[..]);

        let task = Task::Regression { outputs: 2, noise: NoiseModel::Homoscedastic { sigma: 0.3 } };
        let regress = model(task, 2);
        let p = regress.predict(&[1.0, 2.0], &PredictOptions::default().samples(5)).unwrap();
        out.clear();
        pack_prediction(&p, &mut out);
        let r = p.as_regression().unwrap();
        assert_eq!(out.len(), packed_len(regress.task()));
        assert_eq!(out[..2], [5.0, r.interval_level]);
        assert_eq!(out[2..4], r.mean[..]);
        assert_eq!(out[12..14], r.upper[..]);
    }
}
