#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (Catch2 units, scenarios, bad-input
# goldens, determinism, the fuzz target, and the `slurm` label: sharded sweeps on a single-node
# Slurm that the tests bring up and down themselves, and with GNU parallel; the VM oracle's frozen
# fixtures and exact-mode fixtures, label vm-fixtures), then all but the slurm and vm-fixtures
# labels again with ASan+UBSan. build/portsim is the profile-guided build (CMakeLists.txt,
# PORTSIM_PGO): every CLI test above runs it, trace-hash included. The README's test command
# and .ci/run both call this. Left out:
# the `oracle` label (the live kernel, ~18 min) and the VM oracle's `oracle-vm` / `oracle-vm-smoke`
# / `oracle-vm-exact` labels (qemu, tools/install-deps.sh --vm); `-LE oracle` is a regular
# expression and excludes all four.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
# Whatever happens, leave no Slurm daemon behind (the ctest fixture stops it too).
# (Unless another test run on this machine still uses it: tests/slurm/cluster_sweep_test.sh.)
trap 'tests/slurm/cluster_sweep_test.sh down >/dev/null 2>&1 || true' EXIT
ctest --test-dir build --output-on-failure -j2 -LE oracle
# The suite again under AddressSanitizer + UndefinedBehaviorSanitizer (clang), where the fuzz
# target is a libFuzzer binary that fuzzes for 30 s (README "Fuzzing and sanitizers"). The slurm
# label (the cluster recipes, already run above) is left out here.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 -DPORTSIM_FUZZ=ON >/dev/null
cmake --build build-asan -j2
ctest --test-dir build-asan --output-on-failure -j2 -LE 'oracle|slurm|vm-fixtures'
