//! The fused CPU step computes what the composed candle ops compute: for every prior × gradient estimator ×
//! pruning mask, the gradients of the loss (data term + weighted KL) with respect to every mu and rho equal
//! candle autograd's gradients of the composed reference path from the same noise, to 1e-4 of the tensor's
//! largest gradient, and the loss value equals the reference's to 1e-5 relative; the same holds for
//! deterministic layers with dropout, every activation, weight decay and regression likelihoods. A wrong
//! chain-rule factor, a missing KL term, a sign or a different noise draw fails these.

use bnn_runtime::Activation;
use bnn_runtime::SeededRng;
use bnn_trainer::likelihood::{BatchTargets, Likelihood};
use bnn_trainer::nn::{NamedGradient, NetLayer, Network, Noise};
use bnn_trainer::recipe::{Estimator, LikelihoodSpec, ModelKind, ModelSpec, PriorSpec};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};

const KL_WEIGHT: f64 = 0.05;

/// A Bayesian network of `spec` for `inputs` values and 3 outputs, with varied means and rhos (rho in [-5, 1]),
/// optionally with a third of the first layer's weights pruned.
fn randomized(spec: &ModelSpec, inputs: usize, masked: bool) -> Network {
    let dev = Device::Cpu;
    let mut net = Network::new(spec, inputs, 3, 11, &dev).unwrap();
    let mut rng = SeededRng::new(5);
    for (name, var) in net.named_vars() {
        let n = var.as_tensor().elem_count();
        let values: Vec<f32> = if name.ends_with(".rho") {
            (0..n).map(|_| -5.0 + 6.0 * rng.uniform()).collect()
        } else {
            (0..n).map(|_| rng.gaussian() * 0.7).collect()
        };
        var.set(&Tensor::from_vec(values, var.as_tensor().shape(), &dev).unwrap()).unwrap();
    }
    if masked {
        let every_third = |shape: &[usize]| {
            let mask: Vec<f32> = (0..shape.iter().product()).map(|i| if i % 3 == 1 { 0.0 } else { 1.0 }).collect();
            Tensor::from_vec(mask, shape, &dev).unwrap()
        };
        match &mut net.layers[0] {
            NetLayer::Bayes(l) => l.set_mask(every_third(&[l.out_features(), l.in_features()])).unwrap(),
            NetLayer::BayesConv(l) => l.set_mask(every_third(&l.geometry().weight_shape())).unwrap(),
            _ => unreachable!("the first layer is Bayesian"),
        }
    }
    net
}

/// The 4-6-3 network.
fn network(masked: bool) -> Network {
    randomized(&ModelSpec { hidden: vec![6], ..Default::default() }, 4, masked)
}

fn batch() -> (Tensor, BatchTargets) {
    batch_of(4)
}

/// Eight examples of `inputs` values and their classes.
fn batch_of(inputs: usize) -> (Tensor, BatchTargets) {
    let dev = Device::Cpu;
    let mut rng = SeededRng::new(9);
    let x: Vec<f32> = (0..8 * inputs).map(|_| rng.gaussian()).collect();
    let y: Vec<u32> = (0..8).map(|i| i % 3).collect();
    (Tensor::from_vec(x, (8, inputs), &dev).unwrap(), BatchTargets::Classes(Tensor::from_vec(y, 8, &dev).unwrap()))
}

fn check(prior: PriorSpec, estimator: Estimator, masked: bool) {
    check_network(&network(masked), &network(masked), batch(), prior, estimator, masked);
}

