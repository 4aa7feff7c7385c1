#include "portsim/scenario/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

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

json value_of(const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception&) {  // a bare word, or a number beyond a double (1e400)
    return json(text);                 // is a string: the loader then names the path
  }
}

struct Job {
  size_t variant;
  uint64_t seed;
};

}  // namespace

std::optional<std::vector<SweepRow>> run_sweep(const SweepSpec& spec, std::string& err,
                                               const std::function<void(size_t, size_t)>& progress) {
  std::string text;
  if (!read_scenario_file(spec.file, text, err)) return std::nullopt;  // with the OS error
  auto base = load_scenario_text(text, spec.file);
  if (base.error) {
    err = base.error->message;
    return std::nullopt;
  }
  const json doc = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  // Every combination of the varied values, first --vary slowest.
  std::vector<std::vector<size_t>> combos{{}};
  for (const auto& v : spec.vary) {
    std::vector<std::vector<size_t>> next;
    for (const auto& c : combos)
      for (size_t i = 0; i < v.values.size(); ++i) {
        auto n = c;
        n.push_back(i);
        next.push_back(n);
      }
    combos = std::move(next);
  }
  std::vector<Scenario> scenarios;
  for (const auto& c : combos) {
    json d = doc;
    std::string label;
    for (size_t k = 0; k < spec.vary.size(); ++k) {
      const auto& v = spec.vary[k];
      try {
        const json::json_pointer ptr(v.pointer);
        if (!d.contains(ptr.parent_pointer())) throw std::out_of_range("no parent");
        d[ptr] = value_of(v.values[c[k]]);
      } catch (const std::exception&) {
        err = fmt::format("{}: --vary {}: the pointer does not lead into the scenario", spec.file, v.pointer);
        return std::nullopt;
      }
      label += fmt::format(" {}={}", v.pointer, v.values[c[k]]);
    }
    auto lr = load_scenario_text(d.dump(), spec.file + " [with" + label + "]");
    if (lr.error) {
      err = lr.error->message;
      return std::nullopt;
    }
    scenarios.push_back(std::move(*lr.scenario));
  }
  std::vector<Job> jobs;
  for (size_t v = 0; v < scenarios.size(); ++v)
    for (uint64_t s = 0; s < spec.seeds; ++s) jobs.push_back({v, scenarios[v].seed + s});
  std::vector<SweepRow> rows(jobs.size());
  std::atomic<size_t> next{0}, done{0};
  std::mutex progress_mu;
  auto worker = [&] {
    for (size_t j; (j = next++) < jobs.size();) {
      const Job& job = jobs[j];
      RunOptions ro;
      ro.seed = job.seed;
      ro.sample_every = spec.sample_every;
      const auto t0 = std::chrono::steady_clock::now();
      Runner runner(scenarios[job.variant], ro);
      rows[j].rep = runner.run();
      rows[j].wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rows[j].seed = job.seed;
      for (size_t k = 0; k < spec.vary.size(); ++k) rows[j].values.push_back(spec.vary[k].values[combos[job.variant][k]]);
      const size_t d = ++done;
      if (progress) {
        std::lock_guard<std::mutex> lock(progress_mu);
        progress(d, jobs.size());
      }
    }
  };
  std::vector<std::thread> pool;
  const unsigned n = std::max(1u, std::min<unsigned>(spec.jobs, unsigned(jobs.size())));
  for (unsigned i = 0; i < n; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  for (const auto& r : rows)
    if (!r.rep.runtime_error.empty()) {
      err = r.rep.runtime_error;
      return std::nullopt;
    }
  return rows;
}

namespace {

struct Quantiles {
  double mean = 0;
  uint32_t p50 = 0, p99 = 0, max = 0;
};

Quantiles quantiles(std::vector<uint32_t> v) {
  Quantiles q;
  if (v.empty()) return q;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (uint32_t x : v) sum += x;
  q.mean = sum / double(v.size());
  auto at = [&](double p) { return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))]; };
  q.p50 = at(0.5);
  q.p99 = at(0.99);
  q.max = v.back();
  return q;
}

std::vector<std::string> errnos_seen(const std::vector<SweepRow>& rows) {
  std::set<std::string> s;
  for (const auto& r : rows)
    for (const auto& [e, n] : r.rep.connect_errors) s.insert(e);
  return {s.begin(), s.end()};
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

void write_sweep_csv(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows) {
  const auto errs = errnos_seen(rows);
  for (const auto& v : spec.vary) fmt::print(f, "{},", csv_field(v.pointer));
  fmt::print(f, "seed,connects,connects_ok");
  for (const auto& e : errs) fmt::print(f, ",{}", e);
  fmt::print(f, ",first_eaddrnotavail_s,examined_mean,examined_p50,examined_p99,examined_max,"
                "peak_established,peak_time_wait,tw_recycled,tw_overflow,requests,requests_failed,virtual_s,wall_s\n");
  for (const auto& r : rows) {
    for (const auto& v : r.values) fmt::print(f, "{},", csv_field(v));
    const auto& rep = r.rep;
    fmt::print(f, "{},{},{}", r.seed, rep.connects, rep.connects_ok);
    for (const auto& e : errs) {
      auto it = rep.connect_errors.find(e);
      fmt::print(f, ",{}", it == rep.connect_errors.end() ? 0 : it->second);
    }
    const Quantiles q = quantiles(rep.examined);
    fmt::print(f, ",{},{:.3f},{},{},{},{},{},{},{},{},{},{:.9f},{:.3f}\n",
               rep.first_eaddrnotavail ? fmt::format("{:.9f}", double(*rep.first_eaddrnotavail) / 1e9) : "",
               q.mean, q.p50, q.p99, q.max, rep.st.established_peak, rep.st.time_wait_peak, rep.st.tw_recycled,
               rep.st.tw_overflow, rep.requests, rep.requests_failed, double(rep.virtual_end) / 1e9, r.wall_s);
  }
}

void write_sweep_json(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows) {
  json out = json::array();
  for (const auto& r : rows) {
    json row;
    json vary = json::object();
    for (size_t k = 0; k < spec.vary.size(); ++k) vary[spec.vary[k].pointer] = value_of(r.values[k]);
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
    row["virtual_s"] = double(rep.virtual_end) / 1e9;
    row["wall_s"] = r.wall_s;
    out.push_back(row);
  }
  fmt::print(f, "{}\n", out.dump(1));
}

void write_timeseries_csv(std::FILE* f, const SweepSpec& spec, const std::vector<SweepRow>& rows) {
  for (const auto& v : spec.vary) fmt::print(f, "{},", csv_field(v.pointer));
  fmt::print(f, "seed,t_s,established,time_wait,bound_ports\n");
  for (const auto& r : rows)
    for (const auto& s : r.rep.samples) {
      for (const auto& v : r.values) fmt::print(f, "{},", csv_field(v));
      fmt::print(f, "{},{:.6f},{},{},{}\n", r.seed, double(s.t) / 1e9, s.established, s.time_wait, s.bound_ports);
    }
}

}  // namespace portsim::scenario
