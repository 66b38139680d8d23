package io.bnnedge;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.LongFunction;

/**
 * A Bayesian neural network loaded from a bnn-edge {@code .safetensors} file, predicting with Monte-Carlo
 * uncertainty on device.
 *
 * <pre>{@code
 * try (BayesianModel model = BayesianModel.fromStream(context.getAssets().open("mnist.safetensors"))) {
 *     ClassificationResult r = model.classify(pixels, PredictOptions.builder().samples(32).seed(1).build());
 *     if (r.getMutualInformation() > 0.2f) { ... the model does not know this kind of input ... }
 * }
 * }</pre>
 *
 * <p>Thread-safe: any number of threads may predict at once through one instance. {@link #close()} waits for
 * running predictions, frees the native model, and makes later calls throw {@link IllegalStateException}.
 *
 * <p>Errors: a bad model file gives {@link IOException}; a bad input or option (wrong length, NaN, zero samples)
 * gives {@link IllegalArgumentException}; a closed model gives {@link IllegalStateException}.
 */
public final class BayesianModel implements AutoCloseable {
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private long handle;
    private final int inputDim;
    private final Task task;
    private final int outputDim;
    private final int recordLength;
    private final boolean calibrated;
    private final int[] inputShape;

    private BayesianModel(long handle) {
        this.handle = handle;
        int[] d = NativeBridge.describe(handle);
        this.inputDim = d[0];
        this.task = Task.values()[d[1]];
        this.outputDim = d[2];
        this.recordLength = d[3];
        this.calibrated = d[4] == 1;
        this.inputShape = new int[] {d[5], d[6], d[7]};
    }

    /** Loads a model from the bytes of a model file (copied; the array may be reused afterwards). */
    public static BayesianModel fromBytes(byte[] bytes) throws IOException {
        if (bytes == null) {
            throw new IllegalArgumentException("model bytes are null");
        }
        return new BayesianModel(NativeBridge.loadBytes(bytes));
    }

