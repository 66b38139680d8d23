package io.bnnedge;

import java.util.Arrays;

/**
 * A regression with its uncertainty, per output: {@code totalVariance = aleatoricVariance + epistemicVariance},
 * where the aleatoric part is the observation noise (fixed or predicted per input) and the epistemic part the
 * variance of the sampled means. {@code lower}/{@code upper} bound a central interval of mass {@link
 * #getIntervalLevel()} under a Gaussian predictive distribution.
 */
public final class RegressionResult extends Prediction {
    private final float intervalLevel;
    private final float[] mean;
    private final float[] aleatoricVariance;
    private final float[] epistemicVariance;
    private final float[] totalVariance;
    private final float[] lower;
    private final float[] upper;

    RegressionResult(int samplesUsed, float intervalLevel, float[] mean, float[] aleatoricVariance,
                     float[] epistemicVariance, float[] totalVariance, float[] lower, float[] upper) {
        super(samplesUsed);
        this.intervalLevel = intervalLevel;
        this.mean = mean;
        this.aleatoricVariance = aleatoricVariance;
        this.epistemicVariance = epistemicVariance;
        this.totalVariance = totalVariance;
        this.lower = lower;
        this.upper = upper;
    }

    /** Predictive mean per output; a copy. */
    public float[] getMean() { return mean.clone(); }

    /** Observation-noise variance per output (data uncertainty); a copy. */
    public float[] getAleatoricVariance() { return aleatoricVariance.clone(); }

    /** Variance of the sampled means per output (model uncertainty); a copy. */
    public float[] getEpistemicVariance() { return epistemicVariance.clone(); }

    /** Aleatoric plus epistemic variance per output; a copy. */
    public float[] getTotalVariance() { return totalVariance.clone(); }

    /** Lower interval bound per output; a copy. */
    public float[] getLower() { return lower.clone(); }

    /** Upper interval bound per output; a copy. */
    public float[] getUpper() { return upper.clone(); }

    /** Probability mass of the interval [lower, upper]. */
    public float getIntervalLevel() { return intervalLevel; }

    @Override
    public String toString() {
        return "RegressionResult{mean=" + Arrays.toString(mean) + ", aleatoricVariance="
                + Arrays.toString(aleatoricVariance) + ", epistemicVariance=" + Arrays.toString(epistemicVariance)
                + ", interval=" + intervalLevel + ", samplesUsed=" + getSamplesUsed() + "}";
    }
}
