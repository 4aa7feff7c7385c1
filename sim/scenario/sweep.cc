#include "portsim/scenario/sweep.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "portsim/base/errno_name.h"
#include "portsim/scenario/load.h"

namespace portsim::scenario {

using json = nlohmann::ordered_json;

std::optional<Vary> parse_vary(const std::string& arg, std::string& err) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0 || arg[0] != '/') {
    err = fmt::format("--vary '{}': expected POINTER=v1,v2,… with a JSON pointer such as /workloads/0/rate", arg);
    return std::nullopt;
  }
  Vary v;
  v.pointer = arg.substr(0, eq);
  std::string rest = arg.substr(eq + 1);
  size_t i = 0;
  while (i <= rest.size()) {
    const size_t comma = rest.find(',', i);
    const std::string item = rest.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    if (item.empty()) {
      err = fmt::format("--vary '{}': empty value", arg);
      return std::nullopt;
    }
    v.values.push_back(item);
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return v;
}

namespace {

// A --vary value as JSON. A kernel version stays a string ("3.10" is not the number 3.1).
json value_of(const std::string& text);
json vary_value(const std::string& pointer, const std::string& text) {
  if (pointer == "/kernel" || pointer.ends_with("/kernel")) return json(text);
  return value_of(text);
}

std::optional<uint64_t> parse_index(std::string_view s) {
  uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<std::vector<uint64_t>> parse_runs(const std::string& arg, std::string& err) {
  std::set<uint64_t> runs;
  size_t i = 0;
  while (true) {
    const size_t comma = arg.find(',', i);
    const std::string item = arg.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    const size_t dash = item.find('-');
    auto lo = parse_index(std::string_view(item).substr(0, dash));
    auto hi = dash == std::string::npos ? lo : parse_index(std::string_view(item).substr(dash + 1));
    if (!lo || !hi || *hi < *lo) {
      err = fmt::format("--runs '{}': expected run indices and ranges such as 3,7,10-20, got '{}'", arg, item);
      return std::nullopt;
    }
    if (*hi - *lo >= 100'000'000) {
      err = fmt::format("--runs '{}': the range {} is too long", arg, item);
      return std::nullopt;
    }
    for (uint64_t r = *lo; r <= *hi; ++r) runs.insert(r);
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return std::vector<uint64_t>(runs.begin(), runs.end());
}

std::optional<std::pair<uint64_t, uint64_t>> parse_shard(const std::string& arg, std::string& err) {
  const size_t slash = arg.find('/');
  if (slash != std::string::npos) {
    const auto i = parse_index(std::string_view(arg).substr(0, slash));
    const auto n = parse_index(std::string_view(arg).substr(slash + 1));
    if (i && n && *i < *n) return std::pair{i.value(), n.value()};
  }
  err = fmt::format("--shard '{}': expected I/N with 0 <= I < N, e.g. 0/4", arg);
  return std::nullopt;
}

namespace {

json value_of(const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception&) {  // a bare word, or a number beyond a double (1e400)
    return json(text);                 // is a string: the loader then names the path
  }
}

// Sets the value at an RFC 6901 pointer, creating missing object members on the way (a sysctl
// in a machine that has no "sysctls" yet); array elements must exist. Returns why not, or "".
std::string set_pointer(json& doc, const std::string& pointer, json value) {
  std::vector<std::string> tokens;
  for (size_t i = 1; i <= pointer.size();) {
    size_t slash = pointer.find('/', i);
    if (slash == std::string::npos) slash = pointer.size();
    std::string t;
    for (size_t k = i; k < slash; ++k) {
      if (pointer[k] == '~' && k + 1 < slash && (pointer[k + 1] == '0' || pointer[k + 1] == '1')) {
        t += pointer[++k] == '0' ? '~' : '/';
      } else if (pointer[k] == '~') {
        return "'~' must be followed by 0 or 1 (RFC 6901)";
      } else {
        t += pointer[k];
      }
    }
    tokens.push_back(t);
    i = slash + 1;
  }
  json* cur = &doc;
  std::string at;
  for (size_t k = 0; k < tokens.size(); ++k) {
    const std::string& t = tokens[k];
    const bool last = k + 1 == tokens.size();
    if (cur->is_object()) {
      if (last) {
        (*cur)[t] = std::move(value);
        return "";
      }
      if (!cur->contains(t)) (*cur)[t] = json::object();
      cur = &(*cur)[t];
    } else if (cur->is_array()) {
      auto idx = parse_index(t);
      if (!idx || *idx >= cur->size())
        return fmt::format("{} has {} element{}, no [{}]", at.empty() ? "the document" : at, cur->size(),
                           cur->size() == 1 ? "" : "s", t);
      if (last) {
        (*cur)[*idx] = std::move(value);
        return "";
      }
      cur = &(*cur)[*idx];
    } else {
      return fmt::format("{} is not an object or an array", at.empty() ? "the document" : at);
    }
    at += "/" + t;
  }
  doc = std::move(value);  // the empty pointer: the whole document
  return "";
}

std::string hex64(uint64_t h) { return fmt::format("{:016x}", h); }

}  // namespace

std::optional<SweepPlan> plan_sweep(const SweepSpec& spec, std::string& err) {
  std::string text;  // read once: "-" (standard input) works too, with the OS error if it fails
  if (!read_scenario_file(spec.file, text, err)) return std::nullopt;
  auto base = load_scenario_text(text, spec.file == "-" ? "<stdin>" : spec.file, {}, spec.kernel);
  if (base.error) {
    err = base.error->message;
    return std::nullopt;
  }
  const json doc = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  SweepPlan plan;
  // Every combination of the varied values, first --vary slowest.
  plan.combos = {{}};
  for (const auto& v : spec.vary) {
    std::vector<std::vector<size_t>> next;
    for (const auto& c : plan.combos)
      for (size_t i = 0; i < v.values.size(); ++i) {
        auto n = c;
        n.push_back(i);
        next.push_back(n);
      }
    plan.combos = std::move(next);
  }
  for (const auto& c : plan.combos) {
    json d = doc;
    std::string label;
    for (size_t k = 0; k < spec.vary.size(); ++k) {
      const auto& v = spec.vary[k];
      if (const std::string why = set_pointer(d, v.pointer, vary_value(v.pointer, v.values[c[k]])); !why.empty()) {
        err = fmt::format("{}: --vary {}: the pointer does not lead into the scenario ({})", spec.file, v.pointer, why);
        return std::nullopt;
      }
      label += fmt::format(" {}={}", v.pointer, v.values[c[k]]);
    }
    auto lr = load_scenario_text(d.dump(), spec.file + " [with" + label + "]", {}, spec.kernel);
    if (lr.error) {
      err = lr.error->message;
      return std::nullopt;
    }
    plan.variants.push_back(std::move(*lr.scenario));
  }
  const uint64_t total = uint64_t(plan.variants.size()) * spec.seeds;
  for (uint64_t r = 0; r < total; ++r) {
    const size_t v = size_t(r / spec.seeds);
    RunPlan p{r, {}, plan.variants[v].seed + r % spec.seeds};
    for (size_t k = 0; k < spec.vary.size(); ++k) p.values.push_back(spec.vary[k].values[plan.combos[v][k]]);
    plan.all.push_back(std::move(p));
  }
  for (uint64_t r : spec.runs)
    if (r >= total) {
      err = fmt::format("--runs: run {} does not exist (the sweep has {} run{}: 0-{})", r, total, total == 1 ? "" : "s",
                        total - 1);
      return std::nullopt;
    }
  const uint64_t n = std::max<uint64_t>(1, spec.shard_count);
  auto take = [&](uint64_t r) {
    if (r % n == spec.shard_index) plan.selected.push_back(r);
  };
  if (spec.runs.empty())
    for (uint64_t r = 0; r < total; ++r) take(r);
  else
    for (uint64_t r : spec.runs) take(r);
  // The fingerprint: what makes two shards parts of one sweep. The scenario as parsed (comments
  // and layout aside), every --vary with its values, the seed count and the sampling interval.
  std::string id = "portsim-sweep 1\n" + doc.dump() + "\n";
  for (const auto& v : spec.vary) {
    id += v.pointer;
    for (const auto& x : v.values) id += "\x1f" + x;
    id += "\n";
  }
  id += fmt::format("seeds {}\ntimeseries {}\n", spec.seeds, spec.sample_every);
  plan.fingerprint = hex64(XXH64(id.data(), id.size(), 0));
  return plan;
}

std::optional<std::vector<SweepRow>> run_sweep(const SweepSpec& spec, const SweepPlan& plan, std::string& err,
                                               const std::function<void(size_t, size_t)>& progress) {
  const auto& sel = plan.selected;
  std::vector<SweepRow> rows(sel.size());
  std::atomic<size_t> next{0}, done{0};
  std::mutex progress_mu;
  auto worker = [&] {
    for (size_t j; (j = next++) < sel.size();) {
      const RunPlan& p = plan.all[sel[j]];
      RunOptions ro;
      ro.seed = p.seed;
      ro.sample_every = spec.sample_every;
      const auto t0 = std::chrono::steady_clock::now();
      Runner runner(plan.variants[size_t(p.run / spec.seeds)], ro);
      rows[j].rep = runner.run();
      rows[j].wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rows[j].run = p.run;
      rows[j].seed = p.seed;
      rows[j].values = p.values;
      const size_t d = ++done;
      if (progress) {
        std::lock_guard<std::mutex> lock(progress_mu);
        progress(d, sel.size());
      }
    }
  };
  std::vector<std::thread> pool;
  const unsigned n = std::max(1u, std::min<unsigned>(spec.jobs, unsigned(std::min<size_t>(sel.size(), 1u << 16))));
  for (unsigned i = 0; i < n; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  for (const auto& r : rows)
    if (!r.rep.runtime_error.empty()) {
      err = r.rep.runtime_error;
      return std::nullopt;
    }
  return rows;
}

std::optional<std::vector<SweepRow>> run_sweep(const SweepSpec& spec, std::string& err,
                                               const std::function<void(size_t, size_t)>& progress) {
  auto plan = plan_sweep(spec, err);
  if (!plan) return std::nullopt;
  return run_sweep(spec, *plan, err, progress);
}

namespace {

struct Quantiles {
  double mean = 0;
  uint32_t p50 = 0, p99 = 0, max = 0;
};

Quantiles quantiles(const ExaminedCounts& v) {
  Quantiles q;
  if (v.empty()) return q;
  double sum = 0;  // exact: integers below 2^53, in any order
  for (size_t x = 0; x < v.counts.size(); ++x) sum += double(x) * double(v.counts[x]);
  for (uint32_t x : v.large) sum += x;
  q.mean = sum / double(v.size());
  auto at = [&](double p) { return v.at_sorted(std::min<uint64_t>(v.size() - 1, uint64_t(p * double(v.size() - 1) + 0.5))); };
  q.p50 = at(0.5);
  q.p99 = at(0.99);
  q.max = v.at_sorted(v.size() - 1);
  return q;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

uint64_t count_of(const std::map<std::string, uint64_t>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

std::string vary_prefix(const SweepSpec& spec) {
  std::string s;
  for (const auto& v : spec.vary) s += csv_field(v.pointer) + ",";
  return s;
}

}  // namespace

const std::vector<std::string>& sweep_errno_columns() {
  static const std::vector<std::string> cols = [] {
    std::vector<std::string> v;
    for (auto n : known_errno_names())
      if (n != "EINPROGRESS") v.emplace_back(n);  // a connect's outcome is never "in progress"
    std::sort(v.begin(), v.end());
    return v;
  }();
  return cols;
}

std::string sweep_csv_header(const SweepSpec& spec) {
  std::string h = vary_prefix(spec) + "seed,connects,connects_ok";
  for (const auto& e : sweep_errno_columns()) h += "," + e;
  h += ",first_eaddrnotavail_s,examined_mean,examined_p50,examined_p99,examined_max,"
       "peak_established,peak_time_wait,tw_recycled,tw_overflow,requests,requests_failed,expectations_failed,"
       "virtual_s,wall_s";
  return h;
}

std::string sweep_csv_row(const SweepRow& r) {
  std::string s;
  for (const auto& v : r.values) s += csv_field(v) + ",";
  const auto& rep = r.rep;
  s += fmt::format("{},{},{}", r.seed, rep.connects, rep.connects_ok);
  for (const auto& e : sweep_errno_columns()) s += fmt::format(",{}", count_of(rep.connect_errors, e));
  const Quantiles q = quantiles(rep.examined);
  s += fmt::format(",{},{:.3f},{},{},{},{},{},{},{},{},{},{},{:.9f},{:.3f}",
                   rep.first_eaddrnotavail ? fmt::format("{:.9f}", double(*rep.first_eaddrnotavail) / 1e9) : "",
                   q.mean, q.p50, q.p99, q.max, rep.st.established_peak, rep.st.time_wait_peak, rep.st.tw_recycled,
                   rep.st.tw_overflow, rep.requests, rep.requests_failed, rep.expectation_failures,
                   double(rep.virtual_end) / 1e9, r.wall_s);
  return s;
}

std::string sweep_json_row(const SweepSpec& spec, const SweepRow& r) {
  json row;
  json vary = json::object();
  for (size_t k = 0; k < spec.vary.size(); ++k) vary[spec.vary[k].pointer] = vary_value(spec.vary[k].pointer, r.values[k]);
  row["vary"] = vary;
  row["seed"] = r.seed;
  const auto& rep = r.rep;
  row["connects"] = rep.connects;
  row["connects_ok"] = rep.connects_ok;
  json errs = json::object();
  for (const auto& [e, n] : rep.connect_errors) errs[e] = n;
  row["errors"] = errs;
  row["first_eaddrnotavail_s"] = rep.first_eaddrnotavail ? json(double(*rep.first_eaddrnotavail) / 1e9) : json(nullptr);
  const Quantiles q = quantiles(rep.examined);
  row["examined"] = {{"mean", q.mean}, {"p50", q.p50}, {"p99", q.p99}, {"max", q.max}};
  row["peak_established"] = rep.st.established_peak;
  row["peak_time_wait"] = rep.st.time_wait_peak;
  row["tw_recycled"] = rep.st.tw_recycled;
  row["tw_overflow"] = rep.st.tw_overflow;
  row["requests"] = rep.requests;
  row["requests_failed"] = rep.requests_failed;
  row["expectations_failed"] = rep.expectation_failures;
  row["virtual_s"] = double(rep.virtual_end) / 1e9;
  row["wall_s"] = r.wall_s;
  return row.dump();
}

std::string sweep_json_array(const std::vector<std::string>& rows) {
  json out = json::array();
  for (const auto& r : rows) out.push_back(json::parse(r));
  return out.dump(1) + "\n";
}

std::string timeseries_csv_header(const SweepSpec& spec) {
  std::string h = vary_prefix(spec) + "seed,t_s,established,time_wait,bound_ports,connects_ok";
  for (const auto& e : sweep_errno_columns()) h += "," + e;
  return h;
}

std::vector<std::string> timeseries_csv_rows(const SweepRow& r) {
  std::vector<std::string> out;
  std::string prefix;
  for (const auto& v : r.values) prefix += csv_field(v) + ",";
  static const std::map<std::string, uint64_t> none;
  const Sample* prev = nullptr;
  for (const auto& s : r.rep.samples) {
    // Gauges at the sample instant; connect() outcomes since the previous sample.
    std::string line = prefix + fmt::format("{},{:.6f},{},{},{},{}", r.seed, double(s.t) / 1e9, s.established,
                                            s.time_wait, s.bound_ports, s.connects_ok - (prev ? prev->connects_ok : 0));
    for (const auto& e : sweep_errno_columns())
      line += fmt::format(",{}", count_of(s.connect_errors, e) - count_of(prev ? prev->connect_errors : none, e));
    out.push_back(std::move(line));
    prev = &s;
  }
  return out;
}

void write_sweep_csv(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows) {
  fmt::print(f, "{}\n", sweep_csv_header(spec));
  for (const auto& r : rows) fmt::print(f, "{}\n", sweep_csv_row(r));
}

void write_sweep_json(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows) {
  std::vector<std::string> js;
  for (const auto& r : rows) js.push_back(sweep_json_row(spec, r));
  fmt::print(f, "{}", sweep_json_array(js));
}

void write_timeseries_csv(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows) {
  fmt::print(f, "{}\n", timeseries_csv_header(spec));
  for (const auto& r : rows)
    for (const auto& line : timeseries_csv_rows(r)) fmt::print(f, "{}\n", line);
}

}  // namespace portsim::scenario
