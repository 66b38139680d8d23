package io.bnnedge;

import java.util.Arrays;

/**
 * A calibrated classifier's decision on one input ({@link BayesianModel#decide}): the conformal prediction set,
 * which holds the true class with the model's stated probability (e.g. 95%) when inputs are like its
 * calibration data; the calibrated probabilities; and whether to abstain. An empty set means no class is
 * plausible at that level.
 */
public final class Decision {
    private final boolean abstain;
    private final float confidence;
    private final int[] predictionSet;
    private final float[] calibratedProbabilities;

    Decision(boolean abstain, float confidence, int[] predictionSet, float[] calibratedProbabilities) {
        this.abstain = abstain;
        this.confidence = confidence;
        this.predictionSet = predictionSet;
        this.calibratedProbabilities = calibratedProbabilities;
    }

    /** True when the largest calibrated probability is below the model's abstention threshold. */
    public boolean shouldAbstain() { return abstain; }

    /** The largest calibrated probability. */
    public float getConfidence() { return confidence; }

    /** Class indices of the conformal set, most probable first; a copy. */
    public int[] getPredictionSet() { return predictionSet.clone(); }

    /** The probabilities at the model's calibrated temperature; a copy. */
    public float[] getCalibratedProbabilities() { return calibratedProbabilities.clone(); }

    @Override
    public String toString() {
        return "Decision{set=" + Arrays.toString(predictionSet) + ", confidence=" + confidence + ", abstain="
                + abstain + "}";
    }
}
