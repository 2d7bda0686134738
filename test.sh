#!/usr/bin/env bash
# Runs every test of the workspace: unit tests beside the code and the
# end-to-end tests in tests/ that start real `kmon` processes.
# Installs any system package a test needs when it is missing: promtool
# (from Debian's `prometheus` package) checks /metrics and the alert rules.
# The build itself needs no protoc and no system libraries.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null 2>&1; then
  echo "test.sh: installing Debian's prometheus package (for promtool)" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --test-threads "${KMON_TEST_THREADS:-2}"
