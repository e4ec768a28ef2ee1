#!/usr/bin/env bash
# Runs every pgxc test on a fresh Debian machine: installs what the tests need, checks lints, then runs the
# normal-mode suites, the real-process tests and (through the launcher in sim/tests/launcher.rs) the madsim
# simulation suites. This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
# pgbench (and the PostgreSQL 15 server the benchmarks compare with) ship in Debian's server package.
command -v pgbench >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"; \
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${need_apt[@]}"; fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test --features sim"
cargo test --features sim
