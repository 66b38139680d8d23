#!/usr/bin/env bash
# Fuzzes the runtime's loader and predictor with cargo-fuzz (libFuzzer).
#   bash runtime/fuzz/run.sh [SECONDS_PER_TARGET]     (default 600)
# Needs nightly and cargo-fuzz: rustup toolchain install nightly && cargo install cargo-fuzz.
# The committed seed corpus is in corpus/<target>/; new inputs go to a scratch copy, so the repo stays small.
# A crash leaves its input in artifacts/<target>/; reproduce it with
#   cargo +nightly fuzz run <target> artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
for target in load_model predict_input; do
  scratch="$(mktemp -d)"
  cp corpus/"$target"/* "$scratch"/
  echo "== $target for ${seconds}s"
  cargo +nightly fuzz run "$target" "$scratch" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
    -malloc_limit_mb=512 -print_final_stats=1 2>&1 | tail -25
  echo "corpus after the run: $(ls "$scratch" | wc -l) inputs"
  rm -rf "$scratch"
done
