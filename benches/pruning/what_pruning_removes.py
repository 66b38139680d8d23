"""What a global SNR cut removes from a dense Bayesian MLP, part by part: prunes the model by one SNR threshold
(|mu| / sigma) at the given sparsity and measures, on the MNIST test images, the Monte-Carlo prediction (local
reparameterization, S samples) with

- nothing removed (the dense model);
- the pruned weights removed (what `bnn prune` exports);
- only their means removed (their variances kept), and only their variances removed (their means kept);
- the pruned weights removed and their mean contribution put back through the bias, mu_jc * E[x_c] over the
  training images (mean replacement), without and with their variance contribution, sigma_jc^2 * E[x_c^2] plus
  the variance of mu_j . x over those images, added to the bias variance.

A diagnosis, not a benchmark: it reads the test set (and nothing here chooses a model), and its samples come from
numpy's generator, so its figures are close to, not equal to, `bnn prune-sweep`'s. Needs numpy and safetensors
(never a dependency of the project). Run from the repository root:
    python3 benches/pruning/what_pruning_removes.py --model models/mnist-bbb-sparse.safetensors \
        --data ../shared/data/mnist --sparsity 0.98
"""

import argparse
import json
import os
import sys

import numpy as np
from safetensors import safe_open

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mnist_idx import idx  # noqa: E402 (benches/mnist_idx.py, found through the line above)


def load(path):
    f = safe_open(path, "np")
    meta = json.loads(f.metadata()["bnn.model"])
    dense = [i for i, l in enumerate(meta["layers"]) if l["kind"] == "bayesian_dense"]
    if [l["kind"] for l in meta["layers"]] != ["bayesian_dense", "activation"] * (len(dense) - 1) + ["bayesian_dense"]:
        raise SystemExit("expects a dense Bayesian MLP (bayesian_dense / activation layers, ReLU), stored dense")
    params = [{k: f.get_tensor(f"layers.{i}.{k}") for k in ("weight.mu", "weight.sigma", "bias.mu", "bias.sigma")} for i in dense]
    return params, meta.get("normalization")


def predict(x, layers, samples, seed):
    """Mean class probabilities over `samples` local-reparameterization passes; `layers` holds per layer the
    weight means and variances, the bias mean and the bias variance."""
    rng, probs = np.random.default_rng(seed), 0.0
    for _ in range(samples):
        h = x
        for i, (mu, var, b_mu, b_var) in enumerate(layers):
            mean, v = h @ mu.T + b_mu, (h * h) @ var.T + b_var
            z = mean + np.sqrt(v) * rng.standard_normal(mean.shape).astype(np.float32)
            h = np.maximum(z, 0) if i + 1 < len(layers) else z
        e = np.exp(h - h.max(1, keepdims=True))
        probs = probs + e / e.sum(1, keepdims=True)
    return probs / samples


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="the MNIST directory (gzipped IDX files)")
    ap.add_argument("--sparsity", type=float, default=0.98)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--train-images", type=int, default=20000, help="training images for E[x] and E[x^2]")
    args = ap.parse_args()

    params, norm = load(args.model)

    def inputs(name, n=None):
        x = idx(f"{args.data}/{name}").reshape(-1, 784)[:n] / 255.0
        if norm is not None:
            x = (x - np.array(norm["mean"])) / np.array(norm["std"])
        return x.astype(np.float32)

    x_test, y_test = inputs("t10k-images-idx3-ubyte.gz"), idx(f"{args.data}/t10k-labels-idx1-ubyte.gz")
    x_train = inputs("train-images-idx3-ubyte.gz", args.train_images)

    snr = [np.abs(p["weight.mu"] / p["weight.sigma"]) for p in params]
    threshold = np.quantile(np.concatenate([s.ravel() for s in snr]), args.sparsity)
    kept = [s > threshold for s in snr]
    print(f"{args.model}: one SNR threshold {threshold:.4g} removes {args.sparsity:.0%}; kept per layer "
          + ", ".join(f"{k.mean():.2%}" for k in kept))

    def layers(mean_kept, var_kept, bias_shift=None):
        out = []
        for i, p in enumerate(params):
            b_mu, b_var = p["bias.mu"], p["bias.sigma"] ** 2
            if bias_shift is not None:
                b_mu, b_var = b_mu + bias_shift[i][0], b_var + bias_shift[i][1]
            out.append((p["weight.mu"] * mean_kept[i], p["weight.sigma"] ** 2 * var_kept[i], b_mu, b_var))
        return out

    def compensation(with_variance):
        """Per layer, the pruned weights' contribution to the bias mean (and variance), from the training images
        passed through the compensated pruned network's means."""
        shifts, h = [], x_train
        for i, (p, k) in enumerate(zip(params, kept)):
            gone_mu = p["weight.mu"] * ~k
            shift_mu = gone_mu @ h.mean(0)
            shift_var = np.zeros_like(shift_mu)
            if with_variance:
                shift_var = (p["weight.sigma"] ** 2 * ~k) @ (h * h).mean(0) + (h @ gone_mu.T).var(0)
            shifts.append((shift_mu, shift_var))
            z = h @ (p["weight.mu"] * k).T + p["bias.mu"] + shift_mu
            h = np.maximum(z, 0) if i + 1 < len(params) else z
        return shifts

    everything = [np.ones_like(k) for k in kept]
    rows = [
        ("dense", layers(everything, everything)),
        ("pruned (what `bnn prune` exports)", layers(kept, kept)),
        ("pruned means only (their variances kept)", layers(kept, everything)),
        ("pruned variances only (their means kept)", layers(everything, kept)),
        ("pruned, mean contribution put back in the bias", layers(kept, kept, compensation(False))),
        ("pruned, mean and variance put back in the bias", layers(kept, kept, compensation(True))),
    ]
    print(f"\nS = {args.samples}, {len(y_test)} test images\n")
    print("| weights | test error | NLL |\n|---|---:|---:|")
    for name, model in rows:
        p = predict(x_test, model, args.samples, seed=0)
        error = (p.argmax(1) != y_test).mean()
        nll = -np.log(p[np.arange(len(y_test)), y_test] + 1e-12).mean()
        print(f"| {name} | {error:.2%} | {nll:.4f} |")


if __name__ == "__main__":
    main()
