package io.bnnedge;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Host-JVM test of the Java wrapper against the native library, driven by {@code android/tests/jvm_host.rs}:
 * that test writes the Rust runtime's own predictions to an expectations file; this program must reproduce them
 * bit for bit through JNI, raise the documented exception for every error, and stay correct under concurrency.
 * Exits 1 on the first failure. Usage: {@code java -Djava.library.path=DIR io.bnnedge.HostTest EXPECTATIONS}.
 */
public final class HostTest {
    private static int checks = 0;

    public static void main(String[] args) throws Exception {
        List<Case> cases = readCases(Paths.get(args[0]));
        Map<String, BayesianModel> models = new HashMap<>();
        for (Case c : cases) {
            BayesianModel model = models.computeIfAbsent(c.modelPath, HostTest::open);
            check(Arrays2.equalBits(pack(model, c), c.expected), "prediction equals the Rust runtime's: " + c);
        }
        for (Map.Entry<String, BayesianModel> e : models.entrySet()) {
            int[] shape = e.getValue().getInputShape();
            check(shape[0] * shape[1] * shape[2] == e.getValue().getInputDim(), "the input shape holds inputDim values");
            if (e.getKey().contains("cnn")) {
                check(java.util.Arrays.equals(shape, new int[] {1, 8, 8}), "a CNN's input shape: " + e.getKey());
            } else if (e.getKey().contains("lenet5")) {
                check(java.util.Arrays.equals(shape, new int[] {1, 28, 28}), "LeNet-5's input shape: " + e.getKey());
            } else {
                check(shape[1] == 1 && shape[2] == 1, "a flat input's shape: " + e.getKey());
            }
            e.getValue().close();
        }
        Case classification = cases.stream().filter(c -> c.modelPath.contains("mnist")).findFirst().get();
        Case regression = cases.stream().filter(c -> c.modelPath.contains("curve")).findFirst().get();
        errorsArriveAsTheDocumentedExceptions(classification.modelPath, regression.modelPath);
        concurrentPredictionsEqualSerialOnes(classification);
        closingWhilePredictingIsSafe(classification);
        calibratedDecisionsEqualTheRuntimes(args[3], args[1], Paths.get(args[2]));
        conformalIntervalsEqualTheRuntimes(args[4], regression.modelPath, Paths.get(args[2]));
        System.out.println("HostTest: " + checks + " checks passed");
    }

    private static BayesianModel open(String path) {
        try {
            return BayesianModel.fromFile(new java.io.File(path));
        } catch (IOException e) {
            throw new AssertionError("cannot load " + path, e);
        }
    }

    /** Runs a case through the wrapper and packs the results in the native record layout. */
    private static float[] pack(BayesianModel model, Case c) {
        List<Prediction> results;
        if (c.count == 1) {
            results = List.of(model.predict(c.inputs, c.options));
        } else {
            float[][] rows = new float[c.count][];
            for (int i = 0; i < c.count; i++) {
                rows[i] = java.util.Arrays.copyOfRange(c.inputs, i * model.getInputDim(), (i + 1) * model.getInputDim());
            }
            results = model.predictBatch(rows, c.options);
        }
        List<Float> out = new ArrayList<>();
        for (Prediction p : results) {
            out.add((float) p.getSamplesUsed());
            if (p instanceof ClassificationResult) {
                ClassificationResult r = (ClassificationResult) p;
                out.add((float) r.getPredictedClass());
                out.add(r.getPredictiveEntropy());
                out.add(r.getExpectedEntropy());
                out.add(r.getMutualInformation());
                Arrays2.addAll(out, r.getProbabilities());
            } else {
                RegressionResult r = p.asRegression();
                out.add(r.getIntervalLevel());
                for (float[] part : new float[][] {r.getMean(), r.getAleatoricVariance(), r.getEpistemicVariance(),
                        r.getTotalVariance(), r.getLower(), r.getUpper()}) {
                    Arrays2.addAll(out, part);
                }
            }
        }
        float[] packed = new float[out.size()];
        for (int i = 0; i < packed.length; i++) {
            packed[i] = out.get(i);
        }
        return packed;
    }

    private static void errorsArriveAsTheDocumentedExceptions(String classifierPath, String regressionPath)
            throws Exception {
        expect(IOException.class, "garbage bytes", () -> BayesianModel.fromBytes(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9}));
        expect(IOException.class, "missing file", () -> BayesianModel.fromFile(new java.io.File("/nonexistent/m.safetensors")));
        byte[] valid = Files.readAllBytes(Paths.get(classifierPath));
        expect(IOException.class, "truncated file", () -> BayesianModel.fromBytes(java.util.Arrays.copyOf(valid, valid.length / 2)));
        expect(IllegalArgumentException.class, "null bytes", () -> BayesianModel.fromBytes(null));

