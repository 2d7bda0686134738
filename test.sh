#!/usr/bin/env bash
# Runs every test of the workspace: unit tests beside the code and the
# end-to-end tests in tests/ that start real `kmon` processes.
# Installs any system package a test needs when it is missing: promtool
# (from Debian's `prometheus` package) checks /metrics and the alert rules,
# amtool (Debian's `prometheus-alertmanager`) the Alertmanager example;
# node and npm (Debian's `nodejs` and `npm`) install TypeScript and
# @grafana/schema, pinned in dashboards/schema-check/package-lock.json, which
# type-check the Grafana dashboards (npm's cache is wherever npm puts it);
# tmux, in which the TUI tests run `kmon tui` in a real terminal; kcat
# (Debian's) and, in a virtualenv outside the clone (KMON_TEST_VENV, default
# ~/.cache/kmon-test-venv; pip installs again when
# tests/kafka_clients/requirements.txt is newer than the venv's copy of it),
# the pinned confluent-kafka and kafka-python from PyPI: the third-party
# Kafka clients the Kafka listener is tested with, found by the tests through
# KMON_TEST_PYTHON.
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
if ! command -v amtool >/dev/null 2>&1; then
  echo "test.sh: installing Debian's prometheus-alertmanager package (for amtool)" >&2
  apt_install prometheus-alertmanager
fi
if ! command -v tmux >/dev/null 2>&1; then
  echo "test.sh: installing Debian's tmux package (the TUI runs in a real terminal in tests)" >&2
  apt_install tmux
fi
if ! command -v nft >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
  echo "test.sh: installing Debian's nftables and iproute2 packages (chaos_e2e cuts links between network namespaces)" >&2
  apt_install nftables iproute2
fi
if ! command -v kcat >/dev/null 2>&1; then
  echo "test.sh: installing Debian's kcat package (a third-party Kafka client in tests)" >&2
  apt_install kcat
fi
venv="${KMON_TEST_VENV:-$HOME/.cache/kmon-test-venv}"
requirements=tests/kafka_clients/requirements.txt
if [ ! -x "$venv/bin/python" ] || [ "$requirements" -nt "$venv/kmon-requirements.txt" ]; then
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "test.sh: installing Debian's python3 and python3-venv packages (for the Python Kafka clients)" >&2
    apt_install python3 python3-venv
  fi
  echo "test.sh: pip install -r $requirements into $venv" >&2
  if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  # The stamp: what is installed, newer than the requirements it came from.
  cp "$requirements" "$venv/kmon-requirements.txt"
fi
export KMON_TEST_PYTHON="$venv/bin/python"
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
