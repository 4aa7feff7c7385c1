#!/usr/bin/env bash
# portsim sweep / merge from the command line: Slurm's variables as defaults, --list-runs,
# --runs, exit statuses (1 failed expectation, 2 bad input with one line and no file written),
# progress only on a terminal, shards merged byte for byte. Usage: cli_test.sh PORTSIM
set -uo pipefail
P=$(realpath "${1:?portsim}")
HERE=$(cd "$(dirname "$0")" && pwd)
SC=$HERE/small-range.json
W=$(mktemp -d /tmp/portsim-sweep-cli.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W"
unset SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_COUNT SLURM_CPUS_PER_TASK
V=(--vary /workloads/0/rate=20,40,80 --vary /machines/0/sysctls/net.ipv4.tcp_tw_reuse=0,1 --seeds 2)
fails=0
check() {  # check NAME EXPECTED ACTUAL
  if [[ $2 == "$3" ]]; then
    echo "ok   $1"
  else
    echo "FAIL $1"
    echo "  expected: $2"
    echo "  got:      $3"
    fails=$((fails + 1))
  fi
}

# --list-runs: 3 rates × 2 tw_reuse × 2 seeds; run r has seed 7 + r mod 2 (scenario seed 7).
out=$("$P" sweep "$SC" "${V[@]}" --list-runs)
check "list-runs: 12 runs and a header" 13 "$(wc -l <<<"$out")"
check "list-runs: run 5" "5,40,0,8" "$(sed -n 7p <<<"$out")"
# In a Slurm array task, --shard defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT.
out=$(SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 "$P" sweep "$SC" "${V[@]}" --list-runs | cut -d, -f1 | tail -n +2 | tr '\n' ' ')
check "Slurm task 1 of 3 runs 1,4,7,10" "1 4 7 10 " "$out"
out=$(SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 "$P" sweep "$SC" "${V[@]}" --list-runs --shard 0/4 | cut -d, -f1 | tail -n +2 | tr '\n' ' ')
check "--shard overrides Slurm's variables" "0 4 8 " "$out"
out=$("$P" sweep "$SC" "${V[@]}" --list-runs --runs 3,7,9-11 --shard 1/2 | cut -d, -f1 | tail -n +2 | tr '\n' ' ')
check "--runs with --shard" "3 7 9 11 " "$out"
err=$(SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_COUNT=4 "$P" sweep "$SC" "${V[@]}" --out x.shard 2>&1); rc=$?
check "task id past the count: exit 2" 2 "$rc"
check "task id past the count: message" "portsim sweep: SLURM_ARRAY_TASK_ID=4 is not below SLURM_ARRAY_TASK_COUNT=4: submit the array as --array=0-3 (or give --shard I/N)" "$err"
err=$(SLURM_CPUS_PER_TASK=two "$P" sweep "$SC" "${V[@]}" --list-runs 2>&1 >/dev/null); rc=$?
check "SLURM_CPUS_PER_TASK is read for --jobs" "2|portsim sweep: SLURM_CPUS_PER_TASK='two': expected a number" "$rc|$err"
err=$("$P" sweep "$SC" "${V[@]}" --runs 3,12 --out x.shard 2>&1); rc=$?
check "--runs past the end" "2|--runs: run 12 does not exist (the sweep has 12 runs: 0-11)" "$rc|$err"
err=$("$P" sweep "$SC" "${V[@]}" --shard 3/3 2>&1); rc=$?
check "--shard 3/3" "2|portsim sweep: --shard '3/3': expected I/N with 0 <= I < N, e.g. 0/4" "$rc|$err"
[[ ! -e x.shard && -z $(ls) ]]; check "bad input leaves no file" 0 $?

# Shards through the command line equal one sweep; nothing on stderr when it is not a terminal.
"$P" sweep "$SC" "${V[@]}" --timeseries 5s --timeseries-out local_ts.csv --out local.csv --out local.json 2>stderr.txt
check "sweep: exit 0" 0 $?
check "no progress when stderr is not a terminal" "" "$(cat stderr.txt)"
for i in 0 1 2; do "$P" sweep "$SC" "${V[@]}" --timeseries 5s --shard $i/3 --out s$i.shard || fails=$((fails + 1)); done
"$P" merge -o m.csv -o m.json --timeseries-out m_ts.csv s2.shard s1.shard s0.shard
check "merge: exit 0" 0 $?
[[ -s local.csv && -s m.csv ]] && cmp -s <(sed 's/,[^,]*$//' local.csv) <(sed 's/,[^,]*$//' m.csv); check "merged CSV = local (wall_s aside)" 0 $?
[[ -s local.json && -s m.json ]] && cmp -s <(grep -v '"wall_s":' local.json) <(grep -v '"wall_s":' m.json); check "merged JSON = local (wall_s aside)" 0 $?
[[ -s local_ts.csv ]] && cmp -s local_ts.csv m_ts.csv; check "merged time series = local" 0 $?
check "no temporary files left" "" "$(ls | grep -E '\.tmp$' || true)"

# merge errors: exit 2, one line, nothing written.
err=$("$P" merge -o bad.csv s0.shard s2.shard 2>&1); rc=$?
check "missing runs" "2|portsim merge: runs 1, 4, 7 and 10 are missing from the shards (the sweep has 12 runs, 0-11); rerun with 'portsim sweep … --runs 1,4,7,10 --out FILE.shard' and merge again" "$rc|$err"
err=$("$P" merge -o bad.csv s0.shard s1.shard s2.shard s1.shard 2>&1); rc=$?
check "duplicated run" "2|portsim merge: run 1 appears twice: in s1.shard and in s1.shard" "$rc|$err"
# Another sweep: the same scenario and variations with 3 seeds.
"$P" sweep "$SC" --vary /workloads/0/rate=20,40,80 --vary /machines/0/sysctls/net.ipv4.tcp_tw_reuse=0,1 --seeds 3 \
  --timeseries 5s --shard 0/3 --out other.shard
err=$("$P" merge -o bad.csv s0.shard s1.shard s2.shard other.shard 2>&1); rc=$?
check "foreign shard: exit 2" 2 "$rc"
[[ $err == "portsim merge: other.shard: belongs to another sweep than s0.shard (fingerprint "* ]]; check "foreign shard: message" 0 $?
[[ -e s0.shard && ! -e bad.csv ]]; check "failed merges write nothing" 0 $?
err=$("$P" merge -o bad.csv local.csv 2>&1); rc=$?
check "not a shard" "2|portsim merge: local.csv: not a portsim shard (expected what 'portsim sweep … --shard I/N --out FILE.shard' writes): invalid JSON" "$rc|$err"
mkdir -p dir.shard
err=$("$P" sweep "$SC" --runs 0 --out dir.shard 2>&1); rc=$?
check "unwritable shard" "2|portsim sweep: cannot write dir.shard" "$rc|$err"
check "no half shard left" "" "$(ls | grep -E 'dir\.shard\..*tmp|dir\.shard\.tmp' || true)"

# A failed expectation: exit 1, the run named on stderr, the column set, rows still written.
sed 's/"workloads"/"timeline": [{"t": "29s", "host": "client", "op": "connect", "sock": "probe", "to": "10.0.0.2:80", "opts": {"IP_LOCAL_PORT_RANGE": "40000-40999"}, "expect": {"ret": 0}}],\n  "workloads"/' "$SC" >check.json
"$P" sweep check.json --vary /workloads/0/rate=20,80 --out c.csv 2>c.err; rc=$?
check "failed expectation: exit 1" 1 "$rc"
check "failed expectation: the run is named" "portsim sweep: run 1 (/workloads/0/rate=80, seed 7): 1 expectation failed; first: check.json [with /workloads/0/rate=80]: \$.timeline[0] (connect probe at 29s): expected OK, got EADDRNOTAVAIL" "$(cat c.err)"
check "expectations_failed column" "0 1 " "$(awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="expectations_failed") c=i} NR>1{printf "%s ", $c}' c.csv)"
"$P" sweep check.json --vary /workloads/0/rate=20,80 --shard 0/1 --out c.shard 2>/dev/null
"$P" merge -o cm.csv c.shard 2>cm.err; rc=$?
check "merge of a failed expectation: exit 1" 1 "$rc"
check "merge names the run" "portsim merge: run 1 (/workloads/0/rate=80, seed 7)" "$(head -c 51 cm.err)"

# Progress on a terminal (script(1) gives the sweep one).
if command -v script >/dev/null; then
  script -qec "$P sweep $SC --vary /workloads/0/rate=20,40 --out t.csv" /dev/null >tty.txt 2>&1
  grep -q 'portsim sweep: 2/2 runs, .* elapsed, ~0s left' tty.txt; check "progress on a terminal" 0 $?
fi

echo "$fails failed"
((fails == 0))
