//! Weight pruning with one global threshold over the weights of every dense and convolution layer: by
//! signal-to-noise ratio |mu| / sigma (Blundell et al. 2015, section 5.1), by magnitude |mu|, or at random.
//! Pruned weights get mu = sigma = 0, so the writer stores dense layers' survivors sparsely (a convolution's
//! kernel stays dense, its pruned weights zero). [`finetune`] retrains the survivors with the pattern fixed.

use crate::error::{Result, TrainError};
use crate::progress::TrainProgress;
use crate::recipe::TrainingSpec;
use crate::{Recipe, Run};
use bnn_runtime::{BayesianConv2d, BayesianDense, Conv2d, Dense, Layer, Model, Named, Provenance, SeededRng};
use serde::Serialize;
use std::path::Path;

/// What ranks the weights; the lowest-ranked are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// |mu| / sigma (Bayesian layers only).
    Snr,
    /// |mu|.
    Magnitude,
    /// A seeded random order: the baseline any criterion must beat.
    Random,
}

/// The names `bnn prune --criterion` takes and reports print (`FromStr`, `Display`).
impl Named for Criterion {
    const WHAT: &'static str = "pruning criterion";
    const NAMES: &'static [(Self, &'static str)] =
        &[(Criterion::Snr, "snr"), (Criterion::Magnitude, "magnitude"), (Criterion::Random, "random")];
}
bnn_runtime::impl_named!(Criterion);

/// What a pruning did, stored in the pruned model's provenance under `pruning`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruneReport {
    pub criterion: Criterion,
    /// Fraction of the candidate weights removed (the asked sparsity, up to rounding, unless a layer's floor
    /// kept more).
    pub sparsity: f64,
    /// Lowest score kept.
    pub threshold: f64,
    /// Kept fraction of each pruned layer's weights, by layer index.
    pub kept_fraction: Vec<(usize, f64)>,
}

/// The score of every weight of the pruned layers, layer after layer (row-major). Already-pruned weights
/// (mu = sigma = 0) score -inf; a weight with sigma = 0 and mu != 0 scores +inf under SNR.
pub fn scores(model: &Model, criterion: Criterion, seed: u64) -> Result<Vec<(usize, Vec<f64>)>> {
    let bayesian = model.layers().iter().any(|l| matches!(l, Layer::BayesianDense(_) | Layer::BayesianConv2d(_)));
    if criterion == Criterion::Snr && !bayesian {
        return Err(TrainError::Argument("SNR pruning needs Bayesian layers; this model has none".into()));
    }
    let mut rng = SeededRng::new(seed);
    let mut out = Vec::new();
    for (index, layer) in model.layers().iter().enumerate() {
        let (mu, sigma) = match layer {
            Layer::BayesianDense(l) => (l.dense_weight_mu(), l.dense_weight_sigma()),
            Layer::BayesianConv2d(l) => (l.weight_mu().to_vec(), l.weight_sigma().to_vec()),
            Layer::Dense(l) if !bayesian => {
                let w = l.dense_weight();
                let ones = vec![1.0; w.len()];
                (w, ones)
            }
            Layer::Conv2d(l) if !bayesian => (l.weight().to_vec(), vec![1.0; l.weight().len()]),
            _ => continue,
        };
        let s = mu
            .iter()
            .zip(&sigma)
            .map(|(m, s)| {
                if *m == 0.0 && *s == 0.0 {
                    return f64::NEG_INFINITY;
                }
                match criterion {
                    Criterion::Snr => (m.abs() / s) as f64,
                    Criterion::Magnitude => m.abs() as f64,
                    Criterion::Random => rng.uniform() as f64,
                }
            })
            .collect();
        out.push((index, s));
    }
    Ok(out)
}

/// Removes the `sparsity` fraction of lowest-scoring weights over all pruned layers at once.
pub fn prune(model: &Model, sparsity: f64, criterion: Criterion, seed: u64) -> Result<(Model, PruneReport)> {
    prune_within(model, sparsity, criterion, seed, &KeptBounds::default())
}

/// Per-layer bounds on what one global ranking keeps ([`prune_within`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeptBounds {
    /// Every pruned layer keeps at least this fraction of its weights (its highest-ranked, rounded up), even
    /// where the global ranking would remove more: the model then ends up less sparse than asked.
    pub floor: f64,
    /// `(layer index, fraction)`: that layer keeps at most this fraction of its weights (rounded down); the
    /// budget it gives up goes to the next-ranked weights of the other layers, so the sparsity stays as asked.
    /// What a convolution kernel costs is its taps times its output positions, so a ceiling on the kernels is
    /// how a pruned CNN saves compute rather than only bytes.
    pub ceilings: Vec<(usize, f64)>,
}

