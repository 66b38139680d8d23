//! The Java wrapper on the host JVM: compiles `android/java` with `javac`, and runs `io.bnnedge.HostTest` against
//! the freshly built `libbnn_android.so` with an expectations file of the Rust runtime's own predictions
//! (classification and regression, every sampler, fixed and adaptive counts, single and batch).

mod common;

use bnn_android::pack_prediction;
use bnn_runtime::{Model, PredictOptions, SampleCount, Sampler};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// `n` reproducible pseudo-random values in [0, 1).
pub fn inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn hex(values: &[f32]) -> String {
    values.iter().map(|v| format!("{:08x}", v.to_bits())).collect::<Vec<_>>().join(" ")
}

/// One expectations line: options, inputs, then the packed records the runtime gives for them.
fn case(path: &Path, model: &Model, options: &PredictOptions, count: usize, seed: u64) -> String {
    let inputs = inputs(count * model.input_dim(), seed);
    let mut expected = vec![];
    for prediction in model.predict_batch(&inputs, options).unwrap() {
        pack_prediction(&prediction, &mut expected);
    }
    let sampler = match options.sampler {
        Sampler::LocalReparam => 0,
        Sampler::WeightSampling => 1,
        Sampler::Mean => 2,
        Sampler::SharedWeights => 3,
    };
    let (samples, adaptive_max, tolerance) = match options.samples {
        SampleCount::Fixed(n) => (n, 0, 0.0f32),
        SampleCount::Adaptive { max, tolerance } => (32, max, tolerance),
    };
    let mut line = String::new();
    write!(
        line,
        "{} {sampler} {samples} {adaptive_max} {:08x} {} {:08x} {count} {} | {}",
        path.display(),
        tolerance.to_bits(),
        options.seed,
        options.interval_level.to_bits(),
        hex(&inputs),
        hex(&expected)
    )
    .unwrap();
    line
}

#[test]
fn java_wrapper_matches_the_runtime_and_raises_the_documented_exceptions() {
    let library = common::library_dir();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jvm_host");
    let classes = work.join("classes");
    std::fs::create_dir_all(&classes).unwrap();

    let mut lines = vec![];
    let models = [
        common::shipped_model("mnist-bbb-snr95-f16.safetensors"),
        common::shipped_model("curve-bbb.safetensors"),
        common::cnn_classifier(),
        common::shipped_model("mnist-bbb-lenet5-snr95-f16.safetensors"),
        common::shipped_model("mnist-bbb-lenet5-snr95-fast-f16.safetensors"),
    ];
    for path in models {
        let model = Model::load(&path).unwrap();
        let base = PredictOptions::default().seed(42);
        for options in [
            base.samples(16),
            base.samples(1),
            base.samples(8).sampler(Sampler::WeightSampling),
            base.sampler(Sampler::Mean),
            base.adaptive(200, 0.01).seed(7),
            base.samples(40).interval_level(0.8),
        ] {
            lines.push(case(&path, &model, &options, 1, options.seed));
        }
        lines.push(case(&path, &model, &base.samples(12), 5, 3));
        lines.push(case(&path, &model, &base.samples(12).sampler(Sampler::SharedWeights), 5, 3));
    }
    let expectations = work.join("expectations.txt");
    std::fs::write(&expectations, lines.join("\n")).unwrap();

    // A calibrated classifier's decision at level 0.9 on one input (16 samples, seed 42), as the runtime's
    // calibration makes it: `inputs | abstain confidence setSize set.. calibrated..` (the JNI packing).
    let calibrated = common::calibrated_classifier();
    let model = Model::load(&calibrated).unwrap();
    let input = inputs(model.input_dim(), 5);
    let p = model.predict(&input, &PredictOptions::default().samples(16).seed(42)).unwrap();
    let probabilities = &p.as_classification().unwrap().probabilities;
    let c = model.calibration().unwrap();
    let (set, scaled) = (c.prediction_set(probabilities, 0.9).unwrap(), c.calibrated(probabilities));
    let mut packed = vec![c.abstains(probabilities) as u8 as f32, bnn_runtime::confidence(&scaled), set.len() as f32];
    packed.extend(set.iter().map(|k| *k as f32));
    packed.extend_from_slice(&scaled);
    // And a calibrated regression model's conformal interval at level 0.9 around its prediction of x = 0.3
    // (64 samples, seed 9): `x | lower upper`.
    let calibrated_regression = common::calibrated_regression();
    let model = Model::load(&calibrated_regression).unwrap();
    let p = model.predict(&[0.3], &PredictOptions::default().samples(64).seed(9)).unwrap();
    let r = p.as_regression().unwrap();
    let (lower, upper) = model.calibration().unwrap().interval(&r.mean, &r.total_variance, 0.9).unwrap();
    let decision = work.join("decision.txt");
    let lines =
        [format!("{} | {}", hex(&input), hex(&packed)), format!("{} | {}", hex(&[0.3]), hex(&[lower, upper].concat()))];
    std::fs::write(&decision, lines.join("\n")).unwrap();

    let java_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/src");
    let sources: Vec<_> = ["main/java/io/bnnedge", "test/java/io/bnnedge"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(java_root.join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "java"))
        .collect();
    common::run(Command::new("javac").arg("-Xlint:all").arg("-Werror").arg("-d").arg(&classes).args(&sources));
    let stdout = common::run(
        Command::new("java")
            .arg(format!("-Djava.library.path={}", library.display()))
            .arg("-cp")
            .arg(&classes)
            .arg("io.bnnedge.HostTest")
            .arg(&expectations)
            .arg(&calibrated)
            .arg(&decision)
            .arg(common::shipped_model("mnist-bbb.safetensors"))
            .arg(&calibrated_regression),
    );
    println!("{stdout}");
    assert!(stdout.contains("checks passed"), "{stdout}");
}
