//! 2-D convolutions over NCHW images: their geometry ([`ConvGeometry`]), the deterministic [`Conv2d`] and the
//! [`BayesianConv2d`], whose every kernel weight and bias has a Gaussian posterior N(mu, sigma^2).
//!
//! A Bayesian convolution reuses one kernel at every output position, so a Monte-Carlo sample draws each kernel
//! weight once and uses it everywhere: the outputs at two positions are correlated through the shared weights.
//! Local reparameterization (independent noise per output) would be exact for a dense layer, whose outputs use
//! disjoint weights, but not here; the predictor samples the kernels (see `Predictor`).

use crate::prelude::*;
use serde::{Deserialize, Serialize};

/// How a convolution maps its input channels and positions to its outputs (PyTorch's `Conv2d` arguments).
/// Kernel, stride, padding (zeros) and dilation are `[height, width]`; `groups` splits the channels into that
/// many independent convolutions: 1 is a full convolution, `in_channels` a depthwise one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvGeometry {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    #[serde(default = "ones")]
    pub stride: [usize; 2],
    #[serde(default)]
    pub padding: [usize; 2],
    #[serde(default = "ones")]
    pub dilation: [usize; 2],
    #[serde(default = "one")]
    pub groups: usize,
}

fn ones() -> [usize; 2] {
    [1, 1]
}
fn one() -> usize {
    1
}

impl ConvGeometry {
    /// A convolution with stride 1, no padding, no dilation and one group.
    pub fn new(in_channels: usize, out_channels: usize, kernel: [usize; 2]) -> Self {
        Self { in_channels, out_channels, kernel, stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }
    }
    pub fn stride(mut self, stride: [usize; 2]) -> Self {
        self.stride = stride;
        self
    }
    pub fn padding(mut self, padding: [usize; 2]) -> Self {
        self.padding = padding;
        self
    }
    pub fn dilation(mut self, dilation: [usize; 2]) -> Self {
        self.dilation = dilation;
        self
    }
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Input channels each output channel reads: `in_channels / groups`.
    pub fn channels_per_group(&self) -> usize {
        self.in_channels / self.groups.max(1)
    }

