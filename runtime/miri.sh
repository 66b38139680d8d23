#!/usr/bin/env bash
# Runs the runtime's tests under Miri (undefined behaviour, out-of-bounds, data races in the threaded tests).
#   bash runtime/miri.sh
# Needs: rustup toolchain install nightly && rustup component add --toolchain nightly miri rust-src
# The subset: every unit test, and the integration tests that finish in minutes under Miri (which is ~1000x
# slower than native). Left out: closed_form, samplers_agree, identities (10^4+ Monte-Carlo samples each),
# allocations (200-sample predictions on four models: over 20 minutes),
# loader_rejects (every bit flip of a file: thousands of loads). Statistical unit tests shrink their draws under
# cfg(miri); the KS test is ignored there. The instruction-set test in `predict/mod.rs` leaves shared weights to
# `tests/parallel.rs` under Miri and draws each portable reference once (about 4 minutes there, against over 15
# when it ran everything; benches/README.md, session 32). Miri's float non-determinism is turned off: several
# tests check exact identities (identical samples give zero mutual information).
set -euo pipefail
cd "$(dirname "$0")/.."
export MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-deterministic-floats"
export PROPTEST_CASES=4
cargo +nightly miri test -p bnn-runtime --lib --test concurrency --test prediction_errors --test reproducibility \
  --test roundtrip --test parallel --test dropout
