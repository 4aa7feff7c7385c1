#!/usr/bin/env bash
# A throw-away single-node Slurm (Debian's slurm-wlm 22.05 + munge) for the `slurm` ctest label
# and for trying the README's sweep recipes on one machine. No systemd needed.
#
#   tools/slurm-single-node.sh up       # start munged (unless one runs), slurmctld, slurmd; wait for an idle node
#   tools/slurm-single-node.sh down     # cancel every job, stop what `up` started, remove its state
#   tools/slurm-single-node.sh status   # exit 0 when the node answers
#   eval "$(tools/slurm-single-node.sh env)"   # SLURM_CONF for sbatch/squeue/scontrol
#
# Both up and down are idempotent: `up` twice keeps the running node, `up` after a crashed run
# first cleans what the crash left, `down` with nothing running does nothing.
# Exit status: 0 done; 2 impossible here (not root, packages missing: tools/install-deps.sh
# installs them); 1 it should have worked but did not (the logs are printed).
#
# Measured on Debian 12 (no systemd, root): `up` takes 0.6–2 s once installed. The choices:
#  * munged runs as the munge user from /run/munge (created here; /run is a tmpfs, so a
#    fresh boot has none); an already running munged is used and left alone.
#  * ProctrackType=proctrack/linuxproc and TaskPlugin=task/none: no cgroups needed;
#    no accounting database (accounting_storage/none); finished jobs go to jobcomp/filetxt.
#  * Queued jobs survive a daemon restart, so `down` cancels them before stopping, and `up`
#    starts slurmctld with a clean state (-c).
#  * Every daemon listens on the machine, and node and controller talk over 127.0.0.1.
set -euo pipefail

STATE=${PORTSIM_SLURM_DIR:-/run/portsim-slurm}
CONF=$STATE/slurm.conf
export SLURM_CONF=$CONF
NODE=$(hostname -s)

say() { echo "slurm-single-node: $*" >&2; }

# The pid in FILE if that process is still the daemon NAME (pids get reused).
live_pid() {
  local file=$1 name=$2 pid
  [[ -r $file ]] || return 1
  pid=$(tr -dc '0-9' <"$file")
  alive "$pid" || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
  echo "$pid"
}

# A process that exists and is not a zombie (where nobody reaps orphans, a killed daemon
# stays in the process table as one).
alive() {
  local st
  [[ -n $1 ]] || return 1
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z && $st != X ]]
}

