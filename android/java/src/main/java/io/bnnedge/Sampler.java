package io.bnnedge;

/** How the Monte-Carlo samples are drawn. The ordinal is the native sampler code: keep the order. */
public enum Sampler {
    /**
     * Local reparameterization (the default): each pre-activation is drawn from its exact Gaussian. Exact in
     * distribution for one input and much cheaper than drawing every weight.
     */
    LOCAL_REPARAM,
    /** The reference: a fresh draw of every weight for every sample. */
    WEIGHT_SAMPLING,
    /** Deterministic: the posterior means, one pass whatever the sample count (no epistemic uncertainty). */
    MEAN,
    /**
     * For a batch: each sample's network is drawn once and runs every input of the batch, as a framework's
     * forward pass of a batch does. Each input's samples are exact draws of its predictive distribution, but the
     * inputs share their networks, so their Monte-Carlo errors are correlated. Fixed sample counts only.
     */
    SHARED_WEIGHTS
}
