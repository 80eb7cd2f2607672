#!/usr/bin/env bash
# The whole test suite, as README.md shows it: setup, format, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# End-to-end tests run the real binary, so build it first.
cargo build --locked --bin gateway --bin loadtest
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