# Stops the daemon whose pid FILE holds: TERM, then KILL after 10 s.
stop_daemon() {
  local file=$1 name=$2 pid
  if pid=$(live_pid "$file" "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      say "$name (pid $pid) ignored SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}

need() {
  if [[ $(id -u) -ne 0 ]]; then
    say "needs root (it starts munged as the munge user and slurmd as root)"
    exit 2
  fi
  local missing=()
  for b in munged munge unmunge slurmctld slurmd sbatch squeue scontrol scancel sinfo; do
    command -v "$b" >/dev/null || missing+=("$b")
  done
  if ((${#missing[@]})); then
    say "not installed: ${missing[*]} (Debian packages slurm-wlm and munge; tools/install-deps.sh installs them)"
    exit 2
  fi
  id munge >/dev/null 2>&1 || { say "no munge user (reinstall the munge package)"; exit 2; }
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  if munge_works; then
    return 0  # someone's munged: use it, leave it running
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge /etc/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
      runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
      chown munge:munge /etc/munge/munge.key
    fi
    chmod 0400 /etc/munge/munge.key
  fi
  runuser -u munge -- munged --force
  for _ in $(seq 50); do
    munge_works && break
    sleep 0.1
  done
  munge_works || { say "munged did not start"; tail -n 20 /var/log/munge/munged.log >&2 || true; exit 1; }
  cp /run/munge/munged.pid "$STATE/munged.pid"
}

write_conf() {
  # slurmd -C prints this machine's NodeName line (CPUs, sockets, cores, threads, memory).
  local node_line
  node_line=$(slurmd -C 2>/dev/null | grep -m1 '^NodeName=' || true)
  [[ -n $node_line ]] || node_line="NodeName=$NODE CPUs=$(nproc)"
  cat >"$CONF" <<EOF
# Written by tools/slurm-single-node.sh: one node, no accounting, no cgroups.
ClusterName=portsim
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.txt
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

node_state() { timeout 10 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1 || true; }

show_logs() {
  for f in "$STATE/slurmctld.log" "$STATE/slurmd.log"; do
    [[ -r $f ]] && { echo "--- $f (last lines)" >&2; tail -n 15 "$f" >&2; }
  done
}

up() {
  need
  if live_pid "$STATE/slurmctld.pid" slurmctld >/dev/null && live_pid "$STATE/slurmd.pid" slurmd >/dev/null &&
     munge_works && [[ $(node_state) == idle* || $(node_state) == mixed* || $(node_state) == allocated* ]]; then
    say "already up (node $NODE: $(node_state))"
    return 0
  fi
  down_quiet  # whatever a crashed or half-finished run left
  install -d -m 0755 "$STATE" "$STATE/ctld" "$STATE/spool"
  install -d -m 0755 /run/slurm
  start_munge
  write_conf
  slurmctld -c -f "$CONF" || { say "slurmctld did not start"; show_logs; exit 1; }
  for _ in $(seq 100); do
    timeout 5 scontrol ping 2>/dev/null | grep -q UP && break
    sleep 0.1
  done
  slurmd -f "$CONF" || { say "slurmd did not start"; show_logs; exit 1; }
  local st=""
  for i in $(seq 300); do
    st=$(node_state)
    [[ $st == idle* ]] && break
    if [[ $st == down* || $st == drain* ]] && ((i % 20 == 0)); then
      scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true
    fi
    sleep 0.1
  done
  if [[ $st != idle* ]]; then
    say "node $NODE is '${st:-unknown}', not idle, after 30 s"
    show_logs
    down_quiet
    exit 1
  fi
  say "up: node $NODE idle ($(sinfo -h -N -n "$NODE" -o '%c CPUs')); export SLURM_CONF=$CONF"
}

# Cancels every job, stops our daemons, removes our state. Quiet when nothing runs.
down_quiet() {
  if [[ -r $CONF ]] && live_pid "$STATE/slurmctld.pid" slurmctld >/dev/null; then
    # Queued jobs would survive a restart: cancel them, and wait until none runs.
    local jobs
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null | sed 's/_.*//' | sort -u || true)
    if [[ -n $jobs ]]; then
      # shellcheck disable=SC2086
      timeout 10 scancel --quiet $jobs 2>/dev/null || true
      for _ in $(seq 100); do
        [[ -z $(timeout 5 squeue -h -t PD,R,CG,CF,S -o %i 2>/dev/null || true) ]] && break
        sleep 0.1
      done
    fi
  fi
  stop_daemon "$STATE/slurmd.pid" slurmd
  stop_daemon "$STATE/slurmctld.pid" slurmctld
  # munged only if we started it (our copy of its pid file says so).
  if live_pid "$STATE/munged.pid" munged >/dev/null; then
    stop_daemon "$STATE/munged.pid" munged
  fi
  rm -f "$STATE/munged.pid"
  if [[ -d $STATE ]]; then
    rm -rf "$STATE/ctld" "$STATE/spool" "$STATE/slurm.conf"
  fi
}

down() {
  if [[ $(id -u) -ne 0 ]]; then
    say "needs root"
    exit 2
  fi
  down_quiet
  say "down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) [[ -r $CONF ]] && timeout 10 scontrol ping 2>/dev/null | grep -q UP && [[ $(node_state) != "" ]] ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: tools/slurm-single-node.sh up|down|status|env" >&2; exit 2 ;;
esac
