"""Times ONNX Runtime on the deterministic MLP 784-400-400-10 (ReLU, softmax head) and, in the same run, the
bnn-edge runtime's `Mean` pass on the same shape (examples/mean_pass_latency.rs), and prints the ratios.

The project never depends on ONNX Runtime; this is a one-off comparison for issue "Runtime performance".
Needs: pip install onnx onnxruntime numpy. Run from the repository root:
    python3 benches/onnx/compare_onnxruntime.py
ONNX Runtime is called from Python (single-threaded session, all graph optimisations), so its figures include
the Python call overhead of `InferenceSession.run`, a few microseconds.
"""

import subprocess
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


def main():
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(mlp_model().SerializeToString(), options, providers=["CPUExecutionProvider"])
    x1 = np.random.default_rng(2).random((1, SIZES[0]), dtype=np.float32)
    x32 = np.repeat(x1, 32, axis=0)
    ort_single = median_us(3000, lambda: session.run(None, {"x": x1}))
    ort_batch = median_us(300, lambda: session.run(None, {"x": x32}))

    out = subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "bnn-benches", "--example", "mean_pass_latency"],
        check=True, capture_output=True, text=True,
    ).stdout
    ours = dict((k, float(v)) for k, v in (line.split() for line in out.strip().splitlines()))
    print(f"onnxruntime {ort.__version__}, one thread, MLP {'-'.join(map(str, SIZES))}, median microseconds")
    print(f"{'':28}{'single':>10}{'batch 32':>10}")
    print(f"{'ONNX Runtime (from Python)':28}{ort_single:>10.1f}{ort_batch:>10.1f}")
    print(f"{'bnn-runtime Mean pass':28}{ours['bnn_mean_single_us']:>10.1f}{ours['bnn_mean_batch32_us']:>10.1f}")
    print(f"{'ratio bnn / ORT':28}{ours['bnn_mean_single_us'] / ort_single:>10.2f}{ours['bnn_mean_batch32_us'] / ort_batch:>10.2f}")


if __name__ == "__main__":
    main()
