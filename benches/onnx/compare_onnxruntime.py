"""Times ONNX Runtime on the deterministic MLP 784-400-400-10 (ReLU, softmax head) and, in the same run, the
bnn-edge runtime on the same shape (examples/onnx_counterparts.rs), and prints the ratios:

- one deterministic pass, one input and a batch of 32, one thread: ORT against our `Mean` pass;
- one input, one thread: our Monte-Carlo prediction (S = 32) of the trained 95%-pruned model and of the trained
  dense model, against ORT's single deterministic dense pass: with the default seed every call (a predictor then
  replays its noise), and for the pruned model also with a new seed each call (drawn every time);
- a batch of 64 inputs at S = 32 on 2 threads: our predictions per second (pruned, dense; local
  reparameterization, and shared weights, where the batch's inputs share each sample's network) against ORT's
  deterministic dense throughput when it runs the batch 32 times (a session with 2 intra-op threads);
- LeNet-5 (conv 6@5x5 padding 2, max-pool 2, conv 16@5x5, max-pool 2, dense 120, 84, 10), one thread: our Bayesian
  LeNet-5's `Mean` pass against ORT's single deterministic pass, and our S = 32 prediction of one image against
  ORT's deterministic pass of a batch of 32.

The project never depends on ONNX Runtime; this is a side-by-side comparison. Needs: pip install onnx
onnxruntime numpy. Run from the repository root, alone on the machine:
    BNN_MNIST_DIR=../shared/data/mnist python3 benches/onnx/compare_onnxruntime.py [--rounds 5]
(without BNN_MNIST_DIR our side predicts a synthetic image). ONNX Runtime is called from Python (all graph
optimisations), so its figures include the Python call overhead of `InferenceSession.run`; the script times that
overhead on an Identity graph and also states the single-pass ratios without it.
"""

import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SIZES = [784, 400, 400, 10]


