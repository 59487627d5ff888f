#!/usr/bin/env bash
# Runs every test of the workspace: formatting, lints, unit, property and
# end-to-end tests (real QUIC on loopback), and the loadgen smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser test's npm package (.ci/run also installs Chromium); without
# them that test is skipped loudly, or fails under CI=true.
if [ ! -d server/tests/browser/node_modules ] && command -v npm >/dev/null; then
  (cd server/tests/browser && npm ci --no-audit --no-fund --loglevel=error) || echo "warning: npm ci for the browser test failed"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (binaries the end-to-end tests start)"
cargo build --workspace --bins --locked
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
