//! The fused passes over one Bayesian parameter tensor of MNIST's first layer (400 x 784 weights): the forward
//! values (variances, or a weight sample) and the backward-and-Adam step, for each prior and estimator.

use bnn_trainer::kernels::posterior::{
    forward_values, step, ForwardUse, GradientSink, Posterior, PriorTerms, StepInputs,
};
use bnn_trainer::optim::Adam;
use bnn_trainer::recipe::PriorSpec;
use candle_core::{Device, Var};
use criterion::{criterion_group, criterion_main, Criterion};

const N: usize = 400 * 784;

fn bench(c: &mut Criterion) {
    let mut mu = bnn_benches::input(N);
    let mut rho: Vec<f32> = bnn_benches::input(N).iter().map(|v| v - 5.0).collect();
    let grad: Vec<f32> = bnn_benches::input(N).iter().map(|v| v * 1e-3).collect();
    let mut out = vec![0.0f32; N];
    let var = Var::zeros(N, candle_core::DType::F32, &Device::Cpu).unwrap();
    let mut adam = Adam::new(vec![("mu".into(), var.clone()), ("rho".into(), var)]).unwrap();
    let adam_step = adam.begin_step(1e-3);
    let mut group = c.benchmark_group("posterior_passes_400x784");
    group.bench_function("forward_values_variances", |b| {
        b.iter(|| forward_values(&mu, &rho, None, ForwardUse::Moments, &mut out))
    });
    group.bench_function("forward_values_weight_sample", |b| {
        b.iter(|| forward_values(&mu, &rho, None, ForwardUse::Sample { key: 7 }, &mut out))
    });
    let priors = [
        ("gaussian", PriorSpec::Gaussian { sigma: 1.0 }),
        ("scale_mixture", PriorSpec::ScaleMixture { pi: 0.5, sigma1: 1.0, sigma2: 0.0025 }),
    ];
    for (name, prior) in priors {
        let inputs = StepInputs {
            grad_mean: &grad,
            grad_var: Some(&grad),
            usage: ForwardUse::Moments,
            prior: PriorTerms::new(&prior),
            kl_key: Some(9),
            kl_weight: 1.0 / 60000.0,
        };
        group.bench_function(format!("step_local_reparam_{name}"), |b| {
            b.iter(|| {
                let [(mm, mv), (rm, rv)] = adam.host_moments_pair("mu", "rho").unwrap();
                let sink = GradientSink::Adam { step: adam_step, mu_moments: [mm, mv], rho_moments: [rm, rv] };
                step(Posterior { mu: &mut mu, rho: &mut rho, mask: None }, &inputs, sink)
            })
        });
    }
    group.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(20); targets = bench }
criterion_main!(benches);
