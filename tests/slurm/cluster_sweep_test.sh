#!/usr/bin/env bash
# The README's cluster recipes, run as written, against a real single-node Slurm
# (tools/slurm-single-node.sh) and GNU parallel; the merged results must equal one local sweep
# byte for byte, the wall_s column aside.
#
#   cluster_sweep_test.sh up|down                  ctest fixture: bring the node up / down
#   cluster_sweep_test.sh slurm PORTSIM            array + merge job → results == local sweep
#   cluster_sweep_test.sh slurm-fail PORTSIM       shard 2 fails → the merge job ends CANCELLED
#   cluster_sweep_test.sh parallel PORTSIM         GNU parallel + merge → results == local sweep
#
# Exit 77 (ctest: skipped) with the reason when Slurm or parallel cannot run here — never
# under CI=true, where everything they need is installed by tools/install-deps.sh.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
MODE=${1:?mode}
PORTSIM=${2:-}
NODE=$REPO/tools/slurm-single-node.sh
eval "$("$NODE" env)"
WORK=""  # made by prepare()

skip() {
  if [[ ${CI:-} == true ]]; then
    echo "FAIL (CI must run this): $*" >&2
    exit 1
  fi
  echo "SKIPPED: $*" >&2
  exit 77
}

# The sh block that follows the marker line "<!-- recipe: NAME -->" in README.md.
recipe() {
  awk -v m="<!-- recipe: $1 -->" '
    $0 == m { on = 1; next }
    on == 1 && /^```sh$/ { on = 2; next }
    on == 2 && /^```$/ { exit }
    on == 2 { print }' "$REPO/README.md"
}

# The sweep every recipe runs, locally in one process: the reference.
local_sweep() {
  local line
  line=$(recipe local)
  [[ -n $line ]] || { echo "README.md has no 'recipe: local' block" >&2; exit 1; }
  (cd "$WORK" && env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT PATH="$WORK/bin:$PATH" bash -euo pipefail -c "$line")
}

drop_wall() {  # CSV: the last column is wall_s; JSON: its "wall_s" lines
  case $1 in
    *.csv) sed 's/,[^,]*$//' "$1" ;;
    *.json) grep -v '"wall_s":' "$1" ;;
  esac
}

same_as_local() {
  local f ok=0
  for f in results.csv results.json; do
    if [[ ! -s $WORK/$f ]]; then
      echo "no $f written" >&2
      ok=1
    elif ! cmp <(drop_wall "$WORK/$f") <(drop_wall "$WORK/local.${f#results.}"); then
      echo "$f differs from the local sweep (wall_s aside):" >&2
      diff <(drop_wall "$WORK/$f") <(drop_wall "$WORK/local.${f#results.}") | head -20 >&2
      ok=1
    fi
  done
  return $ok
}

# Job state from slurmctld; without an accounting database finished jobs stay visible for
# MinJobAge (600 s in our slurm.conf), and jobcomp/filetxt keeps them after that.
job_state() {
  local s
  s=$(scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n1 | cut -d= -f2 || true)
  if [[ -z $s && -r /run/portsim-slurm/jobcomp.txt ]]; then
    s=$(grep "^JobId=$1 " /run/portsim-slurm/jobcomp.txt | tail -n1 | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 || true)
  fi
  echo "${s:-UNKNOWN}"
}

# Polls until the job ends (sbatch --wait is not trusted: it returned 0 for a job cancelled
# before it started). Prints the final state.
wait_job() {
  local id=$1 s
  for _ in $(seq 750); do  # 150 s: several test runs may share the node's 2 CPUs
    s=$(job_state "$id")
    case $s in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
        echo "$s"
        return 0 ;;
    esac
    sleep 0.2
  done
  echo "job $id still '$s' after 150 s" >&2
  scontrol show job "$id" >&2 || true
  return 1
}

array_states() {  # "COMPLETED COMPLETED FAILED COMPLETED", by task id
  local t
  for t in 0 1 2 3; do printf '%s ' "$(job_state "${1}_$t")"; done
}

# Runs the recipe in $WORK with `portsim` on PATH; sets ARRAY and MERGE from its last line.
submit() {
  local out
  out=$(cd "$WORK" && PATH=$WORK/bin:$PATH bash -euo pipefail -c "$(recipe slurm)")
  echo "$out"
  ARRAY=$(sed -n 's/.*array job \([0-9]*\).*/\1/p' <<<"$out" | tail -n1)
  MERGE=$(sed -n 's/.*merge job \([0-9]*\).*/\1/p' <<<"$out" | tail -n1)
  [[ -n $ARRAY && -n $MERGE ]] || { echo "the recipe did not print its job ids" >&2; exit 1; }
}