def mlp_model():
    rng = np.random.default_rng(1)
    nodes, inits, prev = [], [], "x"
    for k, (i, o) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        w = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32)
        b = np.zeros(o, dtype=np.float32)
        inits += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(b, f"b{k}")]
        nodes += [helper.make_node("MatMul", [prev, f"w{k}"], [f"m{k}"]), helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"])]
        prev = f"a{k}"
        if k + 2 < len(SIZES):
            nodes.append(helper.make_node("Relu", [prev], [f"r{k}"]))
            prev = f"r{k}"
    nodes.append(helper.make_node("Softmax", [prev], ["y"], axis=-1))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", SIZES[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", SIZES[-1]])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def median_us(runs, f):
    for _ in range(runs // 10):
        f()
    times = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        f()
        times.append((time.perf_counter_ns() - t) / 1e3)
    return float(np.median(times))


def lenet_model():
    """LeNet-5 for 1x28x28 images, random weights, as bnn_benches::lenet5 shapes it."""
    rng = np.random.default_rng(3)

    def init(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32), name)

    inits = [init("c1", 6, 1, 5, 5), init("b1", 6), init("c2", 16, 6, 5, 5), init("b2", 16),
             init("f1", 400, 120), init("g1", 120), init("f2", 120, 84), init("g2", 84), init("f3", 84, 10), init("g3", 10)]
    nodes = [
        helper.make_node("Conv", ["x", "c1", "b1"], ["a1"], pads=[2, 2, 2, 2]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "c2", "b2"], ["a2"]),
        helper.make_node("Relu", ["a2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"]),
        helper.make_node("MatMul", ["f", "f1"], ["m1"]), helper.make_node("Add", ["m1", "g1"], ["d1"]),
        helper.make_node("Relu", ["d1"], ["h1"]),
        helper.make_node("MatMul", ["h1", "f2"], ["m2"]), helper.make_node("Add", ["m2", "g2"], ["d2"]),
        helper.make_node("Relu", ["d2"], ["h2"]),
        helper.make_node("MatMul", ["h2", "f3"], ["m3"]), helper.make_node("Add", ["m3", "g3"], ["d3"]),
        helper.make_node("Softmax", ["d3"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "lenet5",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def identity_model():
    """The same input, passed through: timing it gives the cost of a call from Python."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", SIZES[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", SIZES[0]])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def session(threads, model=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    model = model or mlp_model()
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def ours():
    out = subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "bnn-benches", "--example", "onnx_counterparts"],
        check=True, capture_output=True, text=True,
    ).stdout
    return dict((k, float(v)) for k, v in (line.split() for line in out.strip().splitlines()))


def main():
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 5
    one, two, identity = session(1), session(2), session(1, identity_model())
    lenet = session(1, lenet_model())
    img1 = np.random.default_rng(4).random((1, 1, 28, 28), dtype=np.float32)
    img32 = np.repeat(img1, 32, axis=0)
    x1 = np.random.default_rng(2).random((1, SIZES[0]), dtype=np.float32)
    x32, x64 = np.repeat(x1, 32, axis=0), np.repeat(x1, 64, axis=0)

    def batch64_32_passes():
        for _ in range(32):
            two.run(None, {"x": x64})

    # Rounds that alternate ONNX Runtime and bnn-runtime, so that the machine's drift hits both alike; every
    # figure below is the median over the rounds, and each ratio the median of the rounds' ratios.
    rows = []
    for _ in range(rounds):
        r = {
            "ort_single_us": median_us(2000, lambda: one.run(None, {"x": x1})),
            "ort_call_us": median_us(2000, lambda: identity.run(None, {"x": x1})),
            "ort_batch32_us": median_us(200, lambda: one.run(None, {"x": x32})),
            "ort_s32_batch64_per_s": 64 / (median_us(40, batch64_32_passes) * 1e-6),
            "ort_lenet_single_us": median_us(1000, lambda: lenet.run(None, {"x": img1})),
            "ort_lenet_batch32_us": median_us(200, lambda: lenet.run(None, {"x": img32})),
        }
        r["ort_pass_us"] = r["ort_single_us"] - r["ort_call_us"]
        r.update(ours())
        rows.append(r)

    def med(key):
        return float(np.median([r[key] for r in rows]))

    def ratio(num, den):
        return float(np.median([r[num] / r[den] for r in rows]))

    print(f"onnxruntime {ort.__version__}, MLP {'-'.join(map(str, SIZES))}, medians of {rounds} alternating rounds")
    print("one thread, microseconds")
    print(f"{'':44}{'single':>10}{'batch 32':>10}")
    print(f"{'ONNX Runtime dense pass (from Python)':44}{med('ort_single_us'):>10.1f}{med('ort_batch32_us'):>10.1f}")
    print(f"{'bnn-runtime Mean pass':44}{med('mean_single_us'):>10.1f}{med('mean_batch32_us'):>10.1f}")
    print(f"{'ratio bnn / ORT':44}{ratio('mean_single_us', 'ort_single_us'):>10.2f}"
          f"{ratio('mean_batch32_us', 'ort_batch32_us'):>10.2f}")
    print(f"{'ONNX Runtime call overhead (Identity graph)':44}{med('ort_call_us'):>10.1f}")
    print(f"{'ONNX Runtime dense pass less the overhead':44}{med('ort_pass_us'):>10.1f}")
    singles = {
        "pruned": "bnn-runtime 95%-pruned S = 32 prediction",
        "pruned_new_seed": "bnn-runtime 95%-pruned, new seed each call",
        "dense": "bnn-runtime dense S = 32 prediction",
    }
    for kind, label in singles.items():
        print(f"{label:44}{med(kind + '_s32_single_us'):>10.1f}   "
              f"({ratio(kind + '_s32_single_us', 'ort_single_us'):.2f}x ORT's single pass, "
              f"{ratio(kind + '_s32_single_us', 'ort_pass_us'):.2f}x without its call overhead)")
    print("batch of 64 at S = 32, 2 threads, predictions per second (ORT: 32 deterministic passes of the batch)")
    print(f"{'ONNX Runtime dense, 32 passes':44}{med('ort_s32_batch64_per_s'):>10.0f}")
    for kind in ["pruned", "dense", "pruned_shared", "dense_shared"]:
        label = f"bnn-runtime {'95%-pruned' if kind.startswith('pruned') else 'dense'} S = 32"
        label += ", shared weights" if kind.endswith("shared") else ""
        print(f"{label:44}{med(kind + '_s32_batch64_per_s'):>10.0f}   "
              f"({ratio(kind + '_s32_batch64_per_s', 'ort_s32_batch64_per_s'):.2f}x ORT)")
    print("LeNet-5, one image, one thread, microseconds")
    print(f"{'ONNX Runtime deterministic pass, batch 1':44}{med('ort_lenet_single_us'):>10.1f}")
    print(f"{'ONNX Runtime deterministic pass, batch 32':44}{med('ort_lenet_batch32_us'):>10.1f}")
    print(f"{'bnn-runtime Bayesian LeNet-5 Mean pass':44}{med('lenet_mean_us'):>10.1f}   "
          f"({ratio('lenet_mean_us', 'ort_lenet_single_us'):.2f}x ORT's batch-1 pass)")
    print(f"{'bnn-runtime Bayesian LeNet-5 S = 32':44}{med('lenet_s32_us'):>10.1f}   "
          f"({ratio('lenet_s32_us', 'ort_lenet_batch32_us'):.2f}x ORT's batch-32 pass)")


if __name__ == "__main__":
    main()
