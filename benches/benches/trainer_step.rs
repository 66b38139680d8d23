//! One training step (forward, backward, Adam) on a minibatch of 128 MNIST-sized inputs with the scale-mixture
//! prior: a 784-400-400-10 Bayesian MLP by the fused CPU step (`Network::forward_fused` + `update_fused`) for
//! local reparameterization and weight sampling, and the composed candle ops it replaced (its test oracle); a
//! Bayesian LeNet-5 by the fused step (Flipout convolutions with local reparameterization in the dense layers, as
//! `models/mnist-bbb-lenet5.toml` trains, and weight sampling everywhere).

use bnn_trainer::likelihood::{BatchTargets, Likelihood};
use bnn_trainer::nn::{Network, Noise};
use bnn_trainer::optim::Adam;
use bnn_trainer::recipe::{Estimator, LikelihoodSpec, ModelSpec, PriorSpec};
use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};

// The allocator `bnn train` runs on (`trainer/src/main.rs`), so the step's large buffers are reused as they are
// there; run with `MIMALLOC_PURGE_DELAY=-1` for its setting that never returns memory to the OS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let dev = Device::Cpu;
    let spec = ModelSpec { hidden: vec![400, 400], ..Default::default() };
    let x = Tensor::from_vec(bnn_benches::input(128 * 784), (128, 784), &dev).unwrap();
    let y =
        BatchTargets::Classes(Tensor::from_vec((0..128u32).map(|i| i % 10).collect::<Vec<_>>(), 128, &dev).unwrap());
    let prior = PriorSpec::ScaleMixture { pi: 0.5, sigma1: 1.0, sigma2: 0.0025 };
    let lik = Likelihood::new(LikelihoodSpec::Categorical, &dev).unwrap();
    let mut group = c.benchmark_group("trainer_step_batch128");
    let lenet = ModelSpec {
        arch: Some("1x28x28-conv6k5p2-maxpool2-conv16k5-maxpool2-flatten-120-84".into()),
        ..Default::default()
    };
    for (net_name, spec) in [("", &spec), ("lenet5_", &lenet)] {
        for estimator in [Estimator::LocalReparam, Estimator::WeightSampling] {
            let net = Network::new(spec, 784, 10, 1, &dev).unwrap();
            let mut adam = Adam::new(net.named_vars()).unwrap();
            let mut step = 0;
            group.bench_function(format!("{net_name}fused_{estimator:?}"), |b| {
                b.iter(|| {
                    let mut noise = Noise::for_step(1, 0, step, &dev);
                    step += 1;
                    // On a rayon worker, as `bnn train` runs its epochs.
                    rayon::scope(|_| {
                        let (out, pass) = net.forward_fused(&x, estimator, &prior, &mut noise).unwrap();
                        let grads = lik.nll(&out, &y).unwrap().backward().unwrap();
                        net.update_fused(&grads, &pass, estimator, &prior, 1.0 / 60000.0, &mut adam, 1e-3).unwrap();
                    })
                })
            });
        }
    }
    let net = Network::new(&spec, 784, 10, 1, &dev).unwrap();
    let mut adam = Adam::new(net.named_vars()).unwrap();
    let mut step = 0;
    group.bench_function("composed_LocalReparam", |b| {
        b.iter(|| {
            let mut noise = Noise::for_step(1, 0, step, &dev);
            step += 1;
            let (out, kl) = net.forward_train(&x, Estimator::LocalReparam, &prior, &mut noise).unwrap();
            let loss = (lik.nll(&out, &y).unwrap() + (kl * (1.0 / 60000.0)).unwrap()).unwrap();
            adam.step(&loss.backward().unwrap(), 1e-3).unwrap();
        })
    });
    group.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(10); targets = bench }
criterion_main!(benches);
