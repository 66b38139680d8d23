package io.bnnedge;

/**
 * Immutable options of a prediction: how many Monte-Carlo samples (fixed or adaptive), the seed, the sampler and
 * the regression interval level. The same options and seed give bit-identical results.
 *
 * <pre>{@code
 * PredictOptions options = PredictOptions.builder().samples(32).seed(7).build();
 * }</pre>
 */
public final class PredictOptions {
    /** 32 local-reparameterization samples, seed 0, 95% intervals. */
    public static final PredictOptions DEFAULT = builder().build();

    private final int samples;
    private final int adaptiveMax;
    private final float tolerance;
    private final long seed;
    private final Sampler sampler;
    private final float intervalLevel;

    private PredictOptions(Builder b) {
        this.samples = b.samples;
        this.adaptiveMax = b.adaptiveMax;
        this.tolerance = b.tolerance;
        this.seed = b.seed;
        this.sampler = b.sampler;
        this.intervalLevel = b.intervalLevel;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder that starts from these options. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.samples = samples;
        b.adaptiveMax = adaptiveMax;
        b.tolerance = tolerance;
        b.seed = seed;
        b.sampler = sampler;
        b.intervalLevel = intervalLevel;
        return b;
    }

    /** Fixed sample count (used when {@link #getAdaptiveMax()} is 0). */
    public int getSamples() { return samples; }

    /** Upper bound of adaptive sampling, or 0 for a fixed count. */
    public int getAdaptiveMax() { return adaptiveMax; }

    /** Target standard error of every predictive-mean entry in adaptive sampling. */
    public float getTolerance() { return tolerance; }

    public long getSeed() { return seed; }

    public Sampler getSampler() { return sampler; }

    /** Probability mass of regression intervals, in (0, 1). */
    public float getIntervalLevel() { return intervalLevel; }

    /** Builds {@link PredictOptions}; values are checked by the native runtime when a prediction is made. */
    public static final class Builder {
        private int samples = 32;
        private int adaptiveMax = 0;
        private float tolerance = 0f;
        private long seed = 0L;
        private Sampler sampler = Sampler.LOCAL_REPARAM;
        private float intervalLevel = 0.95f;

        private Builder() {}

        /** A fixed number of Monte-Carlo samples, 1 to 2^24; turns adaptive sampling off. */
        public Builder samples(int samples) {
            this.samples = samples;
            this.adaptiveMax = 0;
            return this;
        }

        /**
         * Draw until the standard error of every predictive-mean entry is at most {@code tolerance} (after at
         * least 8 samples) or until {@code maxSamples}.
         */
        public Builder adaptive(int maxSamples, float tolerance) {
            this.adaptiveMax = maxSamples;
            this.tolerance = tolerance;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        public Builder sampler(Sampler sampler) {
            if (sampler == null) {
                throw new IllegalArgumentException("sampler is null");
            }
            this.sampler = sampler;
            return this;
        }

        public Builder intervalLevel(float level) {
            this.intervalLevel = level;
            return this;
        }

        public PredictOptions build() {
            return new PredictOptions(this);
        }
    }
}
