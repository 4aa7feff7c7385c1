#!/usr/bin/env bash
# CLI basics: --version, the scenario from standard input, the OS error in file messages, the
# trace-size warning, the summary's "timeline calls", and `cmake --install` (binary, man page
# portsim(1), bash completion).   usage: cli_test.sh PORTSIM SOURCE_DIR BUILD_DIR
set -euo pipefail
portsim=$1 src=$2 build=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
ex=$src/scenarios/exhaust-one-destination.json

# --version: one line, the CMake project version and the modelled kernel.
v=$("$portsim" --version)
[[ $v =~ ^portsim\ [0-9]+\.[0-9]+\ \(model:\ Linux\ 6\.18\)$ ]] || fail "--version: '$v'"

# '-' reads the scenario from standard input; messages call it <stdin>.
out=$("$portsim" check - <"$ex") || fail "check - exited $?"
[[ $out == "<stdin>: ok (1 machines, "* ]] || fail "check -: '$out'"
"$portsim" run --quiet - <"$ex" || fail "run - exited $?"
set +e
err=$(echo '{"seed": 1, "machines": []}' | "$portsim" run - 2>&1 >/dev/null); rc=$?
set -e
[[ $rc == 2 && $err == "<stdin>: \$.machines: "* ]] || fail "bad stdin scenario: rc $rc, '$err'"

# A missing file: exit 2 and the OS's reason.
set +e
err=$("$portsim" run "$tmp/none.json" 2>&1); rc=$?
set -e
[[ $rc == 2 && $err == "$tmp/none.json: cannot open the scenario file: No such file or directory" ]] ||
  fail "missing file: rc $rc, '$err'"

# A trace estimated past 1 GB without --trace-level / --trace-sample: a warning first. (The
# trace path cannot be opened, so nothing runs.) With --trace-sample there is no warning.
set +e
err=$("$portsim" run "$src/tests/cli/big-trace.json" --trace "$tmp/no/t.jsonl" 2>&1); rc=$?
err2=$("$portsim" run "$src/tests/cli/big-trace.json" --trace "$tmp/no/t.jsonl" --trace-sample 1000 2>&1)
set -e
[[ $rc == 2 && $err == "portsim run: warning: the trace may grow to about 350.0 GB"* ]] || fail "warning: '$err'"
[[ $err2 != *warning* ]] || fail "warning despite --trace-sample: '$err2'"

# The summary's first line counts the timeline's calls and says so; generated connects are
# counted under "connects".
out=$("$portsim" run "$src/tests/explain/workload-exhaust.json")
grep -q '^  timeline calls 2 (ok 2)$' <<<"$out" || fail "summary: $out"
grep -q '^  connects       11 (ok 10, EADDRNOTAVAIL 1)' <<<"$out" || fail "summary: $out"

# cmake --install: the binary, portsim(1) and the bash completion, where Debian looks for them.
cmake --install "$build" --prefix "$tmp/p" >/dev/null
for f in bin/portsim share/man/man1/portsim.1 share/bash-completion/completions/portsim; do
  [[ -e $tmp/p/$f ]] || fail "not installed: $f"
done
"$tmp/p/bin/portsim" --version >/dev/null
# The man page renders without a groff warning, and says what the commands are.
w=$(groff -man -ww -z -Tutf8 "$tmp/p/share/man/man1/portsim.1" 2>&1)
[[ -z $w ]] || fail "man page warnings: $w"
groff -man -Tutf8 "$tmp/p/share/man/man1/portsim.1" 2>/dev/null | grep -q 'portsim ss' || fail "man page lacks ss"
# The completion completes commands and options.
# shellcheck disable=SC1091
source "$tmp/p/share/bash-completion/completions/portsim"
COMP_WORDS=(portsim s); COMP_CWORD=1; _portsim
[[ " ${COMPREPLY[*]} " == *" ss "* && " ${COMPREPLY[*]} " == *" sweep "* ]] || fail "completion: ${COMPREPLY[*]}"
COMP_WORDS=(portsim ss x.json --st); COMP_CWORD=3; _portsim
[[ ${COMPREPLY[*]} == "--state" ]] || fail "completion: ${COMPREPLY[*]}"
echo ok
