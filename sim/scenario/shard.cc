#include "portsim/scenario/shard.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace portsim::scenario {

using json = nlohmann::ordered_json;

namespace {
constexpr int kShardFormat = 1;

std::string describe_selection(const SweepSpec& spec) {
  std::string s = spec.runs.empty() ? "all runs" : fmt::format("{} listed runs", spec.runs.size());
  if (spec.shard_count > 1) s += fmt::format(", shard {}/{}", spec.shard_index, spec.shard_count);
  return s;
}
}  // namespace

void write_shard(std::FILE* f, const SweepSpec& spec, const SweepPlan& plan, const std::vector<SweepRow>& rows) {
  // One header object, then one run per line: readable, and diffable between reruns.
  json head;
  head["portsim_shard"] = kShardFormat;
  head["fingerprint"] = plan.fingerprint;
  head["scenario"] = spec.file;
  head["runs_total"] = plan.all.size();
  head["selection"] = describe_selection(spec);
  head["csv_header"] = sweep_csv_header(spec);
  head["timeseries_header"] = spec.sample_every ? timeseries_csv_header(spec) : "";
  std::string text = head.dump();
  text.pop_back();  // the closing brace: the runs follow
  text += ",\"runs\":[\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const SweepRow& r = rows[i];
    json run;
    run["run"] = r.run;
    run["seed"] = r.seed;
    run["values"] = r.values;
    run["expectations_failed"] = r.rep.expectation_failures;
    run["first_failure"] = r.rep.failures.empty() ? "" : r.rep.failures.front();
    run["csv"] = sweep_csv_row(r);
    run["json"] = json::parse(sweep_json_row(spec, r));
    run["timeseries"] = spec.sample_every ? timeseries_csv_rows(r) : std::vector<std::string>{};
    text += run.dump() + (i + 1 < rows.size() ? ",\n" : "\n");
  }
  text += "]}\n";
  std::fputs(text.c_str(), f);
}

namespace {

struct Shard {
  std::string path;
  std::string fingerprint, csv_header, timeseries_header;
  uint64_t runs_total = 0;
  std::vector<ShardRun> runs;
};

std::optional<Shard> read_shard(const std::string& path, std::string& err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err = fmt::format("{}: cannot open the shard file", path);
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string not_shard =
      fmt::format("{}: not a portsim shard (expected what 'portsim sweep … --shard I/N --out FILE.shard' writes)", path);
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::parse_error&) {
    err = not_shard + (ss.str().empty() ? ": the file is empty" : ": invalid JSON");
    return std::nullopt;
  }
  try {
    if (!j.is_object() || !j.contains("portsim_shard")) {
      err = not_shard;
      return std::nullopt;
    }
    if (j.at("portsim_shard") != kShardFormat) {
      err = fmt::format("{}: shard format {} is not the {} this portsim reads", path, j.at("portsim_shard").dump(), kShardFormat);
      return std::nullopt;
    }
    Shard s;
    s.path = path;
    s.fingerprint = j.at("fingerprint").get<std::string>();
    s.runs_total = j.at("runs_total").get<uint64_t>();
    if (s.runs_total == 0 || s.runs_total > 1'000'000'000) {
      err = fmt::format("{}: damaged shard (runs_total {})", path, s.runs_total);
      return std::nullopt;
    }
    s.csv_header = j.at("csv_header").get<std::string>();
    s.timeseries_header = j.at("timeseries_header").get<std::string>();
    for (const auto& r : j.at("runs")) {
      ShardRun x;
      x.run = r.at("run").get<uint64_t>();
      x.seed = r.at("seed").get<uint64_t>();
      x.values = r.at("values").get<std::vector<std::string>>();
      x.expectations_failed = r.at("expectations_failed").get<uint64_t>();
      x.first_failure = r.at("first_failure").get<std::string>();
      x.csv = r.at("csv").get<std::string>();
      x.json = r.at("json").dump();
      x.timeseries = r.at("timeseries").get<std::vector<std::string>>();
      if (x.run >= s.runs_total) {
        err = fmt::format("{}: run {} is past the sweep's {} runs: the shard is damaged", path, x.run, s.runs_total);
        return std::nullopt;
      }
      s.runs.push_back(std::move(x));
    }
    return s;
  } catch (const json::exception& e) {
    err = fmt::format("{}: damaged shard ({})", path, e.what());
    return std::nullopt;
  }
}