/// As [`prune`], within per-layer bounds: the weights are taken in the order of their scores (highest first;
/// among equal scores the later position first) until `1 - sparsity` of them are kept, passing over a layer at
/// its ceiling; then a layer below its floor keeps its highest-ranked weights up to the floor.
pub fn prune_within(
    model: &Model,
    sparsity: f64,
    criterion: Criterion,
    seed: u64,
    bounds: &KeptBounds,
) -> Result<(Model, PruneReport)> {
    if !(0.0..=1.0).contains(&sparsity) {
        return Err(TrainError::Argument(format!("sparsity must lie in [0, 1], found {sparsity}")));
    }
    let fraction_ok = |f: f64| (0.0..=1.0).contains(&f);
    if !fraction_ok(bounds.floor) {
        return Err(TrainError::Argument(format!(
            "the least kept fraction of a layer must lie in [0, 1], found {}",
            bounds.floor
        )));
    }
    let scores = scores(model, criterion, seed)?;
    let mut ceiling = vec![usize::MAX; scores.len()];
    for (layer, fraction) in &bounds.ceilings {
        let Some(slot) = scores.iter().position(|(index, _)| index == layer) else {
            return Err(TrainError::Argument(format!(
                "a kept-fraction ceiling names layer {layer}, which has no prunable weights (those are layers {:?})",
                scores.iter().map(|(i, _)| *i).collect::<Vec<_>>()
            )));
        };
        if !fraction_ok(*fraction) {
            return Err(TrainError::Argument(format!(
                "the kept fraction ceiling of layer {layer} must lie in [0, 1], found {fraction}"
            )));
        }
        ceiling[slot] = (fraction * scores[slot].1.len() as f64).floor() as usize;
    }
    let n: usize = scores.iter().map(|(_, s)| s.len()).sum();
    let remove = ((n as f64) * sparsity).round() as usize;
    let mut order: Vec<(usize, usize)> =
        scores.iter().enumerate().flat_map(|(slot, (_, s))| (0..s.len()).map(move |i| (slot, i))).collect();
    order.sort_unstable_by(|a, b| scores[b.0].1[b.1].total_cmp(&scores[a.0].1[a.1]).then(b.cmp(a)));
    let mut keep: Vec<Vec<bool>> = scores.iter().map(|(_, s)| vec![false; s.len()]).collect();
    let mut counts = vec![0; scores.len()];
    let (mut budget, mut threshold) = (n - remove, f64::INFINITY);
    for (slot, i) in order {
        if budget == 0 {
            break;
        }
        if counts[slot] < ceiling[slot] {
            keep[slot][i] = true;
            counts[slot] += 1;
            budget -= 1;
            threshold = scores[slot].1[i];
        }
    }
    if remove == 0 && bounds.ceilings.is_empty() {
        threshold = f64::NEG_INFINITY;
    }
    let mut kept_fraction = Vec::new();
    let (mut removed, mut layers) = (0, model.layers().to_vec());
    for ((index, s), mut keep) in scores.iter().zip(keep) {
        let floor = (bounds.floor * s.len() as f64).ceil() as usize;
        if keep.iter().filter(|k| **k).count() < floor {
            keep = highest(s, floor);
        }
        let kept = keep.iter().filter(|k| **k).count();
        removed += s.len() - kept;
        kept_fraction.push((*index, kept as f64 / keep.len() as f64));
        let mask =
            |v: Vec<f32>| -> Vec<f32> { v.into_iter().zip(&keep).map(|(x, k)| if *k { x } else { 0.0 }).collect() };
        layers[*index] = match &layers[*index] {
            Layer::BayesianDense(l) => Layer::BayesianDense(BayesianDense::new(
                l.in_features(),
                l.out_features(),
                mask(l.dense_weight_mu()),
                mask(l.dense_weight_sigma()),
                l.bias_mu().to_vec(),
                l.bias_sigma().to_vec(),
            )),
            Layer::Dense(l) => {
                Layer::Dense(Dense::new(l.in_features(), l.out_features(), mask(l.dense_weight()), l.bias().to_vec()))
            }
            Layer::BayesianConv2d(l) => Layer::BayesianConv2d(BayesianConv2d::new(
                *l.geometry(),
                mask(l.weight_mu().to_vec()),
                mask(l.weight_sigma().to_vec()),
                l.bias_mu().to_vec(),
                l.bias_sigma().to_vec(),
            )),
            Layer::Conv2d(l) => Layer::Conv2d(Conv2d::new(*l.geometry(), mask(l.weight().to_vec()), l.bias().to_vec())),
            other => other.clone(),
        };
    }
    let sparsity = if n == 0 { 0.0 } else { removed as f64 / n as f64 };
    let report = PruneReport { criterion, sparsity, threshold, kept_fraction };
    let mut provenance = model.provenance().clone();
    provenance.extra.insert("pruning".into(), serde_json::to_value(&report).unwrap_or_default());
    let (task, normalization) = (model.task().clone(), model.normalization().cloned());
    let pruned = Model::with_input(layers, model.input_shape(), task, normalization, provenance)?;
    Ok((pruned.sparsified(), report))
}

