#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (Catch2 units, scenarios, bad-input
# goldens, determinism, the fuzz target), then all again with ASan+UBSan. The README's test
# command and .ci/run both call this.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2 -LE oracle
# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer (clang), where the
# fuzz target is a libFuzzer binary that fuzzes for 30 s (README "Hostile input and fuzzing").
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 -DPORTSIM_FUZZ=ON >/dev/null
cmake --build build-asan -j2
ctest --test-dir build-asan --output-on-failure -j2 -LE oracle
