#!/usr/bin/env bash
# Runs the runtime's tests on aarch64 (the phones' arm64-v8a) under user-mode QEMU: the NEON kernels must give
# the bits of the fused portable ones (kernels::tests, predict::tests), and every other test must hold there too.
#   bash runtime/aarch64.sh [extra cargo test arguments]
# Needs: rustup target add aarch64-unknown-linux-gnu; Debian's gcc-aarch64-linux-gnu and qemu-user (CI installs
# them). Timings under emulation mean nothing: run the benchmarks on a device.
# All of the runtime's tests: unit, integration and doc tests (about a minute here, build included).
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v "$tool" >/dev/null || { echo "aarch64.sh: $tool not found (apt-get install gcc-aarch64-linux-gnu qemu-user)" >&2; exit 2; }
done
rustup target add "$target" >/dev/null 2>&1 || true
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
cargo test -p bnn-runtime --target "$target" "$@"
