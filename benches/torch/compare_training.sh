#!/usr/bin/env bash
# Side-by-side training benchmark (see compare_training.py): makes a Python virtual environment with torch and
# bayesian-torch from the package registry (once, in ${BNN_TORCH_VENV:-target/torch-venv}), builds `bnn`, and
# runs the comparison. Usage: bash benches/torch/compare_training.sh [--rounds N] [--data DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${BNN_TORCH_VENV:-target/torch-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, bayesian_torch, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch bayesian-torch numpy
fi
cargo build --release --bin bnn
exec "$venv/bin/python" benches/torch/compare_training.py "$@"
