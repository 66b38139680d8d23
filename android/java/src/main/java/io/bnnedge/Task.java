package io.bnnedge;

/** What a model predicts. The ordinal is the native task code ({@code BNN_TASK_*}): keep the order. */
public enum Task {
    /** Class probabilities, with entropy-based uncertainty: results are {@link ClassificationResult}. */
    CLASSIFICATION,
    /** Real-valued outputs with aleatoric and epistemic variances: results are {@link RegressionResult}. */
    REGRESSION
}
