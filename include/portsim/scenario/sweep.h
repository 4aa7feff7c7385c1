// Sweeps: the cartesian product of scenario variations × seeds, run in parallel, one row each.
// A variation sets one JSON value by RFC 6901 pointer (e.g. /workloads/0/rate or
// /machines/0/sysctls/net.ipv4.tcp_tw_reuse). Rows come back in (variant, seed) order, so the
// output is deterministic except for the wall-time column.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "portsim/scenario/runner.h"

namespace portsim::scenario {

struct Vary {
  std::string pointer;              // "/workloads/0/rate"
  std::vector<std::string> values;  // JSON texts ("100", "\"40000 40999\"") or bare strings
};

struct SweepRow {
  std::vector<std::string> values;  // one per Vary, as given
  uint64_t seed = 0;
  RunReport rep;
  double wall_s = 0;
};

struct SweepSpec {
  std::string file;
  std::string kernel;  // --kernel: every run uses this kernel profile (empty: the file's)
  std::vector<Vary> vary;
  uint64_t seeds = 1;
  unsigned jobs = 1;
  Nanos sample_every = 0;
};

// Parses "POINTER=v1,v2,…"; nullopt (with `err`) on bad syntax.
std::optional<Vary> parse_vary(const std::string& arg, std::string& err);

// Runs the sweep. On bad input (a variant that does not load, a pointer that does not resolve)
// returns nullopt and sets `err` to one line. `progress(done, total)` is called as runs finish.
std::optional<std::vector<SweepRow>> run_sweep(const SweepSpec& spec, std::string& err,
                                               const std::function<void(size_t, size_t)>& progress = {});

// CSV / JSON output of the rows; and the time series (one line per sample).
void write_sweep_csv(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows);
void write_sweep_json(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows);
void write_timeseries_csv(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows);

}  // namespace portsim::scenario
