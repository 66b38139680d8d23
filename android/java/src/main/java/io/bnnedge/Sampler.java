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
    MEAN
}
