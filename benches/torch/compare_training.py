"""One epoch of MNIST training (batch 128, Adam, lr 1e-3), timed side by side on this machine. `--nets mlp`
(784-400-400-10):

- plain PyTorch MLP (the floor: three matrix products per layer and step),
- bayesian-torch `LinearReparameterization` layers with their full closed-form KL (a Gaussian prior),
- `bnn train` with `models/mnist-bbb.toml` (scale-mixture prior, local reparameterization), the same recipe with
  weight sampling, and `models/mnist-deterministic.toml`.

`--nets lenet5` (1x28x28-conv6k5p2-maxpool2-conv16k5-maxpool2-flatten-120-84-10, ReLU):

- bayesian-torch `Conv2dReparameterization` + `LinearReparameterization` LeNet-5 (full closed-form KL),
- `bnn train` with `models/mnist-bbb-lenet5.toml` (Flipout in the convolutions, local reparameterization in the
  dense layers), and the same recipe with weight sampling (one weight draw per minibatch in every layer: the
  estimator of bayesian-torch's `Conv2dReparameterization` and `LinearReparameterization`).

The trainers run interleaved, `--rounds` times, each alone on the machine. Torch times the optimisation steps of
the epoch; for `bnn` the script reads the `steps` seconds of its epoch line (the same steps, without its test-set
evaluation) and also reports the whole epoch line's seconds. Run through `compare_training.sh`, which makes the
virtual environment. This is a measurement; bnn-edge never depends on PyTorch.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mnist_idx import idx  # noqa: E402 (benches/mnist_idx.py, found through the line above)


def load_mnist(directory):
    x = idx(os.path.join(directory, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255.0
    y = idx(os.path.join(directory, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    x = (x - x.mean()) / x.std()
    return torch.from_numpy(x), torch.from_numpy(y)


def torch_epoch(model_fn, x, y, bayesian):
    torch.manual_seed(1)
    model = model_fn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = x.shape[0]
    order = torch.randperm(n)
    start = time.perf_counter()
    for i in range(0, n, 128):
        idx_ = order[i : i + 128]
        opt.zero_grad()
        if bayesian:
            out, kl = model(x[idx_])
            loss = F.cross_entropy(out, y[idx_]) + kl / n
        else:
            loss = F.cross_entropy(model(x[idx_]), y[idx_])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def plain_mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(784, 400), torch.nn.ReLU(), torch.nn.Linear(400, 400), torch.nn.ReLU(), torch.nn.Linear(400, 10)
    )


class BayesianTorchLeNet5(torch.nn.Module):
    def __init__(self):
        super().__init__()
        from bayesian_torch.layers import Conv2dReparameterization as C, LinearReparameterization as L

        self.convs = torch.nn.ModuleList([C(1, 6, 5, padding=2), C(6, 16, 5)])
        self.dense = torch.nn.ModuleList([L(400, 120), L(120, 84), L(84, 10)])

    def forward(self, x):
        x, kl = x.reshape(-1, 1, 28, 28), 0.0
        for conv in self.convs:
            x, k = conv(x)
            x, kl = F.max_pool2d(F.relu(x), 2), kl + k
        x = x.flatten(1)
        for i, layer in enumerate(self.dense):
            x, k = layer(x)
            kl = kl + k
            if i < 2:
                x = F.relu(x)
        return x, kl


class BayesianTorchMlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        from bayesian_torch.layers import LinearReparameterization as L

        self.layers = torch.nn.ModuleList([L(784, 400), L(400, 400), L(400, 10)])

    def forward(self, x):
        kl = 0.0
        for i, layer in enumerate(self.layers):
            x, k = layer(x)
            kl = kl + k
            if i < 2:
                x = F.relu(x)
        return x, kl


def bnn_epoch(binary, recipe, data, out_dir):
    start = time.perf_counter()
    run = subprocess.run(
        [binary, "train", "--force", "--recipe", recipe, "--epochs", "1", "--data", data, "--out", os.path.join(out_dir, "m.safetensors")],
        capture_output=True,
        text=True,
        env={**os.environ, "RAYON_NUM_THREADS": str(torch.get_num_threads())},
    )
    wall = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"bnn train failed:\n{run.stderr}")
    line = next(l for l in run.stderr.replace("\r", "\n").splitlines() if l.startswith("epoch"))
    m = re.search(r"([0-9.]+)s \(steps ([0-9.]+)s\)", line)
    return float(m.group(2)), float(m.group(1)), wall


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("BNN_MNIST_DIR", "../shared/data/mnist"))
    p.add_argument("--bnn", default="target/release/bnn")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--nets", default="mlp,lenet5", help="comma-separated: mlp, lenet5")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x, y = load_mnist(a.data)
    out_dir = tempfile.mkdtemp(prefix="bnn-compare-")

    def full_training_set(recipe, name, estimator="local_reparam"):
        # The shipped recipes hold 10,000 images out for validation; an epoch here covers all 60,000, as torch's,
        # and moves none of them (torch's rows do not augment).
        with open(recipe) as f:
            lines = [l for l in f.read().splitlines()
                     if not l.startswith(("validation =", "patience =", "shift_pixels ="))]
        text = "\n".join(lines).replace('estimator = "local_reparam"', f'estimator = "{estimator}"')
        path = os.path.join(out_dir, name)
        with open(path, "w") as f:
            f.write(text + "\n")
        return path

    nets = a.nets.split(",")
    # (row name, what runs it): a torch model function and whether it is Bayesian, or a bnn recipe.
    rows = []
    if "mlp" in nets:
        rows += [
            ("plain PyTorch MLP", (plain_mlp, False)),
            ("bayesian-torch LinearReparameterization, full KL", (BayesianTorchMlp, True)),
            ("bnn train mnist-bbb.toml (scale mixture, local reparameterization)",
             full_training_set("models/mnist-bbb.toml", "mnist-bbb.toml")),
            ("bnn train mnist-bbb.toml with weight sampling",
             full_training_set("models/mnist-bbb.toml", "mnist-bbb-weight-sampling.toml", "weight_sampling")),
            ("bnn train mnist-deterministic.toml",
             full_training_set("models/mnist-deterministic.toml", "mnist-deterministic.toml")),
        ]
    if "lenet5" in nets:
        rows += [
            ("bayesian-torch Conv2dReparameterization LeNet-5, full KL", (BayesianTorchLeNet5, True)),
            ("bnn train mnist-bbb-lenet5.toml (Flipout convolutions)",
             full_training_set("models/mnist-bbb-lenet5.toml", "mnist-bbb-lenet5.toml")),
            ("bnn train mnist-bbb-lenet5.toml with weight sampling",
             full_training_set("models/mnist-bbb-lenet5.toml", "mnist-bbb-lenet5-weight-sampling.toml",
                               "weight_sampling")),
        ]
    times = {name: [] for name, _ in rows}
    whole = {}
    for r in range(a.rounds):
        for name, what in rows:
            if isinstance(what, tuple):
                times[name].append(torch_epoch(what[0], x, y, what[1]))
            else:
                steps, epoch, wall = bnn_epoch(a.bnn, what, a.data, out_dir)
                times[name].append(steps)
                whole.setdefault(name, []).append(epoch)
        print(f"round {r + 1} done", file=sys.stderr)
    print(f"torch {torch.__version__}, {a.threads} threads; seconds per epoch of 60,000 images (optimisation steps)\n")
    print("| trainer | " + " | ".join(f"round {r + 1}" for r in range(a.rounds)) + " |")
    print("|---|" + "---:|" * a.rounds)
    for name, t in times.items():
        extra = f" (whole epoch line with test evaluation: {', '.join(f'{v:.1f}' for v in whole[name])})" if name in whole else ""
        print(f"| {name}{extra} | " + " | ".join(f"{v:.2f}" for v in t) + " |")
    print()
    ratio = lambda a_, b_, r: times[a_][r] / times[b_][r]
    for r in range(a.rounds):
        parts = []
        if "mlp" in nets:
            bt, bbb, ws_, det = (n for n, _ in rows[1:5])
            parts += [f"BBB / bayesian-torch {ratio(bbb, bt, r):.2f}x", f"BBB / bnn deterministic {ratio(bbb, det, r):.2f}x",
                      f"weight sampling / bayesian-torch {ratio(ws_, bt, r):.2f}x"]
        if "lenet5" in nets:
            bt, ours, ws_ = (n for n, _ in rows[-3:])
            parts += [f"LeNet-5 bnn / bayesian-torch {ratio(ours, bt, r):.2f}x",
                      f"LeNet-5 weight sampling / bayesian-torch {ratio(ws_, bt, r):.2f}x"]
        print(f"round {r + 1}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
