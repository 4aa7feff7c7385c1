// portsim: the command table (ninja's kTools). Each command owns its options and returns an
// exit status: 0 ok, 1 an expectation failed, 2 bad input or usage.
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "portsim/base/errno_name.h"
#include "portsim/base/output_file.h"
#include "portsim/base/spellcheck.h"
#include "portsim/net/kernel_profile.h"
#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"
#include "portsim/scenario/sweep.h"

#include <thread>
#include <unistd.h>

namespace po = boost::program_options;
using namespace portsim;

namespace {

enum ExitStatus { kExitOk = 0, kExitExpectationFailed = 1, kExitBadInput = 2 };

long peak_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

// Parses argv for one command; prints help or a usage error. Returns -1 to continue.
int parse(const char* cmd, const char* synopsis, po::options_description& opts,
          po::positional_options_description& pos, int argc, char** argv, po::variables_map& vm) {
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: portsim " << cmd << " " << synopsis << "\n\n" << opts;
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "portsim " << cmd << ": " << e.what() << " (see 'portsim " << cmd << " --help')\n";
    return kExitBadInput;
  }
  return -1;
}

std::string kernel_opt(const po::variables_map& vm) {
  return vm.count("kernel") ? vm["kernel"].as<std::string>() : std::string();
}

int cmd_check(int argc, char** argv) {
  po::options_description opts("options");
  opts.add_options()("help,h", "this help")("scenario", po::value<std::string>()->required(), "scenario file")
      ("kernel,k", po::value<std::string>(), "every machine runs this kernel profile (see 'portsim kernels')");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (int rc = parse("check", "SCENARIO [--kernel X.Y]", opts, pos, argc, argv, vm); rc >= 0) return rc;
  auto lr = scenario::load_scenario_file(vm["scenario"].as<std::string>(), kernel_opt(vm));
  if (lr.error) {
    std::cerr << lr.error->message << "\n";
    return kExitBadInput;
  }
  fmt::print("{}: ok ({} machines, {} timeline entries)\n", lr.scenario->file, lr.scenario->machines.size(),
             lr.scenario->timeline.size());
  return kExitOk;
}