/// The `k` highest of `scores` (earlier positions first among equals), never an already-pruned weight.
fn highest(scores: &[f64], k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..scores.len()).filter(|i| scores[*i] > f64::NEG_INFINITY).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
    let mut keep = vec![false; scores.len()];
    order.into_iter().take(k).for_each(|i| keep[i] = true);
    keep
}

/// Retrains a pruned model's surviving weights for `epochs` epochs with the pruning pattern fixed, using the
/// recipe stored in its provenance at the step size that last trained its weights ([`finetune_learning_rate`];
/// no further decay). `data` as for training (MNIST directory or CSV file; default as the recipe says, or
/// `$BNN_MNIST_DIR`). The result is stored sparsely and records `finetune_epochs` in its provenance.
pub fn finetune(pruned: &Model, epochs: usize, data: Option<&Path>, progress: &mut dyn TrainProgress) -> Result<Model> {
    let text = pruned
        .provenance()
        .recipe
        .clone()
        .ok_or_else(|| TrainError::Recipe("fine-tuning needs the recipe in the model's provenance".into()))?;
    let mut recipe = Recipe::from_toml(&text)?;
    let t = &mut recipe.training;
    t.learning_rate = finetune_learning_rate(t, pruned.provenance());
    t.lr_decay = 1.0;
    t.epochs = epochs;
    let mut run = Run::from_model(pruned, recipe, data, candle_core::Device::Cpu)?;
    run.recipe_source = Some(text);
    run.train(None, progress)?;
    let mut provenance = pruned.provenance().clone();
    provenance.extra.insert("finetune_epochs".into(), serde_json::json!(epochs));
    Ok(run.export()?.with_provenance(provenance).sparsified())
}

