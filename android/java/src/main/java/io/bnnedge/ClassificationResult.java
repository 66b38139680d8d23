package io.bnnedge;

import java.util.Arrays;

/**
 * A classification with its uncertainty, in nats: {@code predictiveEntropy = expectedEntropy +
 * mutualInformation}, where the expected entropy is the aleatoric part (ambiguity in the data) and the mutual
 * information the epistemic part (the model's own doubt; high on inputs unlike its training data).
 */
public final class ClassificationResult extends Prediction {
    private final float[] probabilities;
    private final int predictedClass;
    private final float predictiveEntropy;
    private final float expectedEntropy;
    private final float mutualInformation;

    ClassificationResult(int samplesUsed, float[] probabilities, int predictedClass, float predictiveEntropy,
                         float expectedEntropy, float mutualInformation) {
        super(samplesUsed);
        this.probabilities = probabilities;
        this.predictedClass = predictedClass;
        this.predictiveEntropy = predictiveEntropy;
        this.expectedEntropy = expectedEntropy;
        this.mutualInformation = mutualInformation;
    }

    /** Predictive class probabilities (the Monte-Carlo mean); a copy. */
    public float[] getProbabilities() { return probabilities.clone(); }

    /** Probability of one class. */
    public float getProbability(int classIndex) { return probabilities[classIndex]; }

    /** Index of the most probable class. */
    public int getPredictedClass() { return predictedClass; }

    /** Entropy of the predictive probabilities: total uncertainty. */
    public float getPredictiveEntropy() { return predictiveEntropy; }

    /** Mean entropy of the sampled probabilities: aleatoric uncertainty. */
    public float getExpectedEntropy() { return expectedEntropy; }

    /** Mutual information between prediction and weights: epistemic uncertainty. */
    public float getMutualInformation() { return mutualInformation; }

    @Override
    public String toString() {
        return "ClassificationResult{class=" + predictedClass + ", probabilities=" + Arrays.toString(probabilities)
                + ", predictiveEntropy=" + predictiveEntropy + ", expectedEntropy=" + expectedEntropy
                + ", mutualInformation=" + mutualInformation + ", samplesUsed=" + getSamplesUsed() + "}";
    }
}