    /** Loads a model from a file. */
    public static BayesianModel fromFile(File file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("model file is null");
        }
        return new BayesianModel(NativeBridge.loadPath(file.getPath()));
    }

    /** Loads a model from a stream, e.g. an Android asset; reads it to the end but does not close it. */
    public static BayesianModel fromStream(InputStream in) throws IOException {
        if (in == null) {
            throw new IllegalArgumentException("model stream is null");
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[1 << 16];
        for (int n; (n = in.read(buffer)) != -1; ) {
            out.write(buffer, 0, n);
        }
        return fromBytes(out.toByteArray());
    }

    /** Number of features one input must have. */
    public int getInputDim() { return inputDim; }

    /**
     * The input's shape {@code {channels, height, width}}: an image model (a CNN) takes its image flat, in NCHW
     * order (channel, then row, then column), {@link #getInputDim()} values; a flat input reads
     * {@code {inputDim, 1, 1}}.
     */
    public int[] getInputShape() { return inputShape.clone(); }

    public Task getTask() { return task; }

    /** Number of classes, or of regression outputs. */
    public int getOutputDim() { return outputDim; }

    /** Predicts one input with {@link PredictOptions#DEFAULT}. */
    public Prediction predict(float[] input) {
        return predict(input, PredictOptions.DEFAULT);
    }

    /** Predicts one input. */
    public Prediction predict(float[] input, PredictOptions options) {
        if (input == null) {
            throw new IllegalArgumentException("input is null");
        }
        return decode(run(input, options), 1).get(0);
    }

    /**
     * Predicts several inputs in one native call; input {@code i} uses seed {@code options.getSeed() + i}, so
     * result {@code i} equals {@code predict(inputs[i], options with that seed)}.
     */
    public List<Prediction> predictBatch(float[][] inputs, PredictOptions options) {
        if (inputs == null) {
            throw new IllegalArgumentException("inputs are null");
        }
        float[] flat = new float[Math.multiplyExact(inputs.length, inputDim)];
        for (int i = 0; i < inputs.length; i++) {
            if (inputs[i] == null || inputs[i].length != inputDim) {
                throw new IllegalArgumentException("input " + i + " must have " + inputDim + " features, has "
                        + (inputs[i] == null ? "null" : String.valueOf(inputs[i].length)));
            }
            System.arraycopy(inputs[i], 0, flat, i * inputDim, inputDim);
        }
        return decode(run(flat, options), inputs.length);
    }

    /** Classifies one input; {@link IllegalStateException} if this is a regression model. */
    public ClassificationResult classify(float[] input, PredictOptions options) {
        requireTask(Task.CLASSIFICATION);
        return predict(input, options).asClassification();
    }

    /** Predicts one input of a regression model; {@link IllegalStateException} if this is a classifier. */
    public RegressionResult regress(float[] input, PredictOptions options) {
        requireTask(Task.REGRESSION);
        return predict(input, options).asRegression();
    }

    /** Whether the model carries a calibration ({@code bnn calibrate}): temperature, conformal levels, abstention. */
    public boolean isCalibrated() { return calibrated; }

    /**
     * What a calibrated classifier's result means for the app: the conformal prediction set at {@code level} (one
     * of the levels the model stores, e.g. 0.95f), the calibrated probabilities, and whether to abstain.
     * {@link IllegalArgumentException} if the model is not calibrated or does not store the level.
     */
    public Decision decide(ClassificationResult result, float level) {
        if (result == null) {
            throw new IllegalArgumentException("result is null");
        }
        float[] packed = withHandle(h -> NativeBridge.decide(h, result.getProbabilities(), level));
        int setSize = (int) packed[2];
        int[] set = new int[setSize];
        for (int i = 0; i < setSize; i++) {
            set[i] = (int) packed[3 + i];
        }
        float[] probabilities = Arrays.copyOfRange(packed, 3 + setSize, packed.length);
        return new Decision(packed[0] == 1f, packed[1], set, probabilities);
    }

    /**
     * A calibrated regression model's conformal interval at {@code level} (one it stores): {lower, upper}, each
     * one value per output, holding the true values with that probability for inputs like its calibration data.
     * {@link IllegalArgumentException} if the model is not calibrated or does not store the level.
     */
    public float[][] conformalInterval(RegressionResult result, float level) {
        if (result == null) {
            throw new IllegalArgumentException("result is null");
        }
        float[] packed = withHandle(
                h -> NativeBridge.conformalInterval(h, result.getMean(), result.getTotalVariance(), level));
        int k = packed.length / 2;
        return new float[][] {Arrays.copyOfRange(packed, 0, k), Arrays.copyOfRange(packed, k, 2 * k)};
    }

    public boolean isClosed() {
        lock.readLock().lock();
        try {
            return handle == 0;
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Frees the native model after running predictions finish. Idempotent. */
    @Override
    public void close() {
        lock.writeLock().lock();
        try {
            if (handle != 0) {
                NativeBridge.free(handle);
                handle = 0;
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    private void requireTask(Task expected) {
        if (task != expected) {
            throw new IllegalStateException("this is a " + task + " model, not " + expected);
        }
    }

    private float[] run(float[] inputs, PredictOptions options) {
        if (options == null) {
            throw new IllegalArgumentException("options are null");
        }
        return withHandle(h -> NativeBridge.predict(h, inputs, options.getSeed(), options.getSamples(),
                options.getAdaptiveMax(), options.getTolerance(), options.getSampler().ordinal(),
                options.getIntervalLevel()));
    }

    /** Runs a native call on the open handle under the read lock, so that {@link #close()} waits for it. */
    private <T> T withHandle(LongFunction<T> call) {
        lock.readLock().lock();
        try {
            if (handle == 0) {
                throw new IllegalStateException("the model is closed");
            }
            return call.apply(handle);
        } finally {
            lock.readLock().unlock();
        }
    }

    private List<Prediction> decode(float[] packed, int count) {
        if (packed.length != count * recordLength) {
            throw new IllegalStateException("native result has " + packed.length + " values, expected "
                    + count * recordLength);
        }
        List<Prediction> results = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            int at = i * recordLength;
            int samplesUsed = (int) packed[at];
            if (task == Task.CLASSIFICATION) {
                float[] probabilities = Arrays.copyOfRange(packed, at + 5, at + 5 + outputDim);
                results.add(new ClassificationResult(samplesUsed, probabilities, (int) packed[at + 1],
                        packed[at + 2], packed[at + 3], packed[at + 4]));
            } else {
                int k = outputDim;
                int base = at + 2;
                results.add(new RegressionResult(samplesUsed, packed[at + 1],
                        Arrays.copyOfRange(packed, base, base + k),
                        Arrays.copyOfRange(packed, base + k, base + 2 * k),
                        Arrays.copyOfRange(packed, base + 2 * k, base + 3 * k),
                        Arrays.copyOfRange(packed, base + 3 * k, base + 4 * k),
                        Arrays.copyOfRange(packed, base + 4 * k, base + 5 * k),
                        Arrays.copyOfRange(packed, base + 5 * k, base + 6 * k)));
            }
        }
        return results;
    }
}