/// The step size of the last epoch that trained a model's weights: epoch `E` (counted from 1) trains at
/// `learning_rate * lr_decay^(E - 1)`, and `E` is the epoch its provenance says was selected (`selected_epoch`),
/// else the epochs run (`epochs`), else the recipe's budget. Early stopping ends most runs long before the budget,
/// where a strongly decayed step size would be next to nothing.
pub fn finetune_learning_rate(training: &TrainingSpec, provenance: &Provenance) -> f64 {
    let epoch = |key: &str| provenance.extra.get(key).and_then(serde_json::Value::as_u64);
    let last = epoch("selected_epoch").or_else(|| epoch("epochs")).unwrap_or(training.epochs as u64);
    let decays = i32::try_from(last.saturating_sub(1)).unwrap_or(i32::MAX);
    training.learning_rate * training.lr_decay.powi(decays)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_runtime::{Provenance, Task};

    fn model() -> Model {
        // mu = 1..=8, sigma chosen so that SNR ranks the weights in the opposite order to |mu|.
        let mu: Vec<f32> = (1..=8).map(|v| v as f32).collect();
        let sigma: Vec<f32> = mu.iter().map(|m| m * m).collect();
        let layer = BayesianDense::new(4, 2, mu, sigma, vec![0.0; 2], vec![0.1; 2]);
        Model::new(
            vec![Layer::BayesianDense(layer)],
            Task::Classification { classes: 2, labels: vec![] },
            None,
            Provenance::default(),
        )
        .unwrap()
    }

    fn kept_mu(m: &Model) -> Vec<f32> {
        let Layer::BayesianDense(l) = &m.layers()[0] else { unreachable!() };
        l.dense_weight_mu().into_iter().filter(|v| *v != 0.0).collect()
    }

    #[test]
    fn fine_tuning_continues_at_the_step_size_of_the_epoch_it_starts_from() {
        let training = TrainingSpec { learning_rate: 0.1, lr_decay: 0.5, epochs: 100, ..TrainingSpec::default() };
        let with = |pairs: &[(&str, u64)]| {
            let mut p = Provenance::default();
            pairs.iter().for_each(|(k, v)| _ = p.extra.insert((*k).into(), serde_json::json!(v)));
            finetune_learning_rate(&training, &p)
        };
        // Selected epoch 3 of 41 run: trained last at 0.1 * 0.5^2, not at the budget's 0.1 * 0.5^100.
        assert_eq!(with(&[("epochs", 41), ("selected_epoch", 3)]), 0.025);
        assert_eq!(with(&[("epochs", 2)]), 0.05);
        assert_eq!(with(&[]), 0.1 * 0.5f64.powi(99));
    }

    #[test]
    fn snr_keeps_the_highest_signal_to_noise_and_magnitude_the_largest_means() {
        let (snr, report) = prune(&model(), 0.75, Criterion::Snr, 0).unwrap();
        assert_eq!(kept_mu(&snr), vec![1.0, 2.0]); // SNR = 1/mu is largest for small mu
        assert_eq!(report.kept_fraction, vec![(0, 0.25)]);
        let (mag, _) = prune(&model(), 0.75, Criterion::Magnitude, 0).unwrap();
        assert_eq!(kept_mu(&mag), vec![7.0, 8.0]);
        let (rnd, _) = prune(&model(), 0.5, Criterion::Random, 3).unwrap();
        assert_eq!(kept_mu(&rnd).len(), 4);
        assert!(snr.provenance().extra.contains_key("pruning"));
    }

    #[test]
    fn each_criterion_is_named_as_reports_and_the_command_line_name_it() {
        for (c, name) in Criterion::NAMES {
            assert_eq!(c.to_string(), *name);
            assert_eq!(name.parse::<Criterion>(), Ok(*c));
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(name));
        }
        assert!("snr ".parse::<Criterion>().unwrap_err().to_string().contains("snr, magnitude, random"));
    }

    #[test]
    fn a_floor_keeps_each_layers_best_weights_where_the_global_threshold_would_empty_it() {
        // Layer 0's SNRs (0.1..0.4) all lie below layer 1's (10..40): 50% global pruning empties layer 0.
        let small = BayesianDense::new(2, 2, vec![0.1, 0.2, 0.3, 0.4], vec![1.0; 4], vec![0.0; 2], vec![0.1; 2]);
        let large = BayesianDense::new(2, 2, vec![10., 20., 30., 40.], vec![1.0; 4], vec![0.0; 2], vec![0.1; 2]);
        let m = Model::new(
            vec![Layer::BayesianDense(small), Layer::BayesianDense(large)],
            Task::Classification { classes: 2, labels: vec![] },
            None,
            Provenance::default(),
        )
        .unwrap();
        let (_, plain) = prune(&m, 0.5, Criterion::Snr, 0).unwrap();
        assert_eq!(plain.kept_fraction, vec![(0, 0.0), (1, 1.0)]);
        let floor = KeptBounds { floor: 0.3, ..KeptBounds::default() };
        let (floored, report) = prune_within(&m, 0.5, Criterion::Snr, 0, &floor).unwrap();
        // ceil(0.3 * 4) = 2 weights of layer 0 stay, its two highest; layer 1 is untouched by the floor.
        assert_eq!(report.kept_fraction, vec![(0, 0.5), (1, 1.0)]);
        assert_eq!(report.sparsity, 2.0 / 8.0);
        let Layer::BayesianDense(l) = &floored.layers()[0] else { panic!() };
        assert_eq!(l.dense_weight_mu(), vec![0.0, 0.0, 0.3, 0.4]);
        assert!(prune_within(&m, 0.5, Criterion::Snr, 0, &KeptBounds { floor: 1.5, ..floor }).is_err());
    }

    #[test]
    fn a_ceiling_passes_a_layers_budget_to_the_next_ranked_weights_of_the_others() {
        // Layer 0's SNRs (10..40) all lie above layer 1's (1..4): 50% global pruning keeps only layer 0.
        let high = BayesianDense::new(2, 2, vec![10., 20., 30., 40.], vec![1.0; 4], vec![0.0; 2], vec![0.1; 2]);
        let low = BayesianDense::new(2, 2, vec![1., 2., 3., -4.], vec![1.0; 4], vec![0.0; 2], vec![0.1; 2]);
        let m = Model::new(
            vec![
                Layer::BayesianDense(high),
                Layer::Activation(bnn_runtime::Activation::Relu),
                Layer::BayesianDense(low),
            ],
            Task::Classification { classes: 2, labels: vec![] },
            None,
            Provenance::default(),
        )
        .unwrap();
        let (_, plain) = prune(&m, 0.5, Criterion::Snr, 0).unwrap();
        assert_eq!(plain.kept_fraction, vec![(0, 1.0), (2, 0.0)]);
        // At most floor(0.6 * 4) = 2 of layer 0 (its best two); the sparsity stays 50%: layer 2's best two.
        let capped = KeptBounds { ceilings: vec![(0, 0.6)], ..KeptBounds::default() };
        let (pruned, report) = prune_within(&m, 0.5, Criterion::Snr, 0, &capped).unwrap();
        assert_eq!(report.kept_fraction, vec![(0, 0.5), (2, 0.5)]);
        assert_eq!((report.sparsity, report.threshold), (0.5, 3.0));
        let mu = |i: usize| match &pruned.layers()[i] {
            Layer::BayesianDense(l) => l.dense_weight_mu(),
            _ => panic!(),
        };
        assert_eq!((mu(0), mu(2)), (vec![0.0, 0.0, 30.0, 40.0], vec![0.0, 0.0, 3.0, -4.0]));
        // A ceiling on a layer without weights, or outside [0, 1], is refused.
        for ceilings in [vec![(1, 0.5)], vec![(7, 0.5)], vec![(0, 1.5)], vec![(0, f64::NAN)]] {
            let bounds = KeptBounds { ceilings, ..KeptBounds::default() };
            assert!(prune_within(&m, 0.5, Criterion::Snr, 0, &bounds).is_err());
        }
    }

    #[test]
    fn convolution_kernels_and_dense_weights_share_one_threshold() {
        use bnn_runtime::{ConvGeometry, Shape};
        // Kernel SNRs 1..=4 and dense SNRs 1.5..=4.5 (step 1): 50% pruning keeps the four of SNR >= 3.
        let g = ConvGeometry::new(1, 1, [2, 2]);
        let conv = BayesianConv2d::new(g, vec![1.0, -2.0, 3.0, 4.0], vec![1.0; 4], vec![0.5], vec![0.1]);
        let dense = BayesianDense::new(1, 4, vec![1.5, 2.5, 3.5, -4.5], vec![1.0; 4], vec![0.0; 4], vec![0.1; 4]);
        let layers = vec![Layer::BayesianConv2d(conv), Layer::Flatten, Layer::BayesianDense(dense)];
        let task = Task::Classification { classes: 4, labels: vec![] };
        let m = Model::new_image(layers, [1, 2, 2], task, None, Provenance::default()).unwrap();
        let (pruned, report) = prune(&m, 0.5, Criterion::Snr, 0).unwrap();
        assert_eq!(report.kept_fraction, vec![(0, 0.5), (2, 0.5)]);
        assert_eq!(pruned.input_shape(), Shape::Image([1, 2, 2]));
        let Layer::BayesianConv2d(c) = &pruned.layers()[0] else { panic!() };
        assert_eq!((c.weight_mu(), c.weight_sigma()), (&[0.0, 0.0, 3.0, 4.0][..], &[0.0, 0.0, 1.0, 1.0][..]));
        assert_eq!(c.bias_mu(), &[0.5]);
        let Layer::BayesianDense(d) = &pruned.layers()[2] else { panic!() };
        assert_eq!(d.dense_weight_mu(), vec![0.0, 0.0, 3.5, -4.5]);
    }

    #[test]
    fn exactly_the_requested_fraction_is_removed_even_with_ties() {
        let layer = BayesianDense::new(5, 2, vec![1.0; 10], vec![1.0; 10], vec![0.0; 2], vec![0.1; 2]);
        let m = Model::new(
            vec![Layer::BayesianDense(layer)],
            Task::Classification { classes: 2, labels: vec![] },
            None,
            Provenance::default(),
        )
        .unwrap();
        for (sparsity, kept) in [(0.0, 10), (0.3, 7), (0.5, 5), (1.0, 0)] {
            let (p, _) = prune(&m, sparsity, Criterion::Snr, 0).unwrap();
            assert_eq!(kept_mu(&p).len(), kept, "sparsity {sparsity}");
        }
        assert!(prune(&m, 1.5, Criterion::Snr, 0).is_err());
    }
}
