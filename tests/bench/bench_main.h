// The main() of the whole-run benchmarks (portsim_runs_bench, portsim_mem_bench): the heap in
// 2 MiB pages before anything is allocated, as `portsim` itself does (base/huge_pages.h), so
// their figures are the CLI's. Each calls it from its main().
#pragma once
#include <benchmark/benchmark.h>

#include "portsim/base/huge_pages.h"

namespace portsim::bench {

inline int run_benchmarks(int argc, char** argv) {
  advise_huge_page_heap(kHugeHeapBytes);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace portsim::bench
