package io.bnnedge;

/**
 * One prediction with its uncertainty: a {@link ClassificationResult} or a {@link RegressionResult}. Immutable.
 * In Kotlin: {@code when (p) { is ClassificationResult -> ...; is RegressionResult -> ... }}.
 */
public abstract class Prediction {
    private final int samplesUsed;

    Prediction(int samplesUsed) {
        this.samplesUsed = samplesUsed;
    }

    /** How many Monte-Carlo samples were drawn (fewer than the maximum when adaptive sampling stopped early). */
    public int getSamplesUsed() { return samplesUsed; }

    /** This prediction as a classification; throws {@link IllegalStateException} for a regression. */
    public ClassificationResult asClassification() {
        if (this instanceof ClassificationResult) {
            return (ClassificationResult) this;
        }
        throw new IllegalStateException("not a classification result");
    }

    /** This prediction as a regression; throws {@link IllegalStateException} for a classification. */
    public RegressionResult asRegression() {
        if (this instanceof RegressionResult) {
            return (RegressionResult) this;
        }
        throw new IllegalStateException("not a regression result");
    }
}
