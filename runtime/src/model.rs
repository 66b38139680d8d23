//! [`Model`]: a validated Bayesian network in memory — layers, task, input normalisation and provenance.

use crate::calibration::Calibration;
use crate::error::ModelError;
use crate::format::names;
use crate::layers::{ConvGeometry, Layer, RawZeroExpansion, WeightLayout};
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
    /// The input's shape; the input shape of every layer, then the last layer's output shape.
    input: Shape,
    shapes: Vec<Shape>,
    input_dim: usize,
    max_width: usize,
    /// The most kernel weights and biases of a Bayesian convolution: one sample of each for every sample of a
    /// block is drawn into a buffer this large (times the block).
    max_kernels: usize,
    /// The first stochastic layer's moments, where it is Bayesian dense (local reparameterization computes them
    /// once per input).
    first_moments: Option<RawZeroExpansion>,
}

/// The expansion of the first stochastic layer's moments, where it is Bayesian dense: about the normalised raw
/// zero when it reads the (normalised) input, else about 0.
fn first_moments(layers: &[Layer], normalization: Option<&Normalization>) -> Option<RawZeroExpansion> {
    let index = layers.iter().position(Layer::is_stochastic)?;
    match &layers[index] {
        Layer::BayesianDense(l) => Some(RawZeroExpansion::new(l, normalization.filter(|_| index == 0))),
        _ => None,
    }
}

/// What a layer receives or produces: a flat vector, or an image of `[channels, height, width]` stored as a
/// flat vector in NCHW order (so inputs and outputs keep one public form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Flat(usize),
    Image([usize; 3]),
}