/// The fused gradients of `fused` on `(x, y)` equal autograd's of the composed path of `reference` (the same
/// network, built twice).
fn check_network(
    reference: &Network,
    fused: &Network,
    (x, y): (Tensor, BatchTargets),
    prior: PriorSpec,
    estimator: Estimator,
    masked: bool,
) {
    let case = format!("{prior:?}, {estimator:?}, masked {masked}, input {:?}", reference.input);
    let dev = Device::Cpu;
    let likelihood = Likelihood::new(LikelihoodSpec::Categorical, &dev).unwrap();

    let (out, kl) = reference.forward_train(&x, estimator, &prior, &mut Noise::for_step(3, 1, 2, &dev)).unwrap();
    let loss = (likelihood.nll(&out, &y).unwrap() + (kl * KL_WEIGHT).unwrap()).unwrap();
    let expected_loss = loss.to_scalar::<f32>().unwrap() as f64;
    let grads = loss.backward().unwrap();

    let (out, pass) = fused.forward_fused(&x, estimator, &prior, &mut Noise::for_step(3, 1, 2, &dev)).unwrap();
    let data = likelihood.nll(&out, &y).unwrap();
    let data_value = data.to_scalar::<f32>().unwrap() as f64;
    let (got, kl) = fused.fused_gradients(&data.backward().unwrap(), &pass, estimator, &prior, KL_WEIGHT).unwrap();
    let loss = data_value + KL_WEIGHT * kl;
    assert!((loss - expected_loss).abs() <= 1e-5 * expected_loss.abs(), "{case}: loss {loss} vs {expected_loss}");

    assert_gradients_match(&case, &got, &reference.named_vars(), &grads);
    if masked {
        let (_, mu) = got.iter().find(|(n, _)| n == "layers.0.weight.mu").unwrap();
        assert!(mu.iter().skip(1).step_by(3).all(|g| *g == 0.0), "{case}: pruned weights stay still");
    }
}

/// Convolutional networks — Flipout or weight sampling in the convolutions, max or average pooling, strides and
/// padding, two input channels (each with its own Flipout sign) — get autograd's gradients of the composed
/// path too.
#[test]
fn fused_gradients_of_convolutional_networks_equal_autograd() {
    let archs = ["2x6x6-conv3k3p1-maxpool2-conv4k2-flatten-5", "2x7x7-conv3k3s2p1-avgpool2-flatten-5"];
    let priors = [PriorSpec::Gaussian { sigma: 0.8 }, PriorSpec::ScaleMixture { pi: 0.5, sigma1: 1.0, sigma2: 0.05 }];
    for arch in archs {
        let spec = ModelSpec { arch: Some(arch.into()), ..Default::default() };
        let inputs = if arch.starts_with("2x6x6") { 72 } else { 98 };
        for prior in priors {
            for estimator in [Estimator::LocalReparam, Estimator::WeightSampling] {
                for masked in [false, true] {
                    let (reference, fused) = (randomized(&spec, inputs, masked), randomized(&spec, inputs, masked));
                    check_network(&reference, &fused, batch_of(inputs), prior, estimator, masked);
                }
            }
        }
    }
}

#[test]
fn fused_gradients_equal_autograd_of_the_composed_path_for_every_prior_estimator_and_mask() {
    let priors = [
        PriorSpec::Gaussian { sigma: 0.8 },
        PriorSpec::ScaleMixture { pi: 0.5, sigma1: 1.0, sigma2: 0.05 },
        PriorSpec::ScaleMixture { pi: 1.0, sigma1: 0.5, sigma2: 0.01 },
    ];
    for prior in priors {
        for estimator in [Estimator::LocalReparam, Estimator::WeightSampling] {
            for masked in [false, true] {
                check(prior, estimator, masked);
            }
        }
    }
}

#[test]
fn the_fused_and_composed_steps_train_the_same_weights() {
    // One full optimisation step each (Adam included) from the same start: the weights agree closely.
    use bnn_trainer::optim::Adam;
    let dev = Device::Cpu;
    let (x, y) = batch();
    let likelihood = Likelihood::new(LikelihoodSpec::Categorical, &dev).unwrap();
    let prior = PriorSpec::ScaleMixture { pi: 0.5, sigma1: 1.0, sigma2: 0.05 };
    for estimator in [Estimator::LocalReparam, Estimator::WeightSampling] {
        let reference = network(true);
        let mut adam = Adam::new(reference.named_vars()).unwrap();
        let (out, kl) = reference.forward_train(&x, estimator, &prior, &mut Noise::for_step(1, 0, 0, &dev)).unwrap();
        let loss = (likelihood.nll(&out, &y).unwrap() + (kl * KL_WEIGHT).unwrap()).unwrap();
        adam.step(&loss.backward().unwrap(), 0.01).unwrap();

        let fused = network(true);
        let mut adam = Adam::new(fused.named_vars()).unwrap();
        let (out, pass) = fused.forward_fused(&x, estimator, &prior, &mut Noise::for_step(1, 0, 0, &dev)).unwrap();
        let grads = likelihood.nll(&out, &y).unwrap().backward().unwrap();
        fused.update_fused(&grads, &pass, estimator, &prior, KL_WEIGHT, &mut adam, 0.01).unwrap();

        for ((name, a), (_, b)) in reference.named_vars().iter().zip(fused.named_vars().iter()) {
            let a = a.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = b.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                // Adam's first step moves every weight by lr = 0.01 (or 0 where pruned): 1e-5 is 0.1% of it.
                assert!((a - b).abs() < 1e-5, "{estimator:?}: {name}[{i}] {a} vs {b}");
            }
        }
    }
}

