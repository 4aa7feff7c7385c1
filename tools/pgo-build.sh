#!/usr/bin/env bash
# Builds portsim with GCC's profile-guided optimization (issue 18, README "Performance",
# session 11): an instrumented build runs the training scenarios below, then the same tree is
# rebuilt with the profile it wrote; last, the ctest label trace-hash checks that the optimized
# binary's outcomes are byte-identical to the plain build's. Optional: the default build does
# not do this (a second full build, and every source change needs fresh training).
#
# usage: tools/pgo-build.sh [BUILD_DIR, default build-pgo]     → BUILD_DIR/portsim
# Training: the benchmark scenarios whose speed issue 18 measures (workload generators,
# timeline repetitions, an exhaustion); what they exercise gets the profile's layout.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$src/build-pgo}" && cd "${1:-$src/build-pgo}" && pwd)
data=$out/pgo-data
jobs=${JOBS:-2}
training=(
  plots/scenarios/churn-random.json
  tests/bench/workload-1000-destinations.json
  tests/bench/hold-1m-connections.json
  tests/bench/trace-hash-exhaust-10.json
  scenarios/exhaust-one-destination.json
)
[[ ${CXX:-} == *clang* ]] && { echo "pgo-build.sh: GCC only (clang's profiles take llvm-profdata)" >&2; exit 2; }
for s in "${training[@]}"; do [[ -f $src/$s ]] || { echo "pgo-build.sh: training scenario $s is missing" >&2; exit 2; }; done

build() {  # CXXFLAGS LDFLAGS: configure the tree with them and build portsim
  cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$1" -DCMAKE_EXE_LINKER_FLAGS="$2" > /dev/null
  cmake --build "$out" -j"$jobs" --target portsim
}
rm -rf "$data" && mkdir -p "$data"
echo "== 1/4 instrumented build ($out)"
build "-fprofile-generate -fprofile-dir=$data -fprofile-update=atomic" "-fprofile-generate"
echo "== 2/4 training"
for s in "${training[@]}"; do
  echo "   $s"
  "$out/portsim" run --quiet "$src/$s" > /dev/null
done
echo "== 3/4 optimized build with the profile"
build "-fprofile-use -fprofile-dir=$data -fprofile-correction -Wno-missing-profile" ""
echo "== 4/4 outcomes unchanged (ctest -L trace-hash)"
ctest --test-dir "$out" -L trace-hash --output-on-failure
echo "pgo-build.sh: $out/portsim"
