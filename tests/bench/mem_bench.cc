// Whole runs for memory and the per-event cost (issue 18, part B): churn and held connections.
// Each iteration runs the scenario in a forked child (so that its peak RSS is its own), loaded
// and run as `portsim run --quiet` does; the time reported is the child's CPU time (user + sys),
// the machine being shared. Counters:
//   events/s           events the engine ran / CPU time
//   peak_RSS_MiB       the child's peak resident set (getrusage ru_maxrss)
//   bytes/held_conn    (peak RSS − peak RSS of the one-connection-per-destination baseline) /
//                      connections held, for the hold runs
//   BM_run_churn_random: plots/scenarios/churn-random.json (Poisson 10 000/s for 20 s, held
//     exp(1 s), reset; goal ≥ 5 M events/s).
//   BM_run_hold_1m: tests/bench/hold-1m-connections.json (goal ≤ 0.4 s, ≤ 100 bytes a connection).
//   BM_run_hold_10m: tests/bench/hold-10m-connections.json (goal: ≤ 1.5 GiB peak RSS).
// Run: ./build/tests/bench/portsim_mem_bench (README "Performance"); not run by ctest.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_main.h"
#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"

using namespace portsim;

namespace {

struct ChildResult {
  double cpu_s = 0;
  uint64_t events = 0, connects_ok = 0;
  long maxrss_kb = 0;
  bool ok = false;
};

double cpu_seconds(const rusage& ru) {
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Loads and runs `file` in a child process; its CPU time and peak RSS come from wait4().
ChildResult run_in_child(const std::string& file) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid < 0) return {};
  if (pid == 0) {
    close(fds[0]);
    uint64_t out[3] = {0, 0, 0};
    auto lr = scenario::load_scenario_file(file);
    if (lr.scenario) {
      scenario::Runner runner(*lr.scenario, {});
      const scenario::RunReport rep = runner.run();
      out[0] = rep.events;
      out[1] = rep.connects_ok;
      out[2] = rep.expectation_failures || !rep.runtime_error.empty() ? 0 : 1;
    }
    if (write(fds[1], out, sizeof out) != ssize_t(sizeof out)) _exit(3);
    _exit(0);
  }
  close(fds[1]);
  uint64_t in[3] = {0, 0, 0};
  const bool got = read(fds[0], in, sizeof in) == ssize_t(sizeof in);
  close(fds[0]);
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  ChildResult r;
  r.ok = got && in[2] == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  r.cpu_s = cpu_seconds(ru);
  r.events = in[0];
  r.connects_ok = in[1];
  r.maxrss_kb = ru.ru_maxrss;
  return r;
}

void run_whole(benchmark::State& st, const std::string& file, const std::string& baseline) {
  uint64_t events = 0;
  double cpu = 0;
  long rss = 0, base_rss = 0;
  uint64_t held = 0, base_held = 0;
  if (!baseline.empty()) {
    const ChildResult b = run_in_child(baseline);
    base_rss = b.maxrss_kb;
    base_held = b.connects_ok;
  }
  for (auto _ : st) {
    const ChildResult r = run_in_child(file);
    if (!r.ok) {
      st.SkipWithError("the run failed or its expectations did not hold");
      return;
    }
    st.SetIterationTime(r.cpu_s);
    events += r.events;
    cpu += r.cpu_s;
    rss = std::max(rss, r.maxrss_kb);
    held = r.connects_ok;
  }
  st.counters["events/s"] = benchmark::Counter(cpu > 0 ? double(events) / cpu : 0);
  st.counters["peak_RSS_MiB"] = benchmark::Counter(double(rss) / 1024);
  if (!baseline.empty() && held > base_held)
    st.counters["bytes/held_conn"] = benchmark::Counter(double(rss - base_rss) * 1024 / double(held - base_held));
}

const std::string kDir = PORTSIM_SOURCE_DIR;

void BM_run_churn_random(benchmark::State& st) { run_whole(st, kDir + "/plots/scenarios/churn-random.json", {}); }
BENCHMARK(BM_run_churn_random)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(false);

void BM_run_hold_1m(benchmark::State& st) {
  run_whole(st, kDir + "/tests/bench/hold-1m-connections.json", kDir + "/tests/bench/hold-1m-connections-empty.json");
}
BENCHMARK(BM_run_hold_1m)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1)->Repetitions(3);

void BM_run_hold_10m(benchmark::State& st) {
  run_whole(st, kDir + "/tests/bench/hold-10m-connections.json", kDir + "/tests/bench/hold-1m-connections-empty.json");
}
BENCHMARK(BM_run_hold_10m)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1)->Repetitions(1);

}  // namespace

int main(int argc, char** argv) { return portsim::bench::run_benchmarks(argc, argv); }