        BayesianModel model = BayesianModel.fromBytes(valid);
        float[] ok = new float[model.getInputDim()];
        expect(IllegalArgumentException.class, "wrong input length", () -> model.predict(new float[3]));
        float[] nan = ok.clone();
        nan[5] = Float.NaN;
        expect(IllegalArgumentException.class, "NaN input", () -> model.predict(nan));
        float[] huge = new float[model.getInputDim()];
        java.util.Arrays.fill(huge, 1e30f);
        expect(IllegalArgumentException.class, "an input that overflows the network", () -> model.predict(huge));
        expect(IllegalArgumentException.class, "zero samples", () -> model.predict(ok, PredictOptions.builder().samples(0).build()));
        expect(IllegalArgumentException.class, "negative adaptive max", () -> model.predict(ok, PredictOptions.builder().adaptive(-1, 0.1f).build()));
        expect(IllegalArgumentException.class, "interval level 1.5", () -> model.predict(ok, PredictOptions.builder().intervalLevel(1.5f).build()));
        expect(IllegalArgumentException.class, "ragged batch", () -> model.predictBatch(new float[][] {ok, new float[2]}, PredictOptions.DEFAULT));
        expect(IllegalStateException.class, "regress on a classifier", () -> model.regress(ok, PredictOptions.DEFAULT));
        check(model.predict(ok).getSamplesUsed() == 32, "default options draw 32 samples");
        model.close();
        model.close();
        check(model.isClosed(), "closed after close()");
        expect(IllegalStateException.class, "predict after close", () -> model.predict(ok));