// "7", "7 and 9", "7, 9, 12 and 3 more".
std::string name_runs(const std::vector<uint64_t>& runs) {
  std::string s;
  const size_t shown = std::min<size_t>(runs.size(), 10);
  for (size_t i = 0; i < shown; ++i) s += (i ? (i + 1 == runs.size() ? " and " : ", ") : "") + std::to_string(runs[i]);
  if (runs.size() > shown) s += fmt::format(" and {} more", runs.size() - shown);
  return s;
}

std::string runs_arg(const std::vector<uint64_t>& runs) {
  std::string s;
  for (size_t i = 0; i < runs.size();) {
    size_t j = i;
    while (j + 1 < runs.size() && runs[j + 1] == runs[j] + 1) ++j;
    s += (s.empty() ? "" : ",") + (j == i ? std::to_string(runs[i]) : fmt::format("{}-{}", runs[i], runs[j]));
    i = j + 1;
  }
  return s;
}

}  // namespace

std::optional<MergedSweep> merge_shards(const std::vector<std::string>& paths, std::string& err) {
  if (paths.empty()) {
    err = "portsim merge: no shard files given";
    return std::nullopt;
  }
  MergedSweep m;
  std::vector<std::optional<ShardRun>> by_run;
  std::vector<std::string> where;  // which file gave each run
  std::string first_path;
  for (const auto& p : paths) {
    auto s = read_shard(p, err);
    if (!s) return std::nullopt;
    if (first_path.empty()) {
      first_path = p;
      m.fingerprint = s->fingerprint;
      m.runs_total = s->runs_total;
      m.csv_header = s->csv_header;
      m.timeseries_header = s->timeseries_header;
      by_run.resize(size_t(m.runs_total));
      where.resize(size_t(m.runs_total));
    } else if (s->fingerprint != m.fingerprint || s->runs_total != m.runs_total || s->csv_header != m.csv_header ||
               s->timeseries_header != m.timeseries_header) {
      err = fmt::format("{}: belongs to another sweep than {} (fingerprint {} vs {}: a different scenario, --vary, "
                        "--seeds or --timeseries)",
                        p, first_path, s->fingerprint, m.fingerprint);
      return std::nullopt;
    }
    for (auto& r : s->runs) {
      const size_t i = size_t(r.run);
      if (by_run[i]) {
        err = fmt::format("run {} appears twice: in {} and in {}", r.run, where[i], p);
        return std::nullopt;
      }
      where[i] = p;
      by_run[i] = std::move(r);
    }
  }
  std::vector<uint64_t> missing;
  for (size_t i = 0; i < by_run.size(); ++i)
    if (!by_run[i]) missing.push_back(i);
  if (!missing.empty()) {
    err = fmt::format("run{} {} {} missing from the shards (the sweep has {} runs, 0-{}); rerun with "
                      "'portsim sweep … --runs {} --out FILE.shard' and merge again",
                      missing.size() == 1 ? "" : "s", name_runs(missing), missing.size() == 1 ? "is" : "are",
                      m.runs_total, m.runs_total - 1, runs_arg(missing));
    return std::nullopt;
  }
  for (auto& r : by_run) m.runs.push_back(std::move(*r));
  return m;
}

void write_merged_csv(std::FILE* f, const MergedSweep& m) {
  fmt::print(f, "{}\n", m.csv_header);
  for (const auto& r : m.runs) fmt::print(f, "{}\n", r.csv);
}

void write_merged_json(std::FILE* f, const MergedSweep& m) {
  std::vector<std::string> rows;
  for (const auto& r : m.runs) rows.push_back(r.json);
  fmt::print(f, "{}", sweep_json_array(rows));
}

void write_merged_timeseries(std::FILE* f, const MergedSweep& m) {
  fmt::print(f, "{}\n", m.timeseries_header);
  for (const auto& r : m.runs)
    for (const auto& line : r.timeseries) fmt::print(f, "{}\n", line);
}

}  // namespace portsim::scenario
