//! A network's architecture as text — `bnn import --arch` and a recipe's `model.arch`: stages separated by `-`,
//! the input first.
//!
//! - the input: `N` (a flat vector of N values) or `CxHxW` (an image of C channels, H rows and W columns, passed
//!   flat in NCHW order);
//! - `N`: a dense (linear) layer to N outputs;
//! - `conv<OUT>k<K>[s<S>][p<P>][d<D>][g<G>]`: a 2-D convolution to OUT channels with a K×K kernel, stride S,
//!   zero padding P, dilation D, G groups (defaults 1, 0, 1, 1); K, S, P and D may be `AxB` for height × width;
//! - `maxpool<K>[s<S>][p<P>]`, `avgpool<K>[s<S>][p<P>]`: pooling with a K×K window, stride S (default K), padding
//!   P;
//! - `flatten`: the image as a flat vector, before the first dense layer.
//!
//! The activation goes after every dense and convolution stage but the last, so LeNet-5 reads
//! `1x28x28-conv6k5p2-maxpool2-conv16k5-maxpool2-flatten-120-84-10`; a plain MLP `784-400-400-10`.

use bnn_runtime::{ConvGeometry, PoolGeometry, PoolKind, Shape};

/// One stage after the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    Dense(usize),
    Conv(ConvGeometry),
    Pool(PoolKind, PoolGeometry),
    Flatten,
}

/// The input and the stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Architecture {
    pub input: Shape,
    pub stages: Vec<Stage>,
}

impl Architecture {
    /// A multi-layer perceptron: `sizes[0]` inputs, then a dense layer to each following size.
    pub fn mlp(sizes: &[usize]) -> Self {
        let input = Shape::Flat(sizes.first().copied().unwrap_or(0));
        Self { input, stages: sizes.iter().skip(1).map(|n| Stage::Dense(*n)).collect() }
    }

    /// Parses the `--arch` grammar (see the module documentation). Convolutions take their input channels from
    /// the stages before them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |what: String| format!("`{text}`: {what}");
        let mut tokens = text.split('-').map(str::trim);
        let first = tokens.next().unwrap_or_default();
        let input = match numbers(first, 'x').as_deref() {
            Some([n]) => Shape::Flat(*n),
            Some([c, h, w]) => Shape::Image([*c, *h, *w]),
            _ => return Err(bad(format!("the input `{first}` is neither N nor CxHxW"))),
        };
        let mut channels = match input {
            Shape::Image([c, _, _]) => Some(c),
            Shape::Flat(_) => None,
        };
        let mut stages = Vec::new();
        for token in tokens {
            let stage = if token == "flatten" {
                Stage::Flatten
            } else if let Ok(n) = token.parse::<usize>() {
                Stage::Dense(n)
            } else if let Some(rest) = token.strip_prefix("conv") {
                let fields = fields(rest, 'k', "sdpg").ok_or_else(|| bad(format!("cannot read `{token}`")))?;
                if fields.head_pair.is_none() || fields.get('k').is_none() {
                    return Err(bad(format!("`{token}` needs its output channels and a kernel size: conv<OUT>k<K>")));
                }
                let in_channels = channels
                    .ok_or_else(|| bad(format!("`{token}` needs an image: the input or a convolution before")))?;
                let square = |key: char, default: usize| fields.get(key).unwrap_or([default, default]);
                let geometry = ConvGeometry::new(in_channels, fields.head, square('k', 0))
                    .stride(square('s', 1))
                    .padding(square('p', 0))
                    .dilation(square('d', 1))
                    .groups(fields.get('g').map_or(1, |g| g[0]));
                Stage::Conv(geometry)
            } else if let Some((kind, rest)) = token
                .strip_prefix("maxpool")
                .map(|r| (PoolKind::Max, r))
                .or_else(|| token.strip_prefix("avgpool").map(|r| (PoolKind::Avg, r)))
            {
                let fields = fields(rest, ' ', "sp").ok_or_else(|| bad(format!("cannot read `{token}`")))?;
                let kernel = fields.head_pair.ok_or_else(|| bad(format!("`{token}` needs a window size")))?;
                let mut geometry = PoolGeometry::new(kernel).padding(fields.get('p').unwrap_or([0, 0]));
                if let Some(s) = fields.get('s') {
                    geometry = geometry.stride(s);
                }
                Stage::Pool(kind, geometry)
            } else {
                return Err(bad(format!("`{token}` is not a layer size, conv..., maxpool..., avgpool... or flatten")));
            };
            match &stage {
                Stage::Conv(g) => channels = Some(g.out_channels),
                Stage::Flatten | Stage::Dense(_) => channels = None,
                Stage::Pool(..) => {}
            }
            stages.push(stage);
        }
        Ok(Self { input, stages })
    }
}

impl Architecture {
    /// The number of stages with weights (dense and convolution).
    pub fn weighted(&self) -> usize {
        self.stages.iter().filter(|s| matches!(s, Stage::Dense(_) | Stage::Conv(_))).count()
    }

    /// The shape each stage receives, followed from the input: a convolution or a pooling stage needs an image and
    /// a kernel or window that fits it; flatten makes a flat vector; a dense stage makes one of its width, whatever
    /// it receives (the caller decides whether it needs `flatten` first).
    pub fn stage_inputs(&self) -> Result<Vec<Shape>, String> {
        let mut shape = self.input;
        let mut inputs = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            inputs.push(shape);
            let image = || match shape {
                Shape::Image([c, h, w]) => Ok((c, [h, w])),
                Shape::Flat(_) => Err(format!("{stage:?} needs an image, not a flat vector")),
            };
            shape = match stage {
                Stage::Dense(out) => Shape::Flat(*out),
                Stage::Conv(g) => {
                    let [oh, ow] = g.output_size(image()?.1)?;
                    Shape::Image([g.out_channels, oh, ow])
                }
                Stage::Pool(_, geometry) => {
                    let (c, hw) = image()?;
                    let [oh, ow] = geometry.output_size(hw)?;
                    Shape::Image([c, oh, ow])
                }
                Stage::Flatten => Shape::Flat(shape.len()),
            };
        }
        Ok(inputs)
    }
}

