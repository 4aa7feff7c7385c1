#!/usr/bin/env bash
# Trace hash (ctest label trace-hash, issue 18): runs SCENARIO with --trace-level LEVEL, streams the
# trace through sha256sum (no file on disk) and compares it with EXPECTED, recorded from main
# b4e6d1c before the hot-path work began. Any change of a port, a perturb value, a candidate
# count, a packet or a state in the trace changes the hash.
# usage: trace_hash.sh PORTSIM SCENARIO LEVEL EXPECTED_SHA256
set -euo pipefail
portsim=$1 scenario=$2 level=$3 expected=$4
got=$("$portsim" run --quiet "$scenario" --trace-level "$level" --trace /dev/stdout | sha256sum | cut -d' ' -f1)
if [[ $got != "$expected" ]]; then
  echo "trace of $scenario (level $level): sha256 $got, expected $expected (main b4e6d1c)" >&2
  exit 1
fi
echo "trace of $scenario (level $level): sha256 $got as on main b4e6d1c"
