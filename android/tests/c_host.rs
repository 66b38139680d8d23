//! The C ABI from C: builds `tests/c/bnn_test.c` with gcc against `include/bnn.h` and the freshly built
//! `libbnn_android.so`, runs it on two shipped models and a calibrated copy of the classifier, and checks that its
//! predictions and decisions are the runtime's own, bit for bit (the C program checks the error paths itself).

mod common;

use bnn_runtime::{Model, PredictOptions};
use std::path::Path;
use std::process::Command;

fn bits(token: &str) -> f32 {
    f32::from_bits(u32::from_str_radix(token, 16).unwrap())
}

#[test]
fn c_program_gets_the_runtimes_predictions_and_clear_errors() {
    let library = common::library_dir();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bnn_c_test");
    common::run(
        Command::new("gcc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .arg("-I")
            .arg(crate_dir.join("include"))
            .arg(crate_dir.join("tests/c/bnn_test.c"))
            .arg("-L")
            .arg(&library)
            .arg(format!("-Wl,-rpath,{}", library.display()))
            .args(["-lbnn_android", "-lm", "-o"])
            .arg(&exe),
    );
    // The dense shipped classifier is not calibrated (the pruned one is): the C program checks both kinds.
    let classifier = common::shipped_model("mnist-bbb.safetensors");
    let regression = common::shipped_model("curve-bbb.safetensors");
    // Cargo's LD_LIBRARY_PATH for tests also names `target/<profile>/`, where an earlier `cargo build` may
    // have left an older copy of the library that would win over the rpath: name only the fresh one.
    let (calibrated, calibrated_regression) = (common::calibrated_classifier(), common::calibrated_regression());
    let cnns = [
        common::cnn_classifier(),
        common::shipped_model("mnist-bbb-lenet5-snr95-f16.safetensors"),
        common::shipped_model("mnist-bbb-lenet5-snr95-fast-f16.safetensors"),
    ];
    let stdout = common::run(
        Command::new(&exe)
            .env("LD_LIBRARY_PATH", &library)
            .args([&classifier, &regression, &calibrated, &calibrated_regression])
            .args(&cnns),
    );
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(' ').collect()).collect();

    let model = Model::load(&classifier).unwrap();
    let input: Vec<f32> = (0..model.input_dim()).map(|i| (i % 17) as f32 / 17.0).collect();
    let p = model.predict(&input, &PredictOptions::default().samples(24).seed(11)).unwrap();
    let c = p.as_classification().unwrap();
    let line = &lines[0];
    assert_eq!(line[0], "classify");
    assert_eq!((line[1].parse::<usize>().unwrap(), line[2].parse::<usize>().unwrap()), (c.class, 24));
    assert_eq!((bits(line[3]), bits(line[4])), (c.mutual_information, c.expected_entropy));
    let probabilities: Vec<f32> = line[5..].iter().map(|t| bits(t)).collect();
    assert_eq!(probabilities, c.probabilities);

    let model = Model::load(&regression).unwrap();
    let p = model.predict(&[0.25], &PredictOptions::default().samples(64).seed(5).interval_level(0.9)).unwrap();
    let r = p.as_regression().unwrap();
    let line = &lines[1];
    assert_eq!((line[0], line[1]), ("regress", "64"));
    let values: Vec<f32> = line[2..].iter().map(|t| bits(t)).collect();
    let expected = [
        r.interval_level,
        r.mean[0],
        r.aleatoric_variance[0],
        r.epistemic_variance[0],
        r.total_variance[0],
        r.lower[0],
        r.upper[0],
    ];
    assert_eq!(values, expected);

    // The decision of the calibrated model is the runtime's calibration applied to its probabilities.
    let model = Model::load(&calibrated).unwrap();
    let p = model.predict(&input, &PredictOptions::default().samples(24).seed(11)).unwrap();
    let probabilities = &p.as_classification().unwrap().probabilities;
    let c = model.calibration().unwrap();
    let set = c.prediction_set(probabilities, 0.9).unwrap();
    let line = &lines[2];
    assert_eq!(line[0], "decide");
    assert_eq!(line[1], if c.abstains(probabilities) { "1" } else { "0" });
    assert_eq!(line[2].parse::<usize>().unwrap(), set.len());
    let printed: Vec<usize> = line[3..3 + set.len()].iter().map(|t| t.parse().unwrap()).collect();
    assert_eq!(printed, set);
    let scaled = c.calibrated(probabilities);
    assert_eq!(bits(line[3 + set.len()]), bnn_runtime::confidence(&scaled));
    let printed: Vec<f32> = line[4 + set.len()..].iter().map(|t| bits(t)).collect();
    assert_eq!(printed, scaled);

    // The conformal interval of the calibrated regression model is the runtime's.
    let model = Model::load(&calibrated_regression).unwrap();
    let p = model.predict(&[0.25], &PredictOptions::default().samples(64).seed(5).interval_level(0.9)).unwrap();
    let r = p.as_regression().unwrap();
    let (lower, upper) = model.calibration().unwrap().interval(&r.mean, &r.total_variance, 0.9).unwrap();
    let line = &lines[3];
    assert_eq!(line[0], "interval");
    assert_eq!((bits(line[1]), bits(line[2])), (lower[0], upper[0]));

    // Each CNN's prediction of its image, passed flat, is the runtime's, bit for bit: the small test CNN (1x8x8)
    // and the two shipped pruned f16 LeNet-5s (1x28x28).
    assert_eq!(lines.len(), 4 + cnns.len(), "{stdout}");
    for (path, line) in cnns.iter().zip(&lines[4..]) {
        let model = Model::load(path).unwrap();
        let image: Vec<f32> = (0..model.input_dim()).map(|i| (i % 17) as f32 / 17.0).collect();
        let p = model.predict(&image, &PredictOptions::default().samples(24).seed(11)).unwrap();
        let c = p.as_classification().unwrap();
        assert_eq!(line[0], "cnn");
        let shape: Vec<usize> = line[1..4].iter().map(|t| t.parse().unwrap()).collect();
        assert_eq!(
            bnn_runtime::Shape::Image([shape[0], shape[1], shape[2]]),
            model.input_shape(),
            "{}",
            path.display()
        );
        assert_eq!((line[4].parse::<usize>().unwrap(), line[5].parse::<usize>().unwrap()), (c.class, 24));
        assert_eq!((bits(line[6]), bits(line[7])), (c.mutual_information, c.expected_entropy));
        let probabilities: Vec<f32> = line[8..].iter().map(|t| bits(t)).collect();
        assert_eq!(probabilities, c.probabilities, "{}", path.display());
    }
}
