#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (Catch2 units, scenarios, bad-input
# goldens, determinism, and the `slurm` label: sharded sweeps on a single-node Slurm that the
# tests bring up and down themselves, and with GNU parallel). The README's test command and
# .ci/run both call this. Only the `oracle` label (the live kernel, ~18 min) is left out.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
# Whatever happens, leave no Slurm daemon behind (the ctest fixture stops it too).
# (Unless another test run on this machine still uses it: tests/slurm/cluster_sweep_test.sh.)
trap 'tests/slurm/cluster_sweep_test.sh down >/dev/null 2>&1 || true' EXIT
ctest --test-dir build --output-on-failure -j2 -LE oracle
