// Sweeps: the cartesian product of scenario variations × seeds, run in parallel, one row each.
// A variation sets one JSON value by RFC 6901 pointer (e.g. /workloads/0/rate or
// /machines/0/sysctls/net.ipv4.tcp_tw_reuse). Runs are numbered 0 … N-1 in (variant, seed)
// order, first --vary slowest; run r is variant r / seeds with seed base + r % seeds, so a
// run's parameters never depend on how the sweep is cut into shards (shard.h). Rows come back
// in run order: the output is deterministic except for the wall-time column.
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
  uint64_t run = 0;                 // index in the whole sweep
  std::vector<std::string> values;  // one per Vary, as given
  uint64_t seed = 0;
  RunReport rep;
  double wall_s = 0;
};

struct SweepSpec {
  std::string file;
  std::vector<Vary> vary;
  uint64_t seeds = 1;
  unsigned jobs = 1;
  Nanos sample_every = 0;
  // Which runs to do: those listed (empty: all), and of them those with run % shard_count ==
  // shard_index.
  std::vector<uint64_t> runs;
  uint64_t shard_index = 0, shard_count = 1;
};

// One run of the sweep, before it runs: what --list-runs prints.
struct RunPlan {
  uint64_t run = 0;
  std::vector<std::string> values;
  uint64_t seed = 0;
};

// Parses "POINTER=v1,v2,…"; nullopt (with `err`) on bad syntax.
std::optional<Vary> parse_vary(const std::string& arg, std::string& err);
// Parses "3,7,10-20" into sorted, distinct run indices; nullopt (with `err`) on bad syntax.
std::optional<std::vector<uint64_t>> parse_runs(const std::string& arg, std::string& err);
// Parses "I/N" (0 <= I < N); nullopt (with `err`) on bad syntax.
std::optional<std::pair<uint64_t, uint64_t>> parse_shard(const std::string& arg, std::string& err);

// A loaded sweep: every variant validated, every run numbered. nullopt (with `err`, one line)
// on bad input: a variant that does not load, a pointer that does not lead into the scenario,
// a --runs index past the last run.
struct SweepPlan {
  std::vector<Scenario> variants;
  std::vector<std::vector<size_t>> combos;  // per variant: the index of each --vary value
  std::vector<RunPlan> all;                 // every run of the sweep
  std::vector<uint64_t> selected;           // the runs this invocation does (--runs, --shard)
  std::string fingerprint;                  // of the scenario, the variations, the seeds (hex)
};
std::optional<SweepPlan> plan_sweep(const SweepSpec& spec, std::string& err);

// Runs the selected runs. On bad input found while running returns nullopt and sets `err` to
// one line. `progress(done, total)` is called as runs finish.
std::optional<std::vector<SweepRow>> run_sweep(const SweepSpec& spec, const SweepPlan& plan, std::string& err,
                                               const std::function<void(size_t, size_t)>& progress = {});
// plan_sweep + run_sweep.
std::optional<std::vector<SweepRow>> run_sweep(const SweepSpec& spec, std::string& err,
                                               const std::function<void(size_t, size_t)>& progress = {});

// The errno columns of the CSVs: every errno the model knows (connect() can fail with any of
// them through its socket options, bind-before-connect or the handshake), in name order, so
// every sweep and every shard has the same columns.
const std::vector<std::string>& sweep_errno_columns();

// Output pieces, shared by the sweep and by `portsim merge` (which concatenates them, so a
// merged file is byte-identical to an unsharded one).
std::string sweep_csv_header(const SweepSpec& spec);
std::string sweep_csv_row(const SweepRow& row);         // no newline
std::string sweep_json_row(const SweepSpec& spec, const SweepRow& row);  // one JSON object
std::string sweep_json_array(const std::vector<std::string>& rows);      // the rows, as written
std::string timeseries_csv_header(const SweepSpec& spec);
std::vector<std::string> timeseries_csv_rows(const SweepRow& row);      // no newlines

// CSV / JSON output of the rows; and the time series (one line per sample).
void write_sweep_csv(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows);
void write_sweep_json(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows);
void write_timeseries_csv(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows);

}  // namespace portsim::scenario
