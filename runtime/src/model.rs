//! [`Model`]: a validated Bayesian network in memory — layers, task, input normalisation and provenance.

use crate::calibration::Calibration;
use crate::error::ModelError;
use crate::format::names;
use crate::layers::{Layer, WeightLayout};
use crate::normalization::Normalization;
use crate::prelude::*;
use crate::provenance::Provenance;
use crate::task::Task;

/// A network whose every rule of the format has been checked. Immutable, `Send + Sync`: share one
/// model between threads and give each its own [`Predictor`](crate::Predictor), or call
/// [`Model::predict`].
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    layers: Vec<Layer>,
    task: Task,
    normalization: Option<Normalization>,
    provenance: Provenance,
    calibration: Option<Calibration>,
    input_dim: usize,
    max_width: usize,
}

impl Model {
    /// Builds a model and checks it: consecutive layer sizes agree, every tensor has the length its layer
    /// needs, means are finite, standard deviations finite and non-negative, dropout rates in `[0, 1)`, the
    /// last layer fits the task and the normalisation fits the input.
    pub fn new(
        layers: Vec<Layer>,
        task: Task,
        normalization: Option<Normalization>,
        provenance: Provenance,
    ) -> Result<Self, ModelError> {
        let mut width: Option<usize> = None;
        let mut input_dim = None;
        let mut max_width = 0;
        for (index, layer) in layers.iter().enumerate() {
            validate_layer(index, layer)?;
            if let Some((inp, out)) = layer.dense_sizes() {
                match width {
                    Some(w) if w != inp => {
                        return Err(ModelError::LayerSizeMismatch { index, expected: inp, found: w })
                    }
                    Some(_) => {}
                    None => input_dim = Some(inp),
                }
                width = Some(out);
                max_width = max_width.max(inp).max(out);
            }
        }
        let (Some(input_dim), Some(output_width)) = (input_dim, width) else {
            return Err(ModelError::NoDenseLayer);
        };
        task.validate().map_err(ModelError::InvalidTask)?;
        if task.head_width() != output_width {
            return Err(ModelError::HeadMismatch(format!(
                "the task needs {} outputs from the last dense layer, it gives {output_width}",
                task.head_width()
            )));
        }
        if let Some(n) = &normalization {
            n.validate(input_dim).map_err(ModelError::InvalidNormalization)?;
        }
        Ok(Self { layers, task, normalization, provenance, calibration: None, input_dim, max_width })
    }

    /// The same model with pruned weights (mean and standard deviation both 0) left out of storage, so
    /// prediction runs sparse kernels. `Mean` results are bit-identical; sampled ones agree to float rounding.
    pub fn sparsified(&self) -> Model {
        Model { layers: self.layers.iter().map(Layer::sparsified).collect(), ..self.clone() }
    }

    /// The same model with `calibration` (or none), checked: in range, and of the model's kind (classifier or
    /// regression).
    pub fn with_calibration(mut self, calibration: Option<Calibration>) -> Result<Self, ModelError> {
        if let Some(c) = &calibration {
            let classifier = matches!(self.task, Task::Classification { .. });
            c.validate_for(classifier).map_err(ModelError::InvalidCalibration)?;
        }
        self.calibration = calibration;
        Ok(self)
    }

    /// What a calibration split taught this model, if it was calibrated (`bnn calibrate`).
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// The same model with other provenance.
    pub fn with_provenance(mut self, provenance: Provenance) -> Self {
        self.provenance = provenance;
        self
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }
    pub fn task(&self) -> &Task {
        &self.task
    }
    pub fn normalization(&self) -> Option<&Normalization> {
        self.normalization.as_ref()
    }
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }
    /// Number of input features.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }
    /// Number of values the last layer produces (see [`Task::head_width`]).
    pub fn head_width(&self) -> usize {
        self.task.head_width()
    }
    /// The widest activation vector, which sizes the prediction buffers.
    pub(crate) fn max_width(&self) -> usize {
        self.max_width
    }
}

fn validate_layer(index: usize, layer: &Layer) -> Result<(), ModelError> {
    match layer {
        Layer::BayesianDense(l) => {
            let (i, o) = (l.in_features(), l.out_features());
            check_sizes(index, i, o)?;
            let shape = check_layout(index, l.layout(), i, o)?;
            check_mu(&names::weight_mu(index), l.weight_mu(), &shape)?;
            check_sigma(&names::weight_sigma(index), l.weight_sigma(), &shape)?;
            check_mu(&names::bias_mu(index), l.bias_mu(), &[o])?;
            check_sigma(&names::bias_sigma(index), l.bias_sigma(), &[o])
        }
        Layer::Dense(l) => {
            let (i, o) = (l.in_features(), l.out_features());
            check_sizes(index, i, o)?;
            let shape = check_layout(index, l.layout(), i, o)?;
            check_mu(&names::weight_mu(index), l.weight(), &shape)?;
            check_mu(&names::bias_mu(index), l.bias(), &[o])
        }
        Layer::Dropout(d) => {
            if (0.0..1.0).contains(&d.p()) {
                Ok(())
            } else {
                Err(ModelError::InvalidLayer {
                    index,
                    message: format!("dropout rate must lie in [0, 1), found {}", d.p()),
                })
            }
        }
        Layer::Activation(_) => Ok(()),
    }
}

fn check_sizes(index: usize, inp: usize, out: usize) -> Result<(), ModelError> {
    if inp == 0 || out == 0 {
        return Err(ModelError::InvalidLayer { index, message: format!("dense layer of size {inp} -> {out}") });
    }
    Ok(())
}

/// Checks that a weight layout describes an `out x inp` matrix; returns the shape of its stored values.
fn check_layout(index: usize, layout: &WeightLayout, inp: usize, out: usize) -> Result<Vec<usize>, ModelError> {
    let fits = match layout {
        WeightLayout::Dense { rows, cols } => *rows == out && *cols == inp,
        WeightLayout::Csr { cols, pattern } => *cols == inp && pattern.row_ptr().len() == out + 1,
    };
    if !fits {
        return Err(ModelError::InvalidLayer {
            index,
            message: format!("weight layout does not describe a {out} x {inp} matrix"),
        });
    }
    Ok(match layout {
        WeightLayout::Dense { .. } => vec![out, inp],
        WeightLayout::Csr { pattern, .. } => vec![pattern.nnz()],
    })
}

fn check_len(name: &str, values: &[f32], shape: &[usize]) -> Result<(), ModelError> {
    let expected: usize = shape.iter().product();
    if values.len() != expected {
        return Err(ModelError::TensorShape { name: name.into(), expected: shape.to_vec(), found: vec![values.len()] });
    }
    Ok(())
}

fn check_mu(name: &str, values: &[f32], shape: &[usize]) -> Result<(), ModelError> {
    check_len(name, values, shape)?;
    match values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((element, &value)) => Err(ModelError::NonFiniteValue { name: name.into(), element, value }),
        None => Ok(()),
    }
}

fn check_sigma(name: &str, values: &[f32], shape: &[usize]) -> Result<(), ModelError> {
    check_len(name, values, shape)?;
    match values.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v >= 0.0)) {
        Some((element, &value)) => Err(ModelError::InvalidSigma { name: name.into(), element, value }),
        None => Ok(()),
    }
}
