#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (Catch2 units, scenarios, bad-input
# goldens, determinism). The README's test command and .ci/run both call this.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2 -LE oracle
