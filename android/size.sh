#!/usr/bin/env bash
# Size budget of the library apps ship: builds libbnn_android.so with the `mobile` profile (size-optimised,
# stripped, fat LTO, unwinding kept for the bindings' panic guards) for aarch64 Linux — the stand-in for Android's
# arm64-v8a, cross-linked with Debian's gcc-aarch64-linux-gnu with the 16 KiB page alignment `.cargo/config.toml`
# gives the Android targets (GNU ld's aarch64 default, 64 KiB, would pad the file by up to a page) — prints its
# size and fails above the budget.
# Usage: bash android/size.sh [budget-bytes]   (CI runs it; see android/README.md, "Size")
set -euo pipefail
cd "$(dirname "$0")/.."

budget=${1:-992000}
target=aarch64-unknown-linux-gnu
linker=aarch64-linux-gnu-gcc
command -v "$linker" >/dev/null || { echo "size.sh: $linker not found (apt-get install gcc-aarch64-linux-gnu)" >&2; exit 2; }
rustup target add "$target" >/dev/null 2>&1 || true

CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$linker \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=-Wl,-z,max-page-size=16384" \
  cargo build --quiet --profile mobile -p bnn-android --target "$target"
lib="target/$target/mobile/libbnn_android.so"
size=$(stat -c %s "$lib")
echo "$lib: $size bytes (budget $budget)"
if (( size > budget )); then
  echo "size.sh: the library grew past its budget of $budget bytes" >&2
  exit 1
fi
