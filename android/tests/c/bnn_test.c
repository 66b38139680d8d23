/* C host test of include/bnn.h, built with gcc by android/tests/c_host.rs.
 * Usage: bnn_test CLASSIFIER.safetensors REGRESSION.safetensors CALIBRATED-CLASSIFIER.safetensors
 *                 CALIBRATED-REGRESSION.safetensors
 * Checks the error paths itself (exit 1 on failure) and prints the predictions as hexadecimal float bits on
 * stdout for the Rust test to compare with the runtime's own:
 *   classify <class> <samples_used> <mutual_information> <expected_entropy> <p_0> ... <p_k-1>
 *   regress <samples_used> <interval_level> <mean> <aleatoric> <epistemic> <total> <lower> <upper>
 */
#include "bnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond, what)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            const char *e = bnn_last_error();                               \
            fprintf(stderr, "FAILED: %s (last error: %s)\n", what, e ? e : "none"); \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static void print_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    printf(" %08x", (unsigned)bits);
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)size);
    *len = fread(data, 1, (size_t)size, f);
    fclose(f);
    return data;
}

static int contains(const char *haystack, const char *needle) {
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s CLASSIFIER REGRESSION CALIBRATED-CLASSIFIER CALIBRATED-REGRESSION CNN...\n", argv[0]);
        return 2;
    }

    /* A classifier loaded from a path. */
    BnnModel *classifier = bnn_model_load_path(argv[1]);
    CHECK(classifier != NULL, "load classifier from path");
    if (classifier == NULL) return 1;
    size_t dim = bnn_model_input_dim(classifier);
    size_t classes = bnn_model_output_dim(classifier);
    CHECK(bnn_model_task(classifier) == BNN_TASK_CLASSIFICATION, "task is classification");
    float *input = malloc(dim * sizeof(float));
    float *probabilities = malloc(classes * sizeof(float));
    for (size_t i = 0; i < dim; i++) input[i] = (float)(i % 17) / 17.0f;

    BnnOptions options = bnn_options_default();
    options.samples = 24;
    options.seed = 11;
    BnnClassification c;
    CHECK(bnn_classify(classifier, input, dim, &options, probabilities, classes, &c) == BNN_OK, "classify");
    float sum = 0.0f;
    for (size_t k = 0; k < classes; k++) sum += probabilities[k];
    CHECK(fabsf(sum - 1.0f) < 1e-4f, "probabilities sum to 1");
    printf("classify %u", c.class_index);
    printf(" %u", c.samples_used);
    print_bits(c.mutual_information);
    print_bits(c.expected_entropy);
    for (size_t k = 0; k < classes; k++) print_bits(probabilities[k]);
    printf("\n");

    /* Error paths on the classifier. */
    CHECK(bnn_classify(classifier, input, dim - 1, &options, probabilities, classes, &c) == BNN_ERROR_INVALID_ARGUMENT,
          "wrong input length is an invalid argument");
    CHECK(contains(bnn_last_error(), "features"), "wrong length message names the features");
    input[3] = NAN;
    CHECK(bnn_classify(classifier, input, dim, &options, probabilities, classes, &c) == BNN_ERROR_INVALID_ARGUMENT,
          "NaN input is an invalid argument");
    input[3] = 0.0f;
    /* Finite but huge pixels overflow inside the network: an error, not a confident answer. */
    float *huge = malloc(dim * sizeof(float));
    for (size_t i = 0; i < dim; i++) huge[i] = 1e30f;
    CHECK(bnn_classify(classifier, huge, dim, &options, probabilities, classes, &c) == BNN_ERROR_INVALID_ARGUMENT,
          "an overflowing input is an invalid argument");
    CHECK(contains(bnn_last_error(), "overflowed"), "the overflow message says so");
    free(huge);
    BnnOptions no_samples = options;
    no_samples.samples = 0;
    CHECK(bnn_classify(classifier, input, dim, &no_samples, probabilities, classes, &c) == BNN_ERROR_INVALID_ARGUMENT,
          "zero samples is an invalid argument");
    BnnOptions shared = options;
    shared.sampler = BNN_SAMPLER_SHARED_WEIGHTS;
    CHECK(bnn_classify(classifier, input, dim, &shared, probabilities, classes, &c) == BNN_OK && c.samples_used == 24,
          "shared weights predict one input");
    shared.adaptive_max = 100;
    shared.tolerance = 0.01f;
    CHECK(bnn_classify(classifier, input, dim, &shared, probabilities, classes, &c) == BNN_ERROR_INVALID_ARGUMENT,
          "shared weights with an adaptive count are an invalid argument");
    CHECK(contains(bnn_last_error(), "fixed sample count"), "the message says why");
    BnnOptions bad_sampler = options;
    bad_sampler.sampler = 9;
    CHECK(bnn_classify(classifier, input, dim, &bad_sampler, probabilities, classes, &c) == BNN_ERROR_INVALID_ARGUMENT,
          "unknown sampler is an invalid argument");
    CHECK(bnn_classify(classifier, input, dim, NULL, probabilities, classes - 1, &c) == BNN_ERROR_INVALID_ARGUMENT,
          "short probability buffer is an invalid argument");
    CHECK(bnn_classify(NULL, input, dim, NULL, probabilities, classes, &c) == BNN_ERROR_NULL_HANDLE,
          "null handle");
    CHECK(bnn_classify(classifier, input, dim, NULL, probabilities, classes, &c) == BNN_OK && c.samples_used == 32,
          "null options mean the defaults");

    /* Bad model files. */
    unsigned char garbage[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3};
    CHECK(bnn_model_load_bytes(garbage, sizeof garbage) == NULL, "garbage bytes are refused");
    CHECK(contains(bnn_last_error(), "malformed"), "garbage message says malformed");
    CHECK(bnn_model_load_path("/nonexistent/model.safetensors") == NULL, "missing file is refused");
    CHECK(contains(bnn_last_error(), "i/o error"), "missing file message says i/o error");

    /* A regression model loaded from bytes. */
    size_t len = 0;
    unsigned char *bytes = read_file(argv[2], &len);
    CHECK(bytes != NULL, "read regression model");
    BnnModel *regression = bnn_model_load_bytes(bytes, len);
    free(bytes);
    CHECK(regression != NULL, "load regression model from bytes");
    if (regression == NULL) return 1;
    CHECK(bnn_model_task(regression) == BNN_TASK_REGRESSION, "task is regression");
    float x = 0.25f, mean, alea, epi, total, lower, upper;
    BnnRegression r = {&mean, &alea, &epi, &total, &lower, &upper, 1, 0.0f, 0};
    BnnOptions reg_options = bnn_options_default();
    reg_options.samples = 64;
    reg_options.seed = 5;
    reg_options.interval_level = 0.9f;
    CHECK(bnn_regress(regression, &x, 1, &reg_options, &r) == BNN_OK, "regress");
    CHECK(total == alea + epi, "total = aleatoric + epistemic");
    CHECK(lower < mean && mean < upper, "interval contains the mean");
    printf("regress %u", r.samples_used);
    print_bits(r.interval_level);
    print_bits(mean);
    print_bits(alea);
    print_bits(epi);
    print_bits(total);
    print_bits(lower);
    print_bits(upper);
    printf("\n");
    float far = 1e30f;
    CHECK(bnn_regress(regression, &far, 1, &reg_options, &r) == BNN_ERROR_INVALID_ARGUMENT,
          "regression far outside what the model represents is an invalid argument");
    CHECK(bnn_classify(regression, &x, 1, NULL, probabilities, classes, &c) == BNN_ERROR_INVALID_ARGUMENT,
          "classify on a regression model is an invalid argument");
    BnnRegression missing = r;
    missing.upper = NULL;
    CHECK(bnn_regress(regression, &x, 1, NULL, &missing) == BNN_ERROR_INVALID_ARGUMENT, "null output buffer");

    /* A calibrated classifier: its decision on the same input and options as the classification above. */
    BnnModel *calibrated = bnn_model_load_path(argv[3]);
    CHECK(calibrated != NULL, "load calibrated classifier");
    if (calibrated == NULL) return 1;
    CHECK(bnn_model_is_calibrated(calibrated) == 1 && bnn_model_is_calibrated(classifier) == 0,
          "calibrated or not");
    CHECK(bnn_model_is_calibrated(NULL) == -1, "null handle: -1");
    for (size_t i = 0; i < dim; i++) input[i] = (float)(i % 17) / 17.0f; /* the error checks changed it */
    CHECK(bnn_classify(calibrated, input, dim, &options, probabilities, classes, &c) == BNN_OK, "classify calibrated");
    float *scaled = malloc(classes * sizeof(float));
    uint32_t *set = malloc(classes * sizeof(uint32_t));
    BnnDecision d;
    CHECK(bnn_decide(calibrated, probabilities, classes, 0.9f, scaled, set, classes, &d) == BNN_OK, "decide");
    printf("decide %d %u", d.abstain, d.set_size);
    for (uint32_t k = 0; k < d.set_size; k++) printf(" %u", set[k]);
    print_bits(d.confidence);
    for (size_t k = 0; k < classes; k++) print_bits(scaled[k]);
    printf("\n");
    CHECK(bnn_decide(calibrated, probabilities, classes, 0.9f, NULL, set, classes, &d) == BNN_OK,
          "the calibrated probabilities are optional");
    CHECK(bnn_decide(classifier, probabilities, classes, 0.9f, NULL, set, classes, &d) == BNN_ERROR_INVALID_ARGUMENT,
          "an uncalibrated model cannot decide");
    CHECK(contains(bnn_last_error(), "not calibrated"), "the message says so");
    CHECK(bnn_decide(calibrated, probabilities, classes, 0.5f, NULL, set, classes, &d) == BNN_ERROR_INVALID_ARGUMENT,
          "a level the model does not store");
    CHECK(bnn_decide(calibrated, probabilities, classes, 0.9f, NULL, set, classes - 1, &d) == BNN_ERROR_INVALID_ARGUMENT,
          "a set buffer without room for every class");
    free(scaled);
    free(set);
    bnn_model_free(calibrated);

    /* A calibrated regression model: the conformal interval around the prediction of x = 0.25. */
    BnnModel *calibrated_regression = bnn_model_load_path(argv[4]);
    CHECK(calibrated_regression != NULL, "load calibrated regression model");
    if (calibrated_regression == NULL) return 1;
    CHECK(bnn_regress(calibrated_regression, &x, 1, &reg_options, &r) == BNN_OK, "regress calibrated");
    float interval_lower, interval_upper;
    CHECK(bnn_conformal_interval(calibrated_regression, &mean, &total, 1, 0.9f, &interval_lower, &interval_upper)
              == BNN_OK, "conformal interval");
    CHECK(interval_lower < mean && mean < interval_upper, "the interval contains the mean");
    printf("interval");
    print_bits(interval_lower);
    print_bits(interval_upper);
    printf("\n");
    CHECK(bnn_conformal_interval(regression, &mean, &total, 1, 0.9f, &interval_lower, &interval_upper)
              == BNN_ERROR_INVALID_ARGUMENT, "an uncalibrated regression model has no interval");
    CHECK(bnn_conformal_interval(calibrated_regression, &mean, &total, 1, 0.5f, &interval_lower, &interval_upper)
              == BNN_ERROR_INVALID_ARGUMENT, "a level the model does not store");
    bnn_model_free(calibrated_regression);

    /* CNNs (argv[5] on: a small test CNN, the shipped LeNet-5s) take their images flat (NCHW), through the same
       calls; each prints its input shape and its classification of the image i % 17 / 17. */
    size_t shape[3] = {0, 0, 0};
    CHECK(bnn_model_input_shape(classifier, shape) == BNN_OK && shape[0] == dim && shape[1] == 1 && shape[2] == 1,
          "a flat input's shape is {input_dim, 1, 1}");
    CHECK(bnn_model_input_shape(classifier, NULL) == BNN_ERROR_INVALID_ARGUMENT, "a null shape is an invalid argument");
    CHECK(bnn_model_input_shape(NULL, shape) == BNN_ERROR_NULL_HANDLE, "input shape of a null handle");
    for (int m = 5; m < argc; m++) {
        BnnModel *cnn = bnn_model_load_path(argv[m]);
        CHECK(cnn != NULL, "load CNN");
        if (cnn == NULL) return 1;
        CHECK(bnn_model_input_shape(cnn, shape) == BNN_OK, "a CNN's input shape");
        size_t cnn_dim = bnn_model_input_dim(cnn), cnn_classes = bnn_model_output_dim(cnn);
        CHECK(cnn_dim == shape[0] * shape[1] * shape[2], "a CNN takes channels x height x width values");
        float *image = malloc(cnn_dim * sizeof(float));
        float *cnn_probabilities = malloc(cnn_classes * sizeof(float));
        for (size_t i = 0; i < cnn_dim; i++) image[i] = (float)(i % 17) / 17.0f;
        CHECK(bnn_classify(cnn, image, cnn_dim, &options, cnn_probabilities, cnn_classes, &c) == BNN_OK,
              "classify an image");
        printf("cnn %zu %zu %zu %u %u", shape[0], shape[1], shape[2], c.class_index, c.samples_used);
        print_bits(c.mutual_information);
        print_bits(c.expected_entropy);
        for (size_t k = 0; k < cnn_classes; k++) print_bits(cnn_probabilities[k]);
        printf("\n");
        free(image);
        free(cnn_probabilities);
        bnn_model_free(cnn);
    }

    bnn_model_free(regression);
    bnn_model_free(classifier);
    bnn_model_free(NULL);
    free(input);
    free(probabilities);
    return failures == 0 ? 0 : 1;
}