/// `A`, or `AxB`, ... as numbers.
fn numbers(text: &str, separator: char) -> Option<Vec<usize>> {
    text.split(separator).map(|s| s.parse::<usize>().ok()).collect()
}

/// A stage's numbers: the leading one (or pair) and each `key` followed by a number or `AxB`.
struct Fields {
    head: usize,
    head_pair: Option<[usize; 2]>,
    keyed: Vec<(char, [usize; 2])>,
}

impl Fields {
    fn get(&self, key: char) -> Option<[usize; 2]> {
        self.keyed.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// Reads `<head>` then `<key><value>` pairs where every key is `first` or one of `keys`: `6k5p2` with first `k`
/// gives head 6, k = 5×5, p = 2×2. A value is `A` or `AxB`.
fn fields(text: &str, first: char, keys: &str) -> Option<Fields> {
    let is_key = |c: char| c == first || keys.contains(c);
    let split_at = text.find(is_key).unwrap_or(text.len());
    let (head, mut rest) = text.split_at(split_at);
    let pair = |v: &str| -> Option<[usize; 2]> {
        match numbers(v, 'x')?.as_slice() {
            [a] => Some([*a, *a]),
            [a, b] => Some([*a, *b]),
            _ => None,
        }
    };
    let head_pair = if head.is_empty() { None } else { Some(pair(head)?) };
    let mut keyed = Vec::new();
    while let Some(key) = rest.chars().next() {
        let value_end = rest[1..].find(is_key).map_or(rest.len(), |i| i + 1);
        keyed.push((key, pair(&rest[1..value_end])?));
        rest = &rest[value_end..];
    }
    let head = head_pair.map_or(0, |p| p[0]);
    if keyed.iter().enumerate().any(|(i, (k, _))| keyed[..i].iter().any(|(j, _)| j == k)) {
        return None;
    }
    Some(Fields { head, head_pair, keyed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenet_and_mlps_parse() {
        let lenet = Architecture::parse("1x28x28-conv6k5p2-maxpool2-conv16k5-maxpool2-flatten-120-84-10").unwrap();
        assert_eq!(lenet.input, Shape::Image([1, 28, 28]));
        assert_eq!(lenet.stages[0], Stage::Conv(ConvGeometry::new(1, 6, [5, 5]).padding([2, 2])));
        assert_eq!(lenet.stages[1], Stage::Pool(PoolKind::Max, PoolGeometry::new([2, 2])));
        assert_eq!(lenet.stages[2], Stage::Conv(ConvGeometry::new(6, 16, [5, 5])));
        assert_eq!(lenet.stages[4..], [Stage::Flatten, Stage::Dense(120), Stage::Dense(84), Stage::Dense(10)]);
        assert_eq!(Architecture::parse("784-400-10").unwrap(), Architecture::mlp(&[784, 400, 10]));
        let odd = Architecture::parse("3x32x32-conv8k3x5s2p1x2d2g1-avgpool3s1p1-flatten-2").unwrap();
        let g = ConvGeometry::new(3, 8, [3, 5]).stride([2, 2]).padding([1, 2]).dilation([2, 2]);
        assert_eq!(odd.stages[0], Stage::Conv(g));
        assert_eq!(odd.stages[1], Stage::Pool(PoolKind::Avg, PoolGeometry::new([3, 3]).stride([1, 1]).padding([1, 1])));
        // Depthwise: groups = channels.
        let dw = Architecture::parse("4x8x8-conv4k3g4-flatten-2").unwrap();
        assert_eq!(dw.stages[0], Stage::Conv(ConvGeometry::new(4, 4, [3, 3]).groups(4)));
    }

    #[test]
    fn each_stage_receives_the_shape_the_stages_before_it_make() {
        let lenet = Architecture::parse("1x28x28-conv6k5p2-maxpool2-conv16k5-maxpool2-flatten-120-84-10").unwrap();
        assert_eq!(lenet.weighted(), 5);
        let inputs = lenet.stage_inputs().unwrap();
        let images = [[1, 28, 28], [6, 28, 28], [6, 14, 14], [16, 10, 10], [16, 5, 5]].map(Shape::Image);
        assert_eq!(inputs[..5], images);
        assert_eq!(inputs[5..], [400, 120, 84].map(Shape::Flat));
        let flat_pool = Architecture::parse("16-maxpool2-4").unwrap().stage_inputs().unwrap_err();
        assert!(flat_pool.contains("needs an image"), "{flat_pool}");
        let too_small = Architecture::parse("1x4x4-conv2k5-flatten-2").unwrap().stage_inputs().unwrap_err();
        assert!(too_small.contains("does not fit"), "{too_small}");
    }

    #[test]
    fn bad_text_names_the_stage() {
        for (text, want) in [
            ("", "the input"),
            ("1x28-10", "the input"),
            ("784-conv6k5-10", "needs an image"),
            ("1x8x8-conv6k5p-10", "cannot read"),
            ("1x8x8-conv6k5k3-10", "cannot read"),
            ("1x8x8-maxpool-10", "window size"),
            ("1x8x8-dense10", "is not a layer size"),
        ] {
            let err = Architecture::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
