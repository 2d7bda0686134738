#!/usr/bin/env bash
# Runs every test of the workspace: unit tests beside the code and the
# end-to-end tests in tests/ that start real `kmon` processes.
# Installs any system package a test needs when it is missing: promtool
# (from Debian's `prometheus` package) checks /metrics and the alert rules;
# node and npm (Debian's `nodejs` and `npm`) install TypeScript and
# @grafana/schema, pinned in dashboards/schema-check/package-lock.json, which
# type-check the Grafana dashboards (npm's cache is wherever npm puts it);
# tmux, in which the TUI tests run `kmon tui` in a real terminal.
# The build itself needs no protoc and no system libraries.
set -euo pipefail
cd "$(dirname "$0")"
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if ! command -v promtool >/dev/null 2>&1; then
  echo "test.sh: installing Debian's prometheus package (for promtool)" >&2
  apt_install prometheus
fi
if ! command -v tmux >/dev/null 2>&1; then
  echo "test.sh: installing Debian's tmux package (the TUI runs in a real terminal in tests)" >&2
  apt_install tmux
fi
schema_check=dashboards/schema-check
if [ ! -d "$schema_check/node_modules" ] \
  || [ "$schema_check/package-lock.json" -nt "$schema_check/node_modules/.package-lock.json" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "test.sh: installing Debian's nodejs and npm packages (for the dashboards' type check)" >&2
    apt_install nodejs npm
  fi
  echo "test.sh: npm ci in $schema_check (TypeScript and @grafana/schema)" >&2
  (cd "$schema_check" && npm ci --no-audit --no-fund)
fi
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --test-threads "${KMON_TEST_THREADS:-2}"
