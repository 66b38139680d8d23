#!/usr/bin/env bash
# Rebuilds the shipped models, their evaluation reports and the pruning benchmark from the recipes.
# Usage: bash models/reproduce.sh [curve] [mnist-bbb] [mnist-reports] [sweep] [comparison] [lenet5] [wide]
# (default: all but lenet5 — the Bayesian LeNet-5s and their MC-dropout and deterministic counterparts, ~1 h — and
# wide, the paper's 784-1200-1200-10 network and its 98%-pruned file, ~30 min)
# MNIST comes from $BNN_MNIST_DIR, else ../shared/data/mnist. Nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${BNN_MNIST_DIR:-../shared/data/mnist}
cargo build --release -q --bin bnn
BNN=target/release/bnn
mkdir -p runs   # checkpoints and intermediate files; models/ gets only what ships
stages=${*:-curve mnist-bbb mnist-reports sweep comparison}
has() { [[ " $stages " == *" $1 "* ]]; }

if has curve; then
  $BNN train --force --recipe models/curve-bbb.toml --out models/curve-bbb.safetensors \
    --checkpoint runs/curve-bbb.ckpt
  $BNN eval --model models/curve-bbb.safetensors --out-dir models/reports/curve-bbb
fi
if has mnist-bbb; then
  # The dense model (images moved in training, the KL term weighted 0.05: a tempered posterior; a N(0, 1) prior
  # on raw pixels) and the pruned file's parent (images as they are, the full ELBO: its posterior prunes far
  # better; models/README.md).
  for m in mnist-bbb mnist-bbb-sparse; do
    $BNN train --force --recipe models/$m.toml --data "$DATA" --out models/$m.safetensors --checkpoint runs/$m.ckpt
  done
fi
if has mnist-reports; then
  # Pruned by SNR, then calibrated on the 10,000 validation images the recipe held out of training.
  $BNN prune --in models/mnist-bbb-sparse.safetensors --out runs/mnist-bbb-snr95-f16.safetensors \
    --sparsity 0.95 --criterion snr --dtype f16
  $BNN calibrate --model runs/mnist-bbb-snr95-f16.safetensors --out models/mnist-bbb-snr95-f16.safetensors \
    --data "$DATA" --levels 0.9,0.95,0.99 --abstain-coverage 0.95
  for m in mnist-bbb mnist-bbb-sparse mnist-bbb-snr95-f16; do
    $BNN eval --model models/$m.safetensors --data "$DATA" --out-dir models/reports/$m
  done
fi
if has sweep; then
  # The pruning benchmark runs on the model the shipped pruned file comes from.
  $BNN prune-sweep --model models/mnist-bbb-sparse.safetensors --data "$DATA" --out-dir benches/pruning
fi
if has comparison; then
  for kind in mc-dropout deterministic; do
    $BNN train --force --recipe models/mnist-$kind.toml --data "$DATA" --out runs/mnist-$kind.safetensors
    $BNN eval --model runs/mnist-$kind.safetensors --data "$DATA" --out-dir models/reports/mnist-$kind
  done
  # BBB against MC dropout on the same images, each difference with its paired test.
  $BNN compare --model models/mnist-bbb.safetensors --against runs/mnist-mc-dropout.safetensors --data "$DATA" \
    > models/reports/mnist-bbb/compare-mc-dropout.md
