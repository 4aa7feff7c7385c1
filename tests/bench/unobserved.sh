#!/usr/bin/env bash
# Unobserved runs (ctest trace-hash.unobserved, issue 18): a run without any observer hands a
# segment to or from an external endpoint on an instant, lossless path straight to its receiver
# (wire.cc, Runner::Impl::quiet_instant). Runs SCENARIO twice, without and with a trace, printing
# the socket tables (ss -tan) at several instants and the run report, and requires both outputs
# to be the same apart from the wall-time line.
# usage: unobserved.sh PORTSIM SCENARIO
set -euo pipefail
portsim=$1 scenario=$2
at=(--ss-at 100ms --ss-at 500ms --ss-at 1200ms --ss-at 2010ms --ss-at 3s --ss-at 70s)
plain=$("$portsim" run "$scenario" "${at[@]}" | grep -v '^  wall time')
traced=$("$portsim" run "$scenario" "${at[@]}" --trace /dev/null | grep -v '^  wall time')
if [[ $plain != "$traced" ]]; then
  diff <(echo "$plain") <(echo "$traced") | head -20 >&2
  echo "$scenario: the run without observers differs from the traced run" >&2
  exit 1
fi
echo "$scenario: same sockets and report with and without a trace ($(echo "$plain" | wc -l) lines)"
