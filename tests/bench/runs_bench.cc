// Whole runs (issue 18): the connect hot path end to end — scenario loaded once, then each
// iteration builds the world and runs it to the end (no trace), as `portsim run --quiet` does.
// Reported per iteration: events/s and connect() candidates/s over the run's CPU time.
//   BM_run_exhaust_100_destinations: tests/bench/exhaust-100-destinations.json (2.82 M connects,
//     19 940 372 478 candidates; goal ≤ 1.3 s on an idle 2-core machine).
//   BM_run_workload_1000_destinations: tests/bench/workload-1000-destinations.json (10^6
//     connections over 50 s of virtual time toward 1 000 destinations; goal ≥ 3 M events/s).
// Run: ./build/tests/bench/portsim_runs_bench (README "Performance").
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "bench_main.h"
#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"

using namespace portsim;

namespace {

const scenario::Scenario& load(const char* name) {
  static std::map<std::string, scenario::Scenario> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  auto lr = scenario::load_scenario_file(std::string(PORTSIM_SOURCE_DIR "/tests/bench/") + name);
  if (!lr.scenario) {
    std::fprintf(stderr, "%s\n", lr.error ? lr.error->message.c_str() : "cannot load");
    std::exit(2);
  }
  return cache.emplace(name, std::move(*lr.scenario)).first->second;
}

void run_whole(benchmark::State& st, const char* name) {
  const scenario::Scenario& sc = load(name);
  uint64_t events = 0, candidates = 0, connects = 0;
  for (auto _ : st) {
    scenario::Runner runner(sc, {});
    const scenario::RunReport rep = runner.run();
    if (rep.expectation_failures || !rep.runtime_error.empty()) st.SkipWithError("the run's expectations failed");
    events += rep.events;
    candidates += rep.st.candidates;
    connects += rep.connects;
  }
  st.counters["events/s"] = benchmark::Counter(double(events), benchmark::Counter::kIsRate);
  st.counters["candidates/s"] = benchmark::Counter(double(candidates), benchmark::Counter::kIsRate);
  st.counters["connects/s"] = benchmark::Counter(double(connects), benchmark::Counter::kIsRate);
}

void BM_run_exhaust_100_destinations(benchmark::State& st) { run_whole(st, "exhaust-100-destinations.json"); }
BENCHMARK(BM_run_exhaust_100_destinations)->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(3);

void BM_run_workload_1000_destinations(benchmark::State& st) { run_whole(st, "workload-1000-destinations.json"); }
BENCHMARK(BM_run_workload_1000_destinations)->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(3);

}  // namespace

int main(int argc, char** argv) { return portsim::bench::run_benchmarks(argc, argv); }