impl Shape {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Shape::Flat(n) => *n,
            Shape::Image([c, h, w]) => c * h * w,
        }
    }
    /// Whether the shape holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Model {
    /// Builds a model of flat inputs (their size is the first dense layer's) and checks it: consecutive layer
    /// sizes agree, every tensor has the length its layer needs, means are finite, standard deviations finite
    /// and non-negative, dropout rates in `[0, 1)`, the last layer fits the task and the normalisation fits the
    /// input. Convolutions and pooling need an image input: [`Model::new_image`].
    pub fn new(
        layers: Vec<Layer>,
        task: Task,
        normalization: Option<Normalization>,
        provenance: Provenance,
    ) -> Result<Self, ModelError> {
        let first = layers.iter().find_map(Layer::dense_sizes).ok_or(ModelError::NoDenseLayer)?;
        Self::build(layers, Shape::Flat(first.0), task, normalization, provenance)
    }

    /// Builds a model whose input is an image of `[channels, height, width]` (passed flat, in NCHW order) and
    /// checks it as [`Model::new`] does, following the image's shape through every convolution and pooling.
    pub fn new_image(
        layers: Vec<Layer>,
        input_shape: [usize; 3],
        task: Task,
        normalization: Option<Normalization>,
        provenance: Provenance,
    ) -> Result<Self, ModelError> {
        Self::build(layers, Shape::Image(input_shape), task, normalization, provenance)
    }

    /// Builds a model of the given input — [`Model::new`] for a flat one (whose size must be the first dense
    /// layer's), [`Model::new_image`] for an image: for callers that rebuild a model of the same input with other
    /// layers (pruning, import, the trainer's export).
    pub fn with_input(
        layers: Vec<Layer>,
        input: Shape,
        task: Task,
        normalization: Option<Normalization>,
        provenance: Provenance,
    ) -> Result<Self, ModelError> {
        Self::build(layers, input, task, normalization, provenance)
    }

    fn build(
        layers: Vec<Layer>,
        input: Shape,
        task: Task,
        normalization: Option<Normalization>,
        provenance: Provenance,
    ) -> Result<Self, ModelError> {
        let input_dim = checked_len(input).ok_or_else(|| ModelError::InvalidInputShape(format!("{input:?}")))?;
        if input_dim == 0 {
            return Err(ModelError::InvalidInputShape(format!("{input:?} holds no value")));
        }
        let (mut shape, mut shapes, mut max_width, mut max_kernels) =
            (input, Vec::with_capacity(layers.len()), input_dim, 0);
        for (index, layer) in layers.iter().enumerate() {
            validate_layer(index, layer)?;
            shapes.push(shape);
            let input_shape = shape;
            shape = output_shape(index, layer, shape)?;
            max_width = max_width.max(checked_len(shape).ok_or(ModelError::InvalidLayer {
                index,
                message: format!("the output {shape:?} has too many values"),
            })?);
            // A convolution first copies its input with the zero border into an activation buffer.
            if let (Some(g), Shape::Image([c, h, w])) = (layer.conv_geometry(), input_shape) {
                let [ph, pw] = g.padding.map(|p| p.checked_mul(2));
                let padded =
                    ph.zip(pw).and_then(|(ph, pw)| Some(Shape::Image([c, h.checked_add(ph)?, w.checked_add(pw)?])));
                max_width = max_width.max(padded.and_then(checked_len).ok_or(ModelError::InvalidLayer {
                    index,
                    message: format!("the padded input of {input_shape:?} has too many values"),
                })?);
            }
            if let Layer::BayesianConv2d(l) = layer {
                max_kernels = max_kernels.max(l.weight_mu().len() + l.bias_mu().len());
            }
        }
        shapes.push(shape);
        if !layers.iter().any(|l| l.dense_sizes().is_some()) {
            return Err(ModelError::NoDenseLayer);
        }
        let Shape::Flat(output_width) = shape else {
            return Err(ModelError::HeadMismatch(format!("the last layer gives an image {shape:?}; flatten it first")));
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
        let first_moments = first_moments(&layers, normalization.as_ref());
        Ok(Self {
            layers,
            task,
            normalization,
            provenance,
            calibration: None,
            input,
            shapes,
            input_dim,
            max_width,
            max_kernels,
            first_moments,
        })
    }

    /// The same model with pruned weights (mean and standard deviation both 0) left out of storage, so
    /// prediction runs sparse kernels. `Mean` results are bit-identical; sampled ones agree to float rounding.
    pub fn sparsified(&self) -> Model {
        let layers: Vec<Layer> = self.layers.iter().map(Layer::sparsified).collect();
        let first_moments = first_moments(&layers, self.normalization.as_ref());
        Model { layers, first_moments, ..self.clone() }
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
    /// The first stochastic layer's moments, where it is Bayesian dense.
    pub(crate) fn first_moments(&self) -> Option<&RawZeroExpansion> {
        self.first_moments.as_ref()
    }
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }
    /// Number of input features (for an image, channels × height × width).
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }
    /// The input's shape: flat, or an image.
    pub fn input_shape(&self) -> Shape {
        self.input
    }
    /// The shapes layer `index` receives and gives, as `[channels, height, width]` (a flat vector of `n` as
    /// `[n, 1, 1]`).
    pub(crate) fn layer_images(&self, index: usize) -> ([usize; 3], [usize; 3]) {
        let image = |shape: Option<&Shape>| match shape {
            Some(Shape::Image(s)) => *s,
            Some(Shape::Flat(n)) => [*n, 1, 1],
            None => [0, 0, 0],
        };
        (image(self.shapes.get(index)), image(self.shapes.get(index + 1)))
    }
    /// See [`Model::max_kernels`] (the field).
    pub(crate) fn max_kernels(&self) -> usize {
        self.max_kernels
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

/// The number of values of `shape`, unless it overflows.
fn checked_len(shape: Shape) -> Option<usize> {
    match shape {
        Shape::Flat(n) => Some(n),
        Shape::Image([c, h, w]) => c.checked_mul(h)?.checked_mul(w),
    }
}

/// What layer `index` makes of an input of `shape`, or why it cannot take it.
fn output_shape(index: usize, layer: &Layer, shape: Shape) -> Result<Shape, ModelError> {
    let invalid = |message: String| ModelError::InvalidLayer { index, message };
    match (layer, shape) {
        (Layer::BayesianDense(_) | Layer::Dense(_), Shape::Flat(n)) => {
            let (i, o) = layer.dense_sizes().unwrap_or_default();
            if n != i {
                return Err(ModelError::LayerSizeMismatch { index, expected: i, found: n });
            }
            Ok(Shape::Flat(o))
        }
        (Layer::BayesianDense(_) | Layer::Dense(_), Shape::Image(_)) => {
            Err(invalid(format!("a dense layer needs a flat input, it gets an image {shape:?}: flatten it first")))
        }
        (Layer::Conv2d(l), Shape::Image(image)) => conv_output(index, l.geometry(), image),
        (Layer::BayesianConv2d(l), Shape::Image(image)) => conv_output(index, l.geometry(), image),
        (Layer::Pool2d(p), Shape::Image([c, h, w])) => {
            let [oh, ow] = p.geometry.output_size([h, w]).map_err(invalid)?;
            Ok(Shape::Image([c, oh, ow]))
        }
        (Layer::Conv2d(_) | Layer::BayesianConv2d(_) | Layer::Pool2d(_), Shape::Flat(_)) => Err(invalid(
            "convolution and pooling need an image: the model's input shape, or a convolution or pooling before".into(),
        )),
        (Layer::Flatten, Shape::Image(_)) => Ok(Shape::Flat(shape.len())),
        (Layer::Flatten, Shape::Flat(_)) => Err(invalid("flatten needs an image, it gets a flat vector".into())),
        (Layer::Dropout(_) | Layer::Activation(_), _) => Ok(shape),
    }
}

/// What convolution `index` with `geometry` makes of an image of `[c, h, w]`.
fn conv_output(index: usize, geometry: &ConvGeometry, [c, h, w]: [usize; 3]) -> Result<Shape, ModelError> {
    if c != geometry.in_channels {
        return Err(ModelError::LayerSizeMismatch { index, expected: geometry.in_channels, found: c });
    }
    let [oh, ow] = geometry.output_size([h, w]).map_err(|message| ModelError::InvalidLayer { index, message })?;
    Ok(Shape::Image([geometry.out_channels, oh, ow]))
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
        Layer::Activation(_) | Layer::Flatten => Ok(()),
        Layer::Conv2d(l) => {
            let shape = check_geometry(index, l.geometry())?;
            check_mu(&names::weight_mu(index), l.weight(), &shape)?;
            check_mu(&names::bias_mu(index), l.bias(), &[l.geometry().out_channels])
        }
        Layer::BayesianConv2d(l) => {
            let (shape, o) = (check_geometry(index, l.geometry())?, l.geometry().out_channels);
            check_mu(&names::weight_mu(index), l.weight_mu(), &shape)?;
            check_sigma(&names::weight_sigma(index), l.weight_sigma(), &shape)?;
            check_mu(&names::bias_mu(index), l.bias_mu(), &[o])?;
            check_sigma(&names::bias_sigma(index), l.bias_sigma(), &[o])
        }
        Layer::Pool2d(p) => p.geometry.validate().map_err(|message| ModelError::InvalidLayer { index, message }),
    }
}

/// Checks a convolution's geometry; returns the shape of its weights.
fn check_geometry(index: usize, geometry: &ConvGeometry) -> Result<Vec<usize>, ModelError> {
    geometry.validate().map_err(|message| ModelError::InvalidLayer { index, message })?;
    Ok(geometry.weight_shape().to_vec())
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
