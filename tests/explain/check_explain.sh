#!/bin/sh
# Runs `portsim run <args>` and checks its --explain output (stderr) against EXPECT: line 1
# "args: …" (paths relative to the source tree), an optional line "exact" (the whole output
# must equal the rest of the file), else every following line must appear, in this order, as
# a whole line of the output.
# usage: check_explain.sh PORTSIM EXPECT WORKDIR
set -eu
portsim=$1 expect=$2 workdir=$3
args=$(head -n 1 "$expect" | sed 's/^args: //')
got=$(mktemp) want=$(mktemp)
trap 'rm -f "$got" "$want"' EXIT
cd "$workdir"
# shellcheck disable=SC2086
if ! "$portsim" run $args 2>"$got" >/dev/null; then
  echo "portsim run $args failed:"; cat "$got"; exit 1
fi
tail -n +2 "$expect" >"$want"
if [ "$(head -n 1 "$want")" = exact ]; then
  tail -n +2 "$expect" | tail -n +2 | diff -u - "$got" && exit 0
  echo "explain output differs (expected vs got above)"; exit 1
fi
awk 'BEGIN { i = 0; n = 0 } NR == FNR { want[n++] = $0; next }
     i < n && $0 == want[i] { i++ }
     END { if (i < n) { print "missing (in this order): " want[i]; exit 1 } }' "$want" "$got"
