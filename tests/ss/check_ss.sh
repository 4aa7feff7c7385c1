#!/bin/sh
# `portsim ss` against live `ss` output (tests/live/ss_tan.txt, recorded by
# tools/probes/tw_refusals_ss.py on 6.18.44 with iproute2 6.1): the table of probe case CASE,
# block N (1: `ss -tan`, 2: `ss -tan state time-wait`), must equal `portsim ss ARGS…` — the
# header exactly, the rows as a set (ehash bucket order is not modelled), trailing blanks aside.
# usage: check_ss.sh PORTSIM WORKDIR CASE N ARGS…
set -eu
portsim=$1 workdir=$2 case=$3 n=$4
shift 4
cd "$workdir"
want=$(awk -v c="## unshare -n python3 tools/probes/tw_refusals_ss.py $case" -v n="$n" '
  $0 == c { on = 1; next } /^## / { on = 0 }
  on && /Recv-Q Send-Q/ { b++ } on && b == n && NF == 0 { b++ } on && b == n' tests/live/ss_tan.txt |
  sed 's/[[:space:]]*$//')
got=$("$portsim" ss "$@" | sed 's/[[:space:]]*$//')
norm() { { printf '%s\n' "$1" | head -n 1; printf '%s\n' "$1" | tail -n +2 | sort; }; }
if [ "$(norm "$want")" != "$(norm "$got")" ]; then
  printf 'live:\n%s\nportsim ss %s:\n%s\n' "$want" "$*" "$got"
  exit 1
fi