/// Every fused gradient in `got` (by name, in `vars`' order) equals autograd's in `grads` (see
/// [`assert_close`]).
fn assert_gradients_match(case: &str, got: &[NamedGradient], vars: &[(String, Var)], grads: &GradStore) {
    assert_eq!(got.len(), vars.len(), "{case}: every variable has a fused gradient");
    for ((name, g), (ref_name, var)) in got.iter().zip(vars) {
        assert_eq!(name, ref_name);
        let want = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_close(case, name, g, &want);
    }
}

/// `got` equals `want` to 1e-4 of `want`'s largest magnitude.
fn assert_close(case: &str, name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{case}: `{name}` sizes");
    let scale = want.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    assert!(scale > 0.0, "{case}: `{name}` has gradients");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * scale, "{case}: d loss / d {name}[{i}] = {g}, autograd says {w}");
    }
}

#[test]
fn deterministic_layers_dropout_activations_decay_and_regression_get_autograds_gradients() {
    // A 3-5-4-2 MC-dropout network (dense layers, dropout after each hidden activation) with a Gaussian
    // likelihood that learns its noise, or a heteroscedastic one, and weight decay on the dense weights.
    let dev = Device::Cpu;
    let mut rng = SeededRng::new(21);
    let x: Vec<f32> = (0..6 * 3).map(|_| rng.gaussian()).collect();
    let x = Tensor::from_vec(x, (6, 3), &dev).unwrap();
    let decay = 0.3;
    let prior = PriorSpec::Gaussian { sigma: 1.0 };
    let activations = [Activation::Tanh, Activation::Sigmoid, Activation::Gelu, Activation::Identity, Activation::Relu];
    for (k, activation) in activations.into_iter().enumerate() {
        let heteroscedastic = k % 2 == 1;
        let (spec, outputs) = if heteroscedastic {
            (LikelihoodSpec::Heteroscedastic, 1)
        } else {
            (LikelihoodSpec::Gaussian { sigma: 0.5, learn: true }, 2)
        };
        let case = format!("{activation:?}, {spec:?}");
        let model = ModelSpec {
            kind: ModelKind::McDropout,
            hidden: vec![5, 4],
            activation,
            dropout: 0.3,
            ..Default::default()
        };
        let likelihood = Likelihood::new(spec, &dev).unwrap();
        let y: Vec<f32> = (0..6 * outputs).map(|_| rng.gaussian()).collect();
        let y = BatchTargets::Values(Tensor::from_vec(y, (6, outputs), &dev).unwrap());
        let head = likelihood.head_width(outputs);
        let net = Network::new(&model, 3, head, 4, &dev).unwrap();
        let loss_of = |out: &Tensor| {
            let penalty = (net.deterministic_squared_norm(&dev).unwrap() * decay).unwrap();
            (likelihood.nll(out, &y).unwrap() + penalty).unwrap()
        };

        let (out, _) =
            net.forward_train(&x, Estimator::LocalReparam, &prior, &mut Noise::for_step(2, 0, 1, &dev)).unwrap();
        let loss = loss_of(&out);
        let expected = loss.to_scalar::<f32>().unwrap();
        let grads = loss.backward().unwrap();

        let (out, pass) =
            net.forward_fused(&x, Estimator::LocalReparam, &prior, &mut Noise::for_step(2, 0, 1, &dev)).unwrap();
        let loss = loss_of(&out);
        let value = loss.to_scalar::<f32>().unwrap();
        assert!((value - expected).abs() <= 1e-5 * expected.abs(), "{case}: loss {value} vs {expected}");
        let fused_grads = loss.backward().unwrap();
        let (got, kl) = net.fused_gradients(&fused_grads, &pass, Estimator::LocalReparam, &prior, 1.0).unwrap();
        assert_eq!(kl, 0.0, "{case}: no Bayesian layer, no KL");
        assert_gradients_match(&case, &got, &net.named_vars(), &grads);
        // The likelihood's own noise is differentiated by candle in both.
        for (name, var) in likelihood.named_vars() {
            let a = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = fused_grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_close(&case, &name, &b, &a);
        }
    }
}
