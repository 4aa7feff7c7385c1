#!/usr/bin/env bash
# Runs every sweep the plots need (into plots/data/*.csv) and renders plots/*.png.
#   plots/make_all.sh                       # uses ./build/portsim
#   PORTSIM=/path/to/portsim JOBS=2 plots/make_all.sh
# Needs python3 with matplotlib (Debian: python3-matplotlib). 105 s of CPU in all (measured:
# user 1m43s + sys 2s), about 1 min on an idle 2-core machine; 14.6 min on a shared one at load 15.
# Writes plots/*.png, *.svg, *.pdf and the heat map plots/heatmap_demo.html / .png.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PORTSIM=${PORTSIM:-$here/../build/portsim}
JOBS=${JOBS:-2}
sc=$here/scenarios
data=$here/data
mkdir -p "$data"

if [[ ! -x $PORTSIM ]]; then
  echo "make_all.sh: $PORTSIM not found; build it first:" >&2
  echo "  cmake -S . -B build && cmake --build build -j2 --target portsim" >&2
  exit 2
fi

# A python3 that has matplotlib (a pyenv shim may shadow Debian's).
PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import matplotlib' 2>/dev/null; then PYTHON=$p; break; fi
  done
fi
if [[ -z $PYTHON ]]; then
  echo "make_all.sh: no python3 with matplotlib (apt-get install python3-matplotlib)" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { printf '== %s (%ds)\n' "$*" "$SECONDS"; }
sweep() { "$PORTSIM" sweep "$@" --jobs "$JOBS" >/dev/null; }
# The wall_s column is the only non-deterministic one: drop it so that a rerun rewrites the
# committed CSVs byte for byte (same portsim, same scenarios).
drop_wall() {
  "$PYTHON" - "$@" <<'PY'
import csv, sys
for path in sys.argv[1:]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "wall_s" not in rows[0]:
        continue
    k = rows[0].index("wall_s")
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([r[:k] + r[k + 1:] for r in rows])
PY
}

# 1. failure rate vs connection rate (rate x range x tcp_tw_reuse 0/1; tcp_tw_reuse=2 checked apart)
step "failure_vs_rate sweeps"
RATES=100,200,300,400,450,470,500,550,600,700,800,900,1000,1075,1100,1200,1400,1600,1800,2000
sweep "$sc/failure-vs-rate.json" \
  --vary /workloads/0/rate=$RATES \
  --vary '/machines/0/sysctls/net.ipv4.ip_local_port_range="32768 60999","1024 65535"' \
  --vary /machines/0/sysctls/net.ipv4.tcp_tw_reuse=0,1 \
  --out "$data/failure_vs_rate.csv"
sweep "$sc/failure-vs-rate.json" \
  --vary /workloads/0/rate=200,400,600,1000,1400,2000 \
  --vary /machines/0/sysctls/net.ipv4.tcp_tw_reuse=2 \
  --out "$data/failure_vs_rate_tw2.csv"

# 2. ports examined vs fill: (a) sequential fill, per connect, from a trace
step "examined_vs_fill: sequential fill trace"
"$PORTSIM" run "$sc/seq-fill.json" --quiet --trace "$tmp/seq-fill.jsonl"
"$PYTHON" "$here/extract_connects.py" "$tmp/seq-fill.jsonl" "$data/seq_fill_connects.csv"
rm -f "$tmp/seq-fill.jsonl"

# (b) churn with random release (1 destination), (c) the same toward 2 and 4 destinations.
# Rates = per-destination fill f x 28232 ports x D destinations / 1 s mean hold.
rates() {  # D f1 f2 ... -> comma-separated rates
  local d=$1; shift
  "$PYTHON" -c 'import sys; d=int(sys.argv[1]); print(",".join(str(round(float(f)*28232*d)) for f in sys.argv[2:]))' "$d" "$@"
}
step "examined_vs_fill: churn, 1 destination"
sweep "$sc/churn-random.json" \
  --vary /workloads/0/rate=$(rates 1 0.1 0.2 0.3 0.4 0.45 0.48 0.5 0.52 0.55 0.6 0.7 0.8 0.9 0.95) \
  --out "$data/churn_1dest.csv" --timeseries 1s --timeseries-out "$data/churn_1dest_ts.csv"
for d in 2 4; do
  step "examined_vs_fill: churn, $d destinations"
  sweep "$sc/churn-random-${d}dest.json" \
    --vary /workloads/0/rate=$(rates $d 0.2 0.4 0.48 0.5 0.52 0.6 0.8 0.95) \
    --out "$data/churn_${d}dest.csv" --timeseries 1s --timeseries-out "$data/churn_${d}dest_ts.csv"
done

# 3. ports in use over time, with and without a pool
step "ports_in_use_over_time sweeps"
sweep "$sc/churn-nopool.json" --vary /workloads/0/rate=300,600 \
  --out "$data/churn_nopool.csv" --timeseries 1s --timeseries-out "$data/churn_nopool_ts.csv"
sweep "$sc/churn-pool.json" \
  --out "$data/churn_pool.csv" --timeseries 1s --timeseries-out "$data/churn_pool_ts.csv"

# 4. UDP exhaustion next to TCP's: DNS-style queries (a connected UDP socket per query, held
# 5 s by a silent resolver) toward 1 and 4 resolvers; TCP client-closed connections toward 4
# destinations (the 1-destination TCP curve is failure_vs_rate.csv).
step "udp_vs_tcp sweeps"
UDP_RATES=1000,2000,3000,4000,5000,5500,6000,7000,8000,10000,12000
sweep "$sc/udp-dns.json" --vary /workloads/0/rate=$UDP_RATES --out "$data/udp_dns_1.csv"
sweep "$sc/udp-dns-4.json" --vary /workloads/0/rate=$UDP_RATES --out "$data/udp_dns_4.csv"
sweep "$sc/failure-vs-rate-4dest.json" --vary /workloads/0/rate=500,1000,1500,1800,1900,2000,2500,3000,4000 \
  --out "$data/failure_vs_rate_4dest.csv"

drop_wall "$data"/*.csv

# 5. the plots (PNG, SVG and PDF of each)
step "rendering"
for s in failure_vs_rate examined_vs_fill ports_in_use_over_time port_parity_and_gaps udp_vs_tcp; do
  "$PYTHON" "$here/$s.py"
done

# 6. the README's heat map (HTML page and PNG)
step "heat map"
"$PORTSIM" heatmap "$sc/heatmap-demo.json" -o "$here/heatmap_demo.html" --png "$here/heatmap_demo.png" --columns 200
step "done"