int cmd_run(int argc, char** argv) {
  po::options_description opts("options");
  opts.add_options()("help,h", "this help")
      ("scenario", po::value<std::string>()->required(), "scenario file (JSON, comments allowed)")
      ("trace,t", po::value<std::string>(), "write the JSON Lines trace to this file")
      ("seed,s", po::value<uint64_t>(), "override the scenario's seed")
      ("explain,e", "narrate each call's kernel steps (function by function) on stderr")
      ("trace-sample", po::value<uint64_t>(), "trace only one generated (workload) connect in N")
      ("trace-level", po::value<std::string>()->default_value("all"),
       "all: calls, packets, states, tables, timers; calls: call records only")
      ("quiet,q", "print only expectation failures and errors")
      ("kernel,k", po::value<std::string>(), "every machine runs this kernel profile, e.g. 4.19 or 5.10.119 (see 'portsim kernels')");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (int rc = parse("run", "SCENARIO [--trace FILE] [--seed N] [--explain] [--kernel X.Y]", opts, pos, argc, argv, vm); rc >= 0)
    return rc;
  auto lr = scenario::load_scenario_file(vm["scenario"].as<std::string>(), kernel_opt(vm));
  if (lr.error) {
    std::cerr << lr.error->message << "\n";
    return kExitBadInput;
  }
  scenario::RunOptions ro;
  if (vm.count("trace")) ro.trace_path = vm["trace"].as<std::string>();
  if (vm.count("seed")) ro.seed = vm["seed"].as<uint64_t>();
  ro.explain = vm.count("explain") > 0;
  const std::string level = vm["trace-level"].as<std::string>();
  if (level != "all" && level != "calls") {
    std::cerr << "portsim run: --trace-level: expected all or calls, got '" << level << "'\n";
    return kExitBadInput;
  }
  ro.trace_calls_only = level == "calls";
  if (vm.count("trace-sample")) {
    ro.trace_sample = vm["trace-sample"].as<uint64_t>();
    if (ro.trace_sample == 0) {
      std::cerr << "portsim run: --trace-sample must be at least 1\n";
      return kExitBadInput;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  scenario::Runner runner(*lr.scenario, ro);
  const scenario::RunReport rep = runner.run();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!rep.runtime_error.empty()) {
    std::cerr << rep.runtime_error << "\n";
    return kExitBadInput;
  }
  for (const auto& f : rep.failures) std::cerr << f << "\n";
  if (rep.expectation_failures > rep.failures.size())
    std::cerr << fmt::format("... and {} more expectation failures\n", rep.expectation_failures - rep.failures.size());
  if (!vm.count("quiet")) {
    const auto& sc = *lr.scenario;
    fmt::print("portsim run {} (seed {}, kernel {})\n", sc.file, ro.seed.value_or(sc.seed), sc.kernel);
    std::string errs;
    for (const auto& [e, n] : rep.errors) errs += fmt::format(", {} {}", e, n);
    fmt::print("  calls        {} (ok {}{})\n", rep.calls, rep.calls_ok, errs);
    if (!rep.examined.empty())
      fmt::print("  autobind     {} scans, {} candidates examined ({:.1f} per scan)\n", rep.examined.size(),
                 rep.st.candidates, double(rep.st.candidates) / double(rep.examined.size()));
    if (rep.connects || rep.requests) {
      std::string gerrs;
      for (const auto& [e, n] : rep.connect_errors) gerrs += fmt::format(", {} {}", e, n);
      fmt::print("  connects     {} (ok {}{}){}{}\n", rep.connects, rep.connects_ok, gerrs,
                 rep.requests ? fmt::format("; pooled requests {} (failed {})", rep.requests, rep.requests_failed) : "",
                 rep.first_eaddrnotavail ? fmt::format("; first EADDRNOTAVAIL at {}", format_duration(*rep.first_eaddrnotavail)) : "");
    }
    fmt::print("  ESTABLISHED  peak {}\n", rep.st.established_peak);
    fmt::print("  TIME_WAIT    peak {}, recycled {}, overflow {}\n", rep.st.time_wait_peak, rep.st.tw_recycled,
               rep.st.tw_overflow);
    fmt::print("  virtual time {}\n", format_duration(rep.virtual_end));
    fmt::print("  wall time    {:.3f} s, {:.0f} events/s, peak RSS {} MiB\n", wall,
               wall > 0 ? double(rep.events) / wall : 0.0, peak_rss_kib() / 1024);
    fmt::print("  expectations {} held, {} failed\n", rep.expectations - rep.expectation_failures,
               rep.expectation_failures);
  }
  return rep.expectation_failures ? kExitExpectationFailed : kExitOk;
}

// Writes `path` completely or not at all (OutputFile).
bool write_file(const std::string& path, const std::function<void(std::FILE*)>& fill) {
  OutputFile out;
  if (!out.open(path)) return false;
  fill(out.get());
  return out.commit();
}

int cmd_sweep(int argc, char** argv) {
  po::options_description opts("options");
  opts.add_options()("help,h", "this help")
      ("scenario", po::value<std::string>()->required(), "scenario file")
      ("vary", po::value<std::vector<std::string>>()->composing(),
       "POINTER=v1,v2,… — set the JSON value at this RFC 6901 pointer (repeatable: the cartesian product runs)")
      ("seeds", po::value<uint64_t>()->default_value(1), "runs per variant, seeds scenario.seed … +N-1")
      ("out,o", po::value<std::vector<std::string>>()->composing(), "results file(s): .csv or .json")
      ("jobs,j", po::value<unsigned>()->default_value(std::max(1u, std::thread::hardware_concurrency())),
       "runs in parallel")
      ("timeseries", po::value<std::string>(), "sample ESTABLISHED/TIME_WAIT/bound ports every DURATION of virtual time")
      ("timeseries-out", po::value<std::string>(), "where the samples go (CSV)")
      ("kernel,k", po::value<std::string>(), "every run uses this kernel profile (or vary it: --vary /kernel=4.19,6.18)");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (int rc = parse("sweep", "SCENARIO --vary POINTER=v1,v2 [--vary …] [--seeds N] --out results.csv", opts, pos,
                     argc, argv, vm); rc >= 0)
    return rc;
  scenario::SweepSpec spec;
  spec.file = vm["scenario"].as<std::string>();
  spec.kernel = kernel_opt(vm);
  spec.seeds = vm["seeds"].as<uint64_t>();
  spec.jobs = vm["jobs"].as<unsigned>();
  if (spec.seeds == 0 || spec.seeds > 1'000'000) {
    std::cerr << "portsim sweep: --seeds must be in [1, 1000000]\n";
    return kExitBadInput;
  }
  if (spec.jobs == 0) {
    std::cerr << "portsim sweep: --jobs must be at least 1\n";
    return kExitBadInput;
  }
  std::string err;
  if (vm.count("vary"))
    for (const auto& a : vm["vary"].as<std::vector<std::string>>()) {
      auto v = scenario::parse_vary(a, err);
      if (!v) {
        std::cerr << "portsim sweep: " << err << "\n";
        return kExitBadInput;
      }
      spec.vary.push_back(*v);
    }
  std::vector<std::string> outs;
  if (vm.count("out")) outs = vm["out"].as<std::vector<std::string>>();
  for (const auto& o : outs)
    if (!(o.ends_with(".csv") || o.ends_with(".json"))) {
      std::cerr << "portsim sweep: --out " << o << ": expected a .csv or .json file name\n";
      return kExitBadInput;
    }
  if (vm.count("timeseries")) {
    auto d = parse_duration(vm["timeseries"].as<std::string>());
    if (!d || *d == 0) {
      std::cerr << "portsim sweep: --timeseries: expected a duration like \"1s\"\n";
      return kExitBadInput;
    }
    if (!vm.count("timeseries-out")) {
      std::cerr << "portsim sweep: --timeseries needs --timeseries-out FILE.csv\n";
      return kExitBadInput;
    }
    spec.sample_every = *d;
  }
  const bool tty = isatty(2);
  auto rows = scenario::run_sweep(spec, err, [&](size_t done, size_t total) {
    if (tty) fmt::print(stderr, "\rportsim sweep: {}/{} runs", done, total);
  });
  if (tty) fmt::print(stderr, "\n");
  if (!rows) {
    std::cerr << err << "\n";
    return kExitBadInput;
  }
  for (const auto& o : outs) {
    const bool ok = write_file(o, [&](std::FILE* f) {
      if (o.ends_with(".csv")) scenario::write_sweep_csv(f, spec, *rows);
      else scenario::write_sweep_json(f, spec, *rows);
    });
    if (!ok) {
      std::cerr << "portsim sweep: cannot write " << o << "\n";
      return kExitBadInput;
    }
  }
  if (vm.count("timeseries-out") &&
      !write_file(vm["timeseries-out"].as<std::string>(), [&](std::FILE* f) { scenario::write_timeseries_csv(f, spec, *rows); })) {
    std::cerr << "portsim sweep: cannot write " << vm["timeseries-out"].as<std::string>() << "\n";
    return kExitBadInput;
  }
  if (outs.empty()) scenario::write_sweep_csv(stdout, spec, *rows);
  return kExitOk;
}

// portsim kernels [X]: the profiles, or what X does differently from 6.18 (each with its commit).
int cmd_kernels(int argc, char** argv) {
  po::options_description opts("options");
  opts.add_options()("help,h", "this help")("version", po::value<std::string>(), "a kernel: X.Y or X.Y.Z")
      ("all", "print every behaviour of the kernel, not only what differs from 6.18");
  po::positional_options_description pos;
  pos.add("version", 1);
  po::variables_map vm;
  if (int rc = parse("kernels", "[X.Y | X.Y.Z] [--all]", opts, pos, argc, argv, vm); rc >= 0) return rc;
  const net::kernel_profile& base = net::default_kernel_profile();
  if (!vm.count("version")) {
    fmt::print("kernel profiles (\"X.Y\" = the latest point release of the branch; \"X.Y.Z\" = that exact release):\n");
    std::string err;
    for (const auto& n : net::kernel_profile_names()) {
      const auto k = net::find_kernel_profile(n, err);
      const auto released = net::released_connect_era(n).substr(0, 2), latest = net::to_string(k->connect).substr(0, 2);
      fmt::print("  {:<5} {:<40} connect {}{}, bind(0) {}\n", n, k->covers, released,
                 released == latest ? std::string() : fmt::format(" ({} in late point releases)", latest),
                 net::to_string(k->bind).substr(0, 2));
    }
    fmt::print("default: {}. 'portsim kernels X' lists what X does differently, each with its commit.\n", base.name);
    return kExitOk;
  }
  std::string err;
  const auto k = net::find_kernel_profile(vm["version"].as<std::string>(), err);
  if (!k) {
    std::cerr << "portsim kernels: " << err << "\n";
    return kExitBadInput;
  }
  fmt::print("Linux {} ({})\n", k->name, k->covers);
  if (const auto bp = net::kernel_backports(k->name); !bp.empty()) {
    fmt::print("point releases of this branch that changed a behaviour (KERNEL-PROFILES §3):\n");
    for (const auto& b : bp) fmt::print("  {}\n", b);
  }
  if (vm.count("all")) {
    for (const auto& b : net::describe(*k)) fmt::print("  {:<58} {}\n      [{}]\n", b.name, b.value, b.commit);
    return kExitOk;
  }
  const auto d = net::diff(*k, base);
  if (d.empty()) fmt::print("  behaves as {} in everything portsim models\n", base.name);
  else fmt::print("differs from {} in {} behaviours:\n", base.name, d.size());
  for (const auto& b : d)
    fmt::print("  {}\n      {}: {}\n      {}: {}\n      commit: {}\n", b.name, k->name, b.value, base.name, b.base_value, b.commit);
  return kExitOk;
}

// One call's outcome under one kernel, read back from the call records of its trace.
struct CallOutcome {
  std::string label, op, result;
  bool ok = false;
  int64_t t = 0;
  uint16_t port = 0;
};

int cmd_compare(int argc, char** argv) {
  po::options_description opts("options");
  opts.add_options()("help,h", "this help")("scenario", po::value<std::string>()->required(), "scenario file")
      ("kernels", po::value<std::string>()->required(), "two or more kernels, comma-separated: 4.19.0,6.18")
      ("seed,s", po::value<uint64_t>(), "override the scenario's seed")
      ("all", "list every call, not only those whose outcome differs");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (int rc = parse("compare", "SCENARIO --kernels A,B[,C…] [--all]", opts, pos, argc, argv, vm); rc >= 0) return rc;
  std::vector<std::string> kernels;
  for (std::string_view ks = vm["kernels"].as<std::string>(); !ks.empty();) {
    const size_t c = ks.find(',');
    kernels.emplace_back(ks.substr(0, c));
    ks = c == std::string_view::npos ? std::string_view() : ks.substr(c + 1);
  }
  if (kernels.size() < 2) {
    std::cerr << "portsim compare: --kernels needs two or more kernels, e.g. 4.19.0,6.18\n";
    return kExitBadInput;
  }
  const std::string file = vm["scenario"].as<std::string>();
  std::vector<std::map<std::string, CallOutcome>> outcomes(kernels.size());
  std::vector<std::string> order;  // keys in the first kernel's completion order
  std::vector<scenario::RunReport> reps;
  for (size_t ki = 0; ki < kernels.size(); ++ki) {
    auto lr = scenario::load_scenario_file(file, kernels[ki]);
    if (lr.error) {
      std::cerr << lr.error->message << "\n";
      return kExitBadInput;
    }
    char tmpl[] = "/tmp/portsim-compare-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd < 0) {
      std::cerr << "portsim compare: cannot create a temporary trace file\n";
      return kExitBadInput;
    }
    close(fd);
    scenario::RunOptions ro;
    ro.trace_path = tmpl;
    ro.trace_calls_only = true;
    if (vm.count("seed")) ro.seed = vm["seed"].as<uint64_t>();
    scenario::Runner runner(*lr.scenario, ro);
    reps.push_back(runner.run());
    if (!reps.back().runtime_error.empty()) {
      std::remove(tmpl);
      std::cerr << reps.back().runtime_error << "\n";
      return kExitBadInput;
    }
    std::ifstream in(tmpl);
    std::string line;
    std::map<std::string, int> seen;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || j.value("ev", "") != "call") continue;
      CallOutcome o;
      o.op = j.value("op", "");
      const std::string who = j.contains("workload") ? j.value("workload", "") : j.value("sock", "");
      std::string key = fmt::format("{}#{}", j.value("call", -1), j.value("rep", 0));
      if (j.contains("workload")) key = fmt::format("{}#{}", j.value("workload", ""), j.value("rep", 0));
      key += fmt::format("/{}", seen[key]++);  // a call may be recorded more than once (rare)
      o.label = fmt::format("{} {} {}", o.op, who, j.value("to", j.value("addr", j.value("name", ""))));
      o.t = j.value("t", int64_t(0));
      o.ok = j.value("ret", -1) == 0;
      const std::string local = j.value("local", "");
      if (const size_t colon = local.rfind(':'); colon != std::string::npos) o.port = uint16_t(std::stoul(local.substr(colon + 1)));
      o.result = o.ok ? (o.port && (o.op == "connect" || o.op == "bind" || o.op == "listen")
                             ? fmt::format("ok :{} {}", o.port, o.port % 2 ? "odd" : "even")
                             : std::string("ok"))
                      : j.value("errno", std::string("E?"));
      if (ki == 0) order.push_back(key);
      outcomes[ki][key] = o;
    }
    std::remove(tmpl);
  }
  fmt::print("portsim compare {} — kernels {}\n\n", file, vm["kernels"].as<std::string>());
  // Per call: errno / port and parity / completion time.
  std::string head = fmt::format("  {:<40}", "call");
  for (const auto& k : kernels) head += fmt::format(" {:<30}", k);
  size_t differ = 0, shown = 0;
  std::vector<std::string> lines;
  for (const auto& key : order) {
    bool same = true;
    const CallOutcome& a = outcomes[0][key];
    for (size_t ki = 1; ki < kernels.size(); ++ki) {
      auto it = outcomes[ki].find(key);
      if (it == outcomes[ki].end() || it->second.result != a.result || it->second.t != a.t) same = false;
    }
    if (!same) ++differ;
    if (same && !vm.count("all")) continue;
    if (++shown > 60) continue;
    std::string row = fmt::format("  {:<40}", a.label.substr(0, 40));
    for (size_t ki = 0; ki < kernels.size(); ++ki) {
      auto it = outcomes[ki].find(key);
      row += it == outcomes[ki].end() ? fmt::format(" {:<30}", "(not recorded)")
                                      : fmt::format(" {:<30}", fmt::format("{} @{}", it->second.result, format_duration(it->second.t)));
    }
    lines.push_back(row);
  }
  fmt::print("{} of {} calls differ{}\n", differ, order.size(), vm.count("all") ? "" : " (per call: errno, port and parity, completion time)");
  if (!lines.empty()) {
    fmt::print("{}\n", head);
    for (const auto& l : lines) fmt::print("{}\n", l);
    if (shown > 60) fmt::print("  … and {} more\n", shown - 60);
  }
  // Counts.
  auto row = [&](const char* name, auto get) {
    std::string r = fmt::format("  {:<40}", name);
    bool same = true;
    for (size_t ki = 0; ki < kernels.size(); ++ki) {
      const std::string v = get(reps[ki]);
      r += fmt::format(" {:<30}", v);
      same = same && v == get(reps[0]);
    }
    fmt::print("{}{}\n", r, same ? "" : "  <- differs");
  };
  fmt::print("\n{}\n", head.replace(2, 4, "    "));
  row("calls ok", [](const scenario::RunReport& r) { return fmt::format("{} of {}", r.calls_ok, r.calls); });
  row("errors", [](const scenario::RunReport& r) {
    std::string e;
    for (const auto& [n, c] : r.errors) e += fmt::format("{}{} {}", e.empty() ? "" : ", ", n, c);
    return e.empty() ? std::string("none") : e;
  });
  row("connects ok", [](const scenario::RunReport& r) { return fmt::format("{} of {}", r.connects_ok, r.connects); });
  row("first EADDRNOTAVAIL", [](const scenario::RunReport& r) {
    return r.first_eaddrnotavail ? format_duration(*r.first_eaddrnotavail) : std::string("-");
  });
  row("candidates examined", [](const scenario::RunReport& r) { return std::to_string(r.st.candidates); });
  row("TIME_WAIT peak / recycled", [](const scenario::RunReport& r) {
    return fmt::format("{} / {}", r.st.time_wait_peak, r.st.tw_recycled);
  });
  row("ESTABLISHED peak", [](const scenario::RunReport& r) { return std::to_string(r.st.established_peak); });
  row("virtual time", [](const scenario::RunReport& r) { return format_duration(r.virtual_end); });
  row("expectations failed", [](const scenario::RunReport& r) { return std::to_string(r.expectation_failures); });
  return kExitOk;
}

