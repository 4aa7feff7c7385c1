#!/bin/bash
# How cost grows (issue 18, README "Performance"): CPU time and peak RSS of `portsim run --quiet`
# (1) vs connections held (10^3 … 10^7, 1 000 destinations), (2) vs destinations (1 … 10^4,
# 100 connections each), and (3) a sweep's wall time with --jobs 1 vs 2. Prints Markdown rows.
# Not a test (minutes of CPU at 10^7); run on an otherwise idle machine:
#   tests/bench/scaling.sh [build/portsim] [max-held, default 10000000]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../build/portsim}
max=${2:-10000000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

measure() {  # scenario → "cpu_s rss_kib"
  /usr/bin/time -o "$tmp/t" -f "%U %S %M" nice -n 10 "$bin" run --quiet --no-limits "$1" >/dev/null
  awk '{printf "%.2f %d\n", $1 + $2, $3}' "$tmp/t"
}

echo "| held connections | destinations × each | CPU s | µs per connection | peak RSS MiB | bytes per connection over 10^3 |"
echo "|---|---|---|---|---|---|"
read -r _ base_rss < <(python3 "$here/make_hold.py" h 1000 1 > "$tmp/h.json"; measure "$tmp/h.json")
for per in 1 10 100 1000 10000; do
  n=$((1000 * per))
  [ "$n" -le "$max" ] || break
  python3 "$here/make_hold.py" h 1000 "$per" > "$tmp/h.json"
  read -r cpu rss < <(measure "$tmp/h.json")
  awk -v n="$n" -v per="$per" -v cpu="$cpu" -v rss="$rss" -v b="$base_rss" 'BEGIN {
    printf "| %d | 1 000 × %d | %.2f | %.2f | %.1f | %s |\n", n, per, cpu, cpu * 1e6 / n, rss / 1024,
      (n > 1000 ? sprintf("%.1f", (rss - b) * 1024 / (n - 1000)) : "–") }'
done

echo
echo "| destinations | connections (100 each) | CPU s | µs per connection | peak RSS MiB |"
echo "|---|---|---|---|---|"
for d in 1 10 100 1000 10000; do
  python3 "$here/make_hold.py" h "$d" 100 > "$tmp/d.json"
  read -r cpu rss < <(measure "$tmp/d.json")
  awk -v d="$d" -v cpu="$cpu" -v rss="$rss" 'BEGIN { n = d * 100;
    printf "| %d | %d | %.2f | %.2f | %.1f |\n", d, n, cpu, cpu * 1e6 / n, rss / 1024 }'
done

echo
echo "| sweep (8 runs of churn-random) | wall s | CPU s |"
echo "|---|---|---|"
for j in 1 2; do
  /usr/bin/time -o "$tmp/t" -f "%e %U %S" nice -n 10 "$bin" sweep "$here/../../plots/scenarios/churn-random.json" \
    --vary /workloads/0/rate=2000,4000,6000,8000,10000,12000,14000,16000 --jobs "$j" --out "$tmp/s.csv" >/dev/null
  awk -v j="$j" '{ printf "| --jobs %d | %.2f | %.2f |\n", j, $1, $2 + $3 }' "$tmp/t"
done
