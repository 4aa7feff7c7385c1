#!/usr/bin/env bash
# Installs what is missing, builds portsim, and runs the default scenario with a trace.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target portsim
./build/portsim run scenarios/exhaust-one-destination.json --trace build/exhaust-one-destination.jsonl
echo "trace: build/exhaust-one-destination.jsonl"
