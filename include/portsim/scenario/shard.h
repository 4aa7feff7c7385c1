// Sharded sweeps: `portsim sweep … --shard I/N --out FILE.shard` writes the rows of its runs,
// already formatted, with the sweep's fingerprint; `portsim merge` checks that every shard
// belongs to one sweep and that every run appears exactly once, then concatenates the rows in
// run order — so the merged CSV / JSON / time series are byte-identical to an unsharded sweep's
// (the wall_s column aside).
#pragma once
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "portsim/scenario/sweep.h"

namespace portsim::scenario {

// One run as a shard holds it.
struct ShardRun {
  uint64_t run = 0, seed = 0;
  std::vector<std::string> values;
  uint64_t expectations_failed = 0;
  std::string first_failure;                // "" when none failed
  std::string csv;                          // sweep_csv_row()
  std::string json;                         // sweep_json_row()
  std::vector<std::string> timeseries;      // timeseries_csv_rows()
};

// The shard file of `rows` (the runs `plan` selected), written to f.
void write_shard(std::FILE* f, const SweepSpec& spec, const SweepPlan& plan, const std::vector<SweepRow>& rows);

// The runs of a whole sweep, put together from its shards.
struct MergedSweep {
  std::string fingerprint;
  uint64_t runs_total = 0;
  std::string csv_header, timeseries_header;  // timeseries_header "" when the sweep sampled nothing
  std::vector<ShardRun> runs;                 // every run, in run order
};

// Reads and checks the shards. nullopt with `err` (one line) when a file is not a shard, when
// shards come from different sweeps, or when a run is missing or appears twice.
std::optional<MergedSweep> merge_shards(const std::vector<std::string>& paths, std::string& err);

// The merged outputs.
void write_merged_csv(std::FILE* f, const MergedSweep& m);
void write_merged_json(std::FILE* f, const MergedSweep& m);
void write_merged_timeseries(std::FILE* f, const MergedSweep& m);

}  // namespace portsim::scenario