prepare() {
  [[ -x $PORTSIM ]] || { echo "no portsim at '$PORTSIM'" >&2; exit 1; }
  WORK=$(mktemp -d /tmp/portsim-cluster.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
  mkdir -p "$WORK/bin"
  ln -sfn "$REPO/plots" "$WORK/plots"
  ln -sf "$PORTSIM" "$WORK/bin/portsim"
  rm -rf "$WORK/shards" "$WORK"/results.* "$WORK"/local.*
}

# Several test runs on one machine (two build trees, say) share the node: each registers its
# ctest process in USERS, and `down` stops the node only when no other live run is registered.
USERS=/run/portsim-slurm-users
register() { mkdir -p "$USERS" && touch "$USERS/$PPID"; }
others_alive() {
  local f
  for f in "$USERS"/*; do
    [[ -e $f ]] || continue
    if [[ ${f##*/} != "$PPID" && -d /proc/${f##*/} ]]; then return 0; fi
    rm -f "$f"  # ours, or a run that is gone
  done
  return 1
}

exec 9>/run/portsim-slurm.lock 2>/dev/null || exec 9>/tmp/portsim-slurm.lock
case $MODE in
  up | down) flock -w 120 9 || { echo "another test run holds /run/portsim-slurm.lock" >&2; exit 1; } ;;
esac

case $MODE in
  up)
    register 2>/dev/null || true
    rc=0
    "$NODE" up 9>&- || rc=$?
    # Twice: the second finds the node up and keeps it (idempotent).
    if ((rc == 0)); then "$NODE" up 9>&- || rc=$?; fi
    if ((rc == 2)); then
      # Not possible here (not root, or the packages are missing): the slurm tests skip,
      # except under CI, where this is a failure.
      [[ ${CI:-} == true ]] && { echo "tools/slurm-single-node.sh up: impossible under CI" >&2; exit 1; }
      echo "Slurm cannot run here; the slurm-label tests will be skipped" >&2
      exit 0
    fi
    exit $rc ;;
  down)
    if others_alive 2>/dev/null; then
      echo "another test run (pid $(ls "$USERS" | tr '\n' ' ')) still uses the node: left up for it"
      exit 0
    fi
    rc=0
    "$NODE" down || rc=$?
    ((rc == 2)) && exit 0  # not root: nothing was started
    ((rc == 0)) || exit $rc
    "$NODE" down  # again: nothing to do
    if "$NODE" status; then echo "the node still answers after down" >&2; exit 1; fi
    for f in slurmctld slurmd munged; do
      [[ -e /run/portsim-slurm/$f.pid ]] && { echo "$f.pid left behind" >&2; exit 1; }
    done
    exit 0 ;;
  slurm)
    "$NODE" status || skip "no single-node Slurm (tools/slurm-single-node.sh up failed or cannot run here)"
    prepare
    local_sweep
    submit
    state=$(wait_job "$MERGE")
    echo "merge job $MERGE: $state; array tasks: $(array_states "$ARRAY")"
    if [[ $state != COMPLETED ]]; then
      cat "$WORK"/shards/*.log >&2 || true
      exit 1
    fi
    [[ $(array_states "$ARRAY") == "COMPLETED COMPLETED COMPLETED COMPLETED " ]] || exit 1
    ls "$WORK/shards"
    same_as_local
    echo "results.csv and results.json equal the local sweep (wall_s aside)" ;;
  slurm-fail)
    "$NODE" status || skip "no single-node Slurm (tools/slurm-single-node.sh up failed or cannot run here)"
    prepare
    # A portsim that fails in array task 2, as a crashed or killed shard would.
    rm -f "$WORK/bin/portsim"
    cat >"$WORK/bin/portsim" <<EOF
#!/bin/sh
[ "\${SLURM_ARRAY_TASK_ID:-}" = 2 ] && { echo "shard 2: simulated failure" >&2; exit 3; }
exec "$PORTSIM" "\$@"
EOF
    chmod +x "$WORK/bin/portsim"
    submit
    state=$(wait_job "$MERGE")
    tasks=$(array_states "$ARRAY")
    echo "merge job $MERGE: $state; array tasks: $tasks"
    [[ $tasks == "COMPLETED COMPLETED FAILED COMPLETED " ]] || { echo "expected task 2 alone to fail" >&2; exit 1; }
    [[ $state == CANCELLED ]] || { echo "expected the merge job CANCELLED (--kill-on-invalid-dep=yes)" >&2; exit 1; }
    [[ ! -e $WORK/results.csv && ! -e $WORK/results.json ]] || { echo "a merge ran anyway" >&2; exit 1; }
    echo "the failed shard cancelled the merge; no results written" ;;
  parallel)
    command -v parallel >/dev/null || skip "GNU parallel is not installed (Debian package parallel; tools/install-deps.sh installs it)"
    prepare
    local_sweep
    (cd "$WORK" && PATH=$WORK/bin:$PATH bash -euo pipefail -c "$(recipe parallel)")
    ls "$WORK/shards"
    same_as_local
    echo "results.csv and results.json equal the local sweep (wall_s aside)" ;;
  *)
    echo "usage: $0 up|down|slurm|slurm-fail|parallel [PORTSIM]" >&2
    exit 2 ;;
esac