    /// The shape of the weight tensor: `[out_channels, in_channels / groups, kernel height, kernel width]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.out_channels, self.channels_per_group(), self.kernel[0], self.kernel[1]]
    }

    /// Number of kernel weights (the product of [`Self::weight_shape`]), or `None` if it overflows.
    pub fn weight_count(&self) -> Option<usize> {
        self.weight_shape().iter().try_fold(1usize, |n, d| n.checked_mul(*d))
    }

    /// Checks the geometry on its own: every size positive, `groups` divides both channel counts, the weight
    /// count fits in memory's address space.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let sizes = [self.in_channels, self.out_channels, self.groups];
        if sizes.contains(&0) || self.kernel.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0) {
            return Err(format!(
                "every channel count, kernel size, stride, dilation and groups must be positive: {self:?}"
            ));
        }
        if !self.in_channels.is_multiple_of(self.groups) || !self.out_channels.is_multiple_of(self.groups) {
            return Err(format!(
                "groups ({}) must divide the input ({}) and output ({}) channels",
                self.groups, self.in_channels, self.out_channels
            ));
        }
        self.weight_count().map(|_| ()).ok_or_else(|| "the kernel has too many weights".into())
    }

    /// The output height and width for an input of `[height, width]`, or why there is none (the dilated kernel
    /// does not fit the padded input, or a size overflows).
    pub fn output_size(&self, input: [usize; 2]) -> Result<[usize; 2], String> {
        let mut out = [0; 2];
        for d in 0..2 {
            let padded = self.padding[d].checked_mul(2).and_then(|p| p.checked_add(input[d]));
            let span = (self.kernel[d] - 1).checked_mul(self.dilation[d]).and_then(|s| s.checked_add(1));
            match (padded, span) {
                (Some(p), Some(s)) if s <= p => out[d] = (p - s) / self.stride[d] + 1,
                _ => {
                    return Err(format!(
                        "a {:?} kernel with dilation {:?} and padding {:?} does not fit a {}x{} input",
                        self.kernel, self.dilation, self.padding, input[0], input[1]
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// A convolution with fixed weights, as in a standard or MC-dropout CNN.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    geometry: ConvGeometry,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv2d {
    /// A convolution from its weights (`[out, in / groups, kh, kw]`, row-major) and biases (`[out]`). Lengths and
    /// values are checked when the layer joins a [`Model`](crate::Model).
    pub fn new(geometry: ConvGeometry, weight: Vec<f32>, bias: Vec<f32>) -> Self {
        Self { geometry, weight, bias }
    }
    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
}

/// A convolution whose kernel weights and biases are independent Gaussians.
#[derive(Debug, Clone, PartialEq)]
pub struct BayesianConv2d {
    geometry: ConvGeometry,
    weight_mu: Vec<f32>,
    weight_sigma: Vec<f32>,
    bias_mu: Vec<f32>,
    bias_sigma: Vec<f32>,
}

impl BayesianConv2d {
    /// A Bayesian convolution from its posterior parameters (weights `[out, in / groups, kh, kw]`, row-major;
    /// biases `[out]`). Lengths and values are checked when the layer joins a [`Model`](crate::Model).
    pub fn new(
        geometry: ConvGeometry,
        weight_mu: Vec<f32>,
        weight_sigma: Vec<f32>,
        bias_mu: Vec<f32>,
        bias_sigma: Vec<f32>,
    ) -> Self {
        Self { geometry, weight_mu, weight_sigma, bias_mu, bias_sigma }
    }
    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }
    pub fn weight_mu(&self) -> &[f32] {
        &self.weight_mu
    }
    pub fn weight_sigma(&self) -> &[f32] {
        &self.weight_sigma
    }
    pub fn bias_mu(&self) -> &[f32] {
        &self.bias_mu
    }
    pub fn bias_sigma(&self) -> &[f32] {
        &self.bias_sigma
    }

    /// Draws `s` samples of every live kernel weight and every bias into `weights` (`[weights × s]`) and `bias`
    /// (`[out × s]`): `mu + sigma * eps`, the noise drawn in bulk (the live weights' in order, then the biases').
    /// A pruned weight (mu = sigma = 0) draws no noise and its row is left as it was: no kernel reads it, since a
    /// convolution's plan holds only the live taps (`ConvPlan`). A pruned kernel thus costs noise for what it
    /// keeps, not for what it had.
    #[inline(always)]
    pub(crate) fn sample_kernels(
        &self,
        isa: crate::kernels::Isa,
        s: usize,
        (weights, bias): (&mut [f32], &mut [f32]),
        rng: &mut crate::sample::SeededRng,
    ) {
        let (mu, sigma) = (&self.weight_mu, &self.weight_sigma);
        let live = |k: &usize| mu[*k] != 0.0 || sigma[*k] != 0.0;
        let (n, n_live) = (mu.len(), (0..mu.len()).filter(live).count());
        // The live weights' noise goes to the last rows; live weight j (the j-th, at row k <= n - n_live + j)
        // then moves up to its own row, so a row is read before anything is written to it.
        let weights = &mut weights[..n * s];
        let first_noise = n - n_live;
        rng.fill_gaussian_on(isa, &mut weights[first_noise * s..]);
        for (j, k) in (0..n).filter(live).enumerate() {
            let (from, to) = ((first_noise + j) * s, k * s);
            let (m, d) = (mu[k], sigma[k]);
            if from == to {
                weights[to..to + s].iter_mut().for_each(|v| *v = m + d * *v);
            } else {
                let (head, tail) = weights.split_at_mut(from);
                head[to..to + s].iter_mut().zip(&tail[..s]).for_each(|(v, e)| *v = m + d * e);
            }
        }
        let bias = &mut bias[..self.bias_mu.len() * s];
        rng.fill_gaussian_on(isa, bias);
        for ((row, m), d) in bias.chunks_exact_mut(s).zip(&self.bias_mu).zip(&self.bias_sigma) {
            row.iter_mut().for_each(|v| *v = m + d * *v);
        }
    }

    /// One draw of every kernel weight and bias, one at a time (the reference weight-sampling pass).
    pub(crate) fn sample_kernels_once(
        &self,
        (weights, bias): (&mut [f32], &mut [f32]),
        rng: &mut crate::sample::SeededRng,
    ) {
        for (out, mu, sigma) in
            [(weights, &self.weight_mu, &self.weight_sigma), (bias, &self.bias_mu, &self.bias_sigma)]
        {
            for ((v, m), d) in out.iter_mut().zip(mu).zip(sigma) {
                *v = m + d * rng.gaussian();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_follow_pytorch() {
        // LeNet-5's first convolution: 1x28x28, 5x5, padding 2 -> 28x28.
        assert_eq!(ConvGeometry::new(1, 6, [5, 5]).padding([2, 2]).output_size([28, 28]), Ok([28, 28]));
        // floor((32 + 2 - 3) / 2) + 1 = 16; dilation 2 spans 5.
        assert_eq!(ConvGeometry::new(3, 8, [3, 3]).stride([2, 2]).padding([1, 1]).output_size([32, 32]), Ok([16, 16]));
        assert_eq!(ConvGeometry::new(3, 8, [3, 3]).dilation([2, 2]).output_size([9, 7]), Ok([5, 3]));
        assert!(ConvGeometry::new(1, 1, [5, 5]).output_size([4, 9]).is_err());
        assert!(ConvGeometry::new(1, 1, [2, 2]).padding([usize::MAX, 0]).output_size([4, 4]).is_err());
    }

    #[test]
    fn invalid_geometries_are_rejected() {
        assert!(ConvGeometry::new(4, 8, [3, 3]).groups(4).validate().is_ok());
        for g in [
            ConvGeometry::new(0, 8, [3, 3]),
            ConvGeometry::new(4, 8, [0, 3]),
            ConvGeometry::new(4, 8, [3, 3]).stride([1, 0]),
            ConvGeometry::new(4, 8, [3, 3]).dilation([0, 1]),
            ConvGeometry::new(4, 6, [3, 3]).groups(4),
            ConvGeometry::new(4, usize::MAX / 2, [3, 3]),
        ] {
            assert!(g.validate().is_err(), "{g:?}");
        }
    }
}
