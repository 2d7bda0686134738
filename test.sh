#!/usr/bin/env bash
# Runs every test of the workspace: unit tests beside the code and the
# end-to-end tests in tests/ that start real `kmon` processes.
# Installs any system package a test needs when it is missing (none yet:
# the build needs no protoc and no system libraries).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --test-threads "${KMON_TEST_THREADS:-2}"