struct Command {
  const char* name;
  const char* summary;
  int (*fn)(int, char**);
};

constexpr Command kCommands[] = {
    {"run", "replay a scenario in virtual time, write a trace, check its expectations", cmd_run},
    {"check", "parse and validate a scenario; run nothing", cmd_check},
    {"sweep", "run a scenario over varied values and seeds in parallel; CSV/JSON rows", cmd_sweep},
    {"kernels", "list the kernel profiles (3.10 … 6.18); 'kernels X': what X does differently", cmd_kernels},
    {"compare", "run a scenario under two or more kernels and show where the outcomes differ", cmd_compare},
};

void usage(std::FILE* to) {
  fmt::print(to, "portsim — a kernel-faithful simulator of how Linux picks local ports (Linux 3.10 … 6.18; default 6.18)\n\n"
                 "usage: portsim COMMAND [options]   ('portsim COMMAND --help' for its options)\n\ncommands:\n");
  for (const auto& c : kCommands) fmt::print(to, "  {:<8} {}\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return kExitBadInput;
  }
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    if (cmd == "help" && argc > 2) {
      for (const auto& c : kCommands)
        if (argv[2] == std::string(c.name)) {
          char help[] = "--help";
          char* args[] = {argv[0], help};
          return c.fn(2, args);
        }
    }
    usage(stdout);
    return kExitOk;
  }
  std::vector<std::string_view> names;
  for (const auto& c : kCommands) {
    names.push_back(c.name);
    if (cmd == c.name) return c.fn(argc - 1, argv + 1);
  }
  fmt::print(stderr, "portsim: unknown command '{}'{}\n", cmd, did_you_mean(cmd, names));
  usage(stderr);
  return kExitBadInput;
}
