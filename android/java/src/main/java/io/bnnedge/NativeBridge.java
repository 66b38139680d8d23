package io.bnnedge;

import java.io.IOException;

/**
 * The native methods of {@code libbnn_android} ({@code android/src/jni_api.rs}). Package-private: apps use
 * {@link BayesianModel}. A handle is a pointer to a native model; 0 means closed.
 */
final class NativeBridge {
    static {
        System.loadLibrary("bnn_android");
    }

    private NativeBridge() {}

    static native long loadBytes(byte[] bytes) throws IOException;

    static native long loadPath(String path) throws IOException;

    static native void free(long handle);

    /** {inputDim, task (0 classification, 1 regression), outputDim, recordLength, calibrated (0 or 1)}. */
    static native int[] describe(long handle);

    /**
     * Predicts one or more inputs stored back to back (item i uses seed + i) and returns their packed records
     * back to back: classification {samplesUsed, class, predictiveEntropy, expectedEntropy, mutualInformation,
     * p_0..p_k-1}; regression {samplesUsed, intervalLevel, mean, aleatoric, epistemic, total, lower, upper}
     * (each of the last six {@code outputDim} long).
     */
    static native float[] predict(long handle, float[] inputs, long seed, int samples, int adaptiveMax,
                                  float tolerance, int sampler, float intervalLevel);

    /**
     * A calibrated classifier's decision on a classification's probabilities at a stored conformal level, packed
     * {abstain (0 or 1), confidence, setSize, set_0..set_{setSize-1}, calibrated_0..calibrated_{k-1}}.
     */
    static native float[] decide(long handle, float[] probabilities, float level);

    /** A calibrated regression model's conformal interval at a stored level, packed {lower.., upper..}. */
    static native float[] conformalInterval(long handle, float[] mean, float[] totalVariance, float level);
}