fi
if has lenet5; then
  # Every recipe runs to its own validation minimum (BBB's 60 epochs; MC dropout and deterministic stop 10 epochs
  # after theirs — sessions 13-20 capped them at 20, session 27 let them converge).
  $BNN train --force --recipe models/mnist-bbb-lenet5.toml --data "$DATA" --out runs/mnist-bbb-lenet5.safetensors
  # Calibrated on the 10,000 validation images the recipe held out (pruning drops the calibration).
  $BNN calibrate --model runs/mnist-bbb-lenet5.safetensors --out models/mnist-bbb-lenet5.safetensors \
    --data "$DATA" --levels 0.9,0.95,0.99 --abstain-coverage 0.95
  # The pruned file comes from the wider-spike recipe (its prior chosen by the pruned model's validation error),
  # calibrated like the dense model.
  $BNN train --force --recipe models/mnist-bbb-lenet5-sparse.toml --data "$DATA" \
    --out runs/mnist-bbb-lenet5-sparse.safetensors
  $BNN prune --in runs/mnist-bbb-lenet5-sparse.safetensors --out runs/mnist-bbb-lenet5-snr95-f16.safetensors \
    --sparsity 0.95 --criterion snr --dtype f16
  $BNN calibrate --model runs/mnist-bbb-lenet5-snr95-f16.safetensors \
    --out models/mnist-bbb-lenet5-snr95-f16.safetensors --data "$DATA" --levels 0.9,0.95,0.99 --abstain-coverage 0.95
  # The fast pruned file: the same parent and one SNR threshold, the two kernels capped at 30% and 12% of their
  # taps (a quarter of the dense model's work), the survivors fine-tuned for 8 epochs (seeded: the same bytes).
  $BNN prune --in runs/mnist-bbb-lenet5-sparse.safetensors --out runs/mnist-bbb-lenet5-snr95-fast-uncal.safetensors \
    --sparsity 0.95 --criterion snr --dtype f16 --max-kept-fraction 0=0.3 --max-kept-fraction 3=0.12 \
    --finetune-epochs 8 --data "$DATA"
  $BNN calibrate --model runs/mnist-bbb-lenet5-snr95-fast-uncal.safetensors \
    --out models/mnist-bbb-lenet5-snr95-fast-f16.safetensors --data "$DATA" --levels 0.9,0.95,0.99 \
    --abstain-coverage 0.95
  for m in mnist-bbb-lenet5 mnist-bbb-lenet5-snr95-f16 mnist-bbb-lenet5-snr95-fast-f16; do
    $BNN eval --model models/$m.safetensors --data "$DATA" --out-dir models/reports/$m
  done
  for kind in mc-dropout deterministic; do
    $BNN train --force --recipe models/mnist-$kind-lenet5.toml --data "$DATA" \
      --out runs/mnist-$kind-lenet5.safetensors
    $BNN eval --model runs/mnist-$kind-lenet5.safetensors --data "$DATA" --out-dir models/reports/mnist-$kind-lenet5
  done
  $BNN compare --model models/mnist-bbb-lenet5.safetensors --against runs/mnist-mc-dropout-lenet5.safetensors \
    --data "$DATA" > models/reports/mnist-bbb-lenet5/compare-mc-dropout.md
fi
if has wide; then
  $BNN train --force --recipe models/mnist-bbb-1200.toml --data "$DATA" --out runs/mnist-bbb-1200.safetensors
  $BNN prune-sweep --model runs/mnist-bbb-1200.safetensors --data "$DATA" --sparsities 0,0.95,0.98,0.99 \
    --criteria snr,magnitude --out-dir models/reports/mnist-bbb-1200
  $BNN prune --in runs/mnist-bbb-1200.safetensors --out runs/mnist-bbb-1200-snr98-f16.safetensors \
    --sparsity 0.98 --criterion snr --dtype f16
  $BNN calibrate --model runs/mnist-bbb-1200-snr98-f16.safetensors --out models/mnist-bbb-1200-snr98-f16.safetensors \
    --data "$DATA" --levels 0.9,0.95,0.99 --abstain-coverage 0.95
  $BNN eval --model models/mnist-bbb-1200-snr98-f16.safetensors --data "$DATA" \
    --out-dir models/reports/mnist-bbb-1200-snr98-f16
  $BNN compare --model models/mnist-bbb-1200-snr98-f16.safetensors --against models/mnist-bbb-snr95-f16.safetensors \
    --data "$DATA" > models/reports/mnist-bbb-1200-snr98-f16/compare-snr95-f16.md
fi
rm -f models/*.ckpt runs/*.ckpt
