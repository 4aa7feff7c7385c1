#!/usr/bin/env bash
# Hostile command lines and environments (issue 17): each must end with the documented exit
# status and one line naming the file and the OS error, and leave no file behind.
# usage: hostile_cli.sh PORTSIM SOURCE_DIR SCRATCH_DIR
set -uo pipefail
P=$1 SRC=$2 TMP=$3
mkdir -p "$TMP" && cd "$TMP" || exit 1
S=$SRC/scenarios/three-destinations.json
LONG=$SRC/tests/bench/exhaust-100-destinations.json   # a few seconds of work: time to interrupt
fails=0
expect() {  # NAME WANT_RC GOT_RC STDERR_FILE REGEX
  local err; err=$(cat "$4")
  if [[ $3 != "$2" ]] || ! grep -Eq -- "$5" "$4" || (( $(wc -l <"$4") != 1 )); then
    echo "FAIL $1: exit $3 (want $2), stderr: $err"; fails=$((fails + 1))
  else
    echo "ok   $1: $err"
  fi
}
no_leftovers() {  # NAME FILE
  if compgen -G "$2*" >/dev/null; then echo "FAIL $1: left behind: $(ls "$2"*)"; fails=$((fails + 1)); fi
}

"$P" run "$S" --seed -1 2>e.txt >/dev/null; expect seed-negative 2 $? e.txt "--seed: expected an integer in \[0, 18446744073709551615\], got '-1'"
"$P" run "$S" --trace-sample 1x 2>e.txt >/dev/null; expect trace-sample-junk 2 $? e.txt "--trace-sample: expected an integer"

"$P" run "$S" --quiet --trace /dev/full 2>e.txt; expect trace-dev-full 2 $? e.txt "^/dev/full: cannot write the trace: No space left on device$"

(ulimit -f 8; exec "$P" run "$S" --quiet --trace "$TMP/fsize.jsonl") 2>e.txt
expect trace-ulimit-f 2 $? e.txt "fsize.jsonl: cannot write the trace: File too large$"
no_leftovers trace-ulimit-f "$TMP/fsize.jsonl"

# stdout a pipe whose reader is gone, SIGPIPE ignored (python keeps SIG_IGN for the child).
python3 -c '
import os, subprocess, sys
r, w = os.pipe(); os.close(r)
sys.exit(subprocess.run(sys.argv[1:], stdout=w, stderr=open("e.txt", "w"), restore_signals=False).returncode)
' "$P" run "$S" --quiet --trace -
expect trace-epipe 2 $? e.txt "^-: cannot write the trace: Broken pipe$"

set -m  # job control: a background job keeps SIGINT (without it, bash ignores SIGINT there)
for sig in INT TERM; do
  rm -f "$TMP/sig.jsonl"*
  "$P" run "$LONG" --quiet --trace-level calls --trace "$TMP/sig.jsonl" 2>e.txt >/dev/null &
  pid=$!
  for _ in $(seq 100); do [[ -e $TMP/sig.jsonl.tmp ]] && break; sleep 0.05; done
  kill -s $sig $pid; wait $pid; rc=$?
  want=$([[ $sig == INT ]] && echo 130 || echo 143)
  expect "sig$sig" $want $rc e.txt "^portsim: (interrupted|terminated) \(SIG$sig\)$"
  no_leftovers "sig$sig" "$TMP/sig.jsonl"
done
set +m

"$P" sweep "$S" --vary /seed=1e400 2>e.txt >/dev/null
expect sweep-vary-1e400 2 $? e.txt '\$\.seed: expected an integer in \[0, 18446744073709551615\], got "1e400"'

"$P" check "$SRC/tests/errors/too-many-machines.json" 2>e.txt >/dev/null; expect check-limits 2 $? e.txt "more than the limit of 1024"
"$P" check --no-limits "$SRC/tests/errors/too-many-machines.json" >/dev/null 2>e.txt; rc=$?
[[ $rc == 0 ]] || { echo "FAIL no-limits: exit $rc, $(cat e.txt)"; fails=$((fails + 1)); }

truncate -s 65M big.json; "$P" check big.json 2>e.txt >/dev/null; expect file-too-large 2 $? e.txt "big.json: the scenario file is larger than 64 MiB$"; rm -f big.json
"$P" check /nonexistent.json 2>e.txt >/dev/null; expect file-missing 2 $? e.txt "^/nonexistent.json: cannot open the scenario file: No such file or directory$"

# Name lookup is linear: 30 000 calls, each naming its own "{i}" pattern, then closing it.
python3 - >names.json <<'PY'
import json
n = 30000
tl = [{"t": "0s", "op": "socket", "host": "h", "sock": "s%d_{i}" % i, "repeat": {"count": 1}} for i in range(n)]
tl += [{"t": "1s", "op": "close", "sock": "s%d_0" % i} for i in range(n)]
print(json.dumps({"machines": [{"name": "h"}], "timeline": tl}))
PY
start=$(date +%s%N); timeout 60 "$P" run --quiet names.json 2>e.txt; rc=$?; ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [[ $rc != 0 ]] || (( ms > 20000 )); then echo "FAIL names-linear: exit $rc after $ms ms"; fails=$((fails + 1)); else echo "ok   names-linear: 60000 calls in $ms ms"; fi
rm -f names.json e.txt
exit $((fails > 0))