        try (BayesianModel regression = BayesianModel.fromStream(Files.newInputStream(Paths.get(regressionPath)))) {
            expect(IllegalStateException.class, "classify on a regression model", () -> regression.classify(new float[1], PredictOptions.DEFAULT));
            RegressionResult r = regression.regress(new float[] {0.5f}, PredictOptions.builder().samples(64).build());
            check(r.getTotalVariance()[0] == r.getAleatoricVariance()[0] + r.getEpistemicVariance()[0],
                    "total = aleatoric + epistemic through JNI");
            expect(IllegalArgumentException.class, "a regression input that overflows the network",
                    () -> regression.regress(new float[] {1e30f}, PredictOptions.DEFAULT));
        }
    }

    private static void concurrentPredictionsEqualSerialOnes(Case c) throws Exception {
        int threads = 8;
        int perThread = 200;
        try (BayesianModel model = BayesianModel.fromFile(new java.io.File(c.modelPath))) {
            float[] input = java.util.Arrays.copyOf(c.inputs, model.getInputDim());
            ClassificationResult[] serial = new ClassificationResult[perThread];
            for (int i = 0; i < perThread; i++) {
                serial[i] = model.classify(input, c.options.toBuilder().seed(i).build());
            }
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            List<Future<Integer>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                futures.add(pool.submit(() -> {
                    int mismatches = 0;
                    for (int i = 0; i < perThread; i++) {
                        ClassificationResult r = model.classify(input, c.options.toBuilder().seed(i).build());
                        if (!Arrays2.equalBits(r.getProbabilities(), serial[i].getProbabilities())
                                || Float.floatToIntBits(r.getMutualInformation()) != Float.floatToIntBits(serial[i].getMutualInformation())) {
                            mismatches++;
                        }
                    }
                    return mismatches;
                }));
            }
            int mismatches = 0;
            for (Future<Integer> f : futures) {
                mismatches += f.get();
            }
            pool.shutdown();
            check(mismatches == 0, threads + " threads x " + perThread + " predictions equal the serial ones (" + mismatches + " differ)");
        }
    }

    private static void closingWhilePredictingIsSafe(Case c) throws Exception {
        BayesianModel model = BayesianModel.fromFile(new java.io.File(c.modelPath));
        float[] input = java.util.Arrays.copyOf(c.inputs, model.getInputDim());
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<String>> futures = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            futures.add(pool.submit(() -> {
                for (int i = 0; ; i++) {
                    try {
                        model.predict(input, c.options);
                    } catch (IllegalStateException closed) {
                        return "closed after " + i;
                    }
                }
            }));
        }
        Thread.sleep(50);
        model.close();
        for (Future<String> f : futures) {
            check(f.get(10, TimeUnit.SECONDS).startsWith("closed"), "a predicting thread sees IllegalStateException after close");
        }
        pool.shutdown();
    }

    private interface Call {
        Object run() throws Exception;
    }

    private static void expect(Class<? extends Throwable> type, String what, Call call) {
        try {
            call.run();
        } catch (Throwable t) {
            check(t.getClass() == type, what + ": expected " + type.getSimpleName() + ", got " + t);
            return;
        }
        check(false, what + ": expected " + type.getSimpleName() + ", nothing was thrown");
    }

    private static void check(boolean ok, String what) {
        checks++;
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    /**
     * One line of the expectations file: {@code modelPath sampler samples adaptiveMax toleranceBits seed
     * levelBits count inputs... | expected...}, floats as hexadecimal IEEE-754 bits.
     */
    private static final class Case {
        String modelPath;
        PredictOptions options;
        int count;
        float[] inputs;
        float[] expected;

        @Override
        public String toString() {
            return modelPath + " sampler=" + options.getSampler() + " samples=" + options.getSamples() + " adaptive="
                    + options.getAdaptiveMax() + " seed=" + options.getSeed() + " count=" + count;
        }
    }

    private static List<Case> readCases(Path path) throws IOException {
        List<Case> cases = new ArrayList<>();
        for (String line : Files.readAllLines(path, StandardCharsets.UTF_8)) {
            String[] halves = line.split(" \\| ");
            String[] t = halves[0].split(" ");
            Case c = new Case();
            c.modelPath = t[0];
            c.options = PredictOptions.builder()
                    .sampler(Sampler.values()[Integer.parseInt(t[1])])
                    .samples(Integer.parseInt(t[2]))
                    .adaptive(Integer.parseInt(t[3]), bits(t[4]))
                    .seed(Long.parseLong(t[5]))
                    .intervalLevel(bits(t[6]))
                    .build();
            c.count = Integer.parseInt(t[7]);
            c.inputs = floats(t, 8);
            c.expected = floats(halves[1].split(" "), 0);
            cases.add(c);
        }
        return cases;
    }

    /** A calibrated classifier's decision through JNI equals the Rust runtime's, bit for bit; misuse throws. */
    private static void calibratedDecisionsEqualTheRuntimes(String uncalibratedPath, String calibratedPath,
                                                           Path expectation) throws Exception {
        float[][] line = expectationLine(expectation, 0);
        float[] input = line[0];
        float[] expected = line[1];
        try (BayesianModel model = BayesianModel.fromFile(new java.io.File(calibratedPath));
             BayesianModel plain = BayesianModel.fromFile(new java.io.File(uncalibratedPath))) {
            check(model.isCalibrated() && !plain.isCalibrated(), "isCalibrated");
            ClassificationResult r = model.classify(input, PredictOptions.builder().samples(16).seed(42).build());
            Decision d = model.decide(r, 0.9f);
            int[] set = d.getPredictionSet();
            float[] calibrated = d.getCalibratedProbabilities();
            float[] packed = new float[3 + set.length + calibrated.length];
            packed[0] = d.shouldAbstain() ? 1f : 0f;
            packed[1] = d.getConfidence();
            packed[2] = set.length;
            for (int i = 0; i < set.length; i++) {
                packed[3 + i] = set[i];
            }
            System.arraycopy(calibrated, 0, packed, 3 + set.length, calibrated.length);
            check(Arrays2.equalBits(packed, expected), "decision equals the Rust runtime's: " + d);
            expect(IllegalArgumentException.class, "a level the model does not store", () -> model.decide(r, 0.5f));
            ClassificationResult q = plain.classify(input, PredictOptions.DEFAULT);
            expect(IllegalArgumentException.class, "an uncalibrated model", () -> plain.decide(q, 0.9f));
            expect(IllegalArgumentException.class, "a null result", () -> model.decide(null, 0.9f));
        }
    }

    /** A calibrated regression model's conformal interval through JNI equals the Rust runtime's, bit for bit. */
    private static void conformalIntervalsEqualTheRuntimes(String calibratedPath, String uncalibratedPath,
                                                          Path expectation) throws Exception {
        float[][] line = expectationLine(expectation, 1);
        float[] input = line[0];
        float[] expected = line[1];
        try (BayesianModel model = BayesianModel.fromFile(new java.io.File(calibratedPath));
             BayesianModel plain = BayesianModel.fromFile(new java.io.File(uncalibratedPath))) {
            RegressionResult r = model.regress(input, PredictOptions.builder().samples(64).seed(9).build());
            float[][] interval = model.conformalInterval(r, 0.9f);
            check(Arrays2.equalBits(new float[] {interval[0][0], interval[1][0]}, expected),
                    "conformal interval equals the Rust runtime's");
            expect(IllegalArgumentException.class, "a level the model does not store",
                    () -> model.conformalInterval(r, 0.5f));
            RegressionResult q = plain.regress(input, PredictOptions.DEFAULT);
            expect(IllegalArgumentException.class, "an uncalibrated regression model", () -> plain.conformalInterval(q, 0.9f));
        }
    }

    /** Line {@code index} of an expectations file, {@code inputs | expected}, as two float arrays. */
    private static float[][] expectationLine(Path path, int index) throws IOException {
        String[] halves = Files.readAllLines(path, StandardCharsets.UTF_8).get(index).split(" \\| ");
        return new float[][] {floats(halves[0].split(" "), 0), floats(halves[1].split(" "), 0)};
    }

    private static float bits(String hex) {
        return Float.intBitsToFloat(Integer.parseUnsignedInt(hex, 16));
    }

    private static float[] floats(String[] tokens, int from) {
        float[] out = new float[tokens.length - from];
        for (int i = from; i < tokens.length; i++) {
            out[i - from] = bits(tokens[i]);
        }
        return out;
    }

    /** Small array helpers. */
    private static final class Arrays2 {
        static boolean equalBits(float[] a, float[] b) {
            if (a.length != b.length) {
                return false;
            }
            for (int i = 0; i < a.length; i++) {
                if (Float.floatToIntBits(a[i]) != Float.floatToIntBits(b[i])) {
                    return false;
                }
            }
            return true;
        }

        static void addAll(List<Float> out, float[] values) {
            for (float v : values) {
                out.add(v);
            }
        }
    }
}
