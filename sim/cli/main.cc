// portsim: the command table (ninja's kTools). Each command owns its options and returns an
// exit status: 0 ok, 1 an expectation failed, 2 bad input or usage.
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "portsim/base/errno_name.h"
#include "portsim/base/huge_pages.h"
#include "portsim/base/output_file.h"
#include "portsim/base/spellcheck.h"
#include "portsim/net/kernel_profile.h"
#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"
#include "portsim/scenario/shard.h"
#include "portsim/scenario/sweep.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "portsim/trace/portmap.h"

extern char** environ;

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

// A decimal unsigned 64-bit option value: digits only ("-1" is not 2^64 - 1, as a plain
// lexical_cast would have it), no overflow. nullopt and a message in `err` otherwise.
std::optional<uint64_t> u64_option(const po::variables_map& vm, const char* name, const char* cmd) {
  const std::string v = vm[name].as<std::string>();
  uint64_t x = 0;
  bool ok = !v.empty() && v.size() <= 20;
  for (char c : v) {
    if (!ok) break;
    if (c < '0' || c > '9' || x > (UINT64_MAX - uint64_t(c - '0')) / 10) ok = false;
    else x = x * 10 + uint64_t(c - '0');
  }
  if (!ok) {
    fmt::print(stderr, "portsim {}: --{}: expected an integer in [0, {}], got '{}'\n", cmd, name, UINT64_MAX,
               scenario::printable(v, 100));
    return std::nullopt;
  }
  return x;
}

scenario::Limits limits_of(const po::variables_map& vm) {
  return vm.count("no-limits") ? scenario::Limits::none() : scenario::Limits{};
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
  opts.add_options()("help,h", "this help")("scenario", po::value<std::string>()->required(), "scenario file ('-': standard input)")
      ("no-limits", "lift the size limits (machines, sockets, calls, events, memory; README \"Limits\")")
      ("kernel,k", po::value<std::string>(), "every machine runs this kernel profile (see 'portsim kernels')");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (int rc = parse("check", "SCENARIO [--kernel X.Y]", opts, pos, argc, argv, vm); rc >= 0) return rc;
  auto lr = scenario::load_scenario_file(vm["scenario"].as<std::string>(), limits_of(vm), kernel_opt(vm));
  if (lr.error) {
    std::cerr << lr.error->message << "\n";
    return kExitBadInput;
  }
  fmt::print("{}: ok ({} machines, {} timeline entries)\n", lr.scenario->file, lr.scenario->machines.size(),
             lr.scenario->timeline.size());
  return kExitOk;
}

// --host / --state of `portsim ss` and `portsim run --ss-at` into SsOptions; false after a
// one-line message.
bool parse_ss_options(const char* cmd, const po::variables_map& vm, const scenario::Scenario& sc,
                      scenario::SsOptions& o) {
  if (vm.count("host")) {
    o.host = vm["host"].as<std::string>();
    std::vector<std::string_view> hosts;
    for (const auto& m : sc.machines)
      for (const auto& ns : m.netns) hosts.push_back(ns.name);
    if (std::find(hosts.begin(), hosts.end(), o.host) == hosts.end()) {
      fmt::print(stderr, "portsim {}: --host: no host '{}' in {}{}\n", cmd, o.host, sc.file, did_you_mean(o.host, hosts));
      return false;
    }
  }
  if (vm.count("state")) {
    o.states = 0;
    o.state_given = true;
    for (const auto& s : vm["state"].as<std::vector<std::string>>()) {
      const auto m = scenario::ss_state_mask(s);
      if (!m) {
        fmt::print(stderr, "portsim {}: --state: unknown state '{}' (ss's names: established, syn-sent, syn-recv, "
                           "fin-wait-1, fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing, all, "
                           "connected, synchronized, bucket, big)\n", cmd, s);
        return false;
      }
      o.states |= *m;
    }
  }
  o.summary = vm.count("summary") > 0;
  return true;
}

// Durations for --at / --ss-at; nullopt after a one-line message.
std::optional<std::vector<Nanos>> parse_times(const char* cmd, const char* opt, const std::vector<std::string>& args) {
  std::vector<Nanos> out;
  for (const auto& a : args) {
    const auto d = parse_duration(a);
    if (!d) {
      fmt::print(stderr, "portsim {}: {}: expected a virtual time like \"10s\", got '{}'\n", cmd, opt, a);
      return std::nullopt;
    }
    out.push_back(*d);
  }
  return out;
}

int cmd_ss(int argc, char** argv) {
  po::options_description opts("options");
  opts.add_options()("help,h", "this help")
      ("scenario", po::value<std::string>()->required(), "scenario file ('-': standard input)")
      ("at", po::value<std::vector<std::string>>()->required()->composing(),
       "virtual time of the snapshot (repeatable), after every event of that instant")
      ("host", po::value<std::string>(), "only this host (network namespace); default: every host")
      ("state", po::value<std::vector<std::string>>()->composing(),
       "only sockets in this ss state (time-wait, established, listening, …, or connected, bucket…); repeatable")
      ("summary,s", "print the `ss -s` summary instead of the table")
      ("seed", po::value<std::string>(), "override the scenario's seed (an integer in [0, 2^64-1])");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (int rc = parse("ss", "SCENARIO --at 10s [--host H] [--state time-wait] [--summary]", opts, pos, argc, argv, vm);
      rc >= 0)
    return rc;
  auto lr = scenario::load_scenario_file(vm["scenario"].as<std::string>());
  if (lr.error) {
    std::cerr << lr.error->message << "\n";
    return kExitBadInput;
  }
  scenario::RunOptions ro;
  if (vm.count("seed") && !(ro.seed = u64_option(vm, "seed", "ss"))) return kExitBadInput;
  auto times = parse_times("ss", "--at", vm["at"].as<std::vector<std::string>>());
  if (!times) return kExitBadInput;
  if (!parse_ss_options("ss", vm, *lr.scenario, ro.ss)) return kExitBadInput;
  ro.ss_at = *times;
  ro.ss.label = times->size() > 1 && ro.ss.host.empty() == false;
  ro.stop_at = *std::max_element(times->begin(), times->end());
  scenario::Runner runner(*lr.scenario, ro);
  const scenario::RunReport rep = runner.run();
  if (!rep.runtime_error.empty()) {
    std::cerr << rep.runtime_error << "\n";
    return kExitBadInput;
  }
  return kExitOk;
}

int cmd_run(int argc, char** argv) {
  po::options_description opts("options");
  opts.add_options()("help,h", "this help")
      ("scenario", po::value<std::string>()->required(), "scenario file (JSON, comments allowed; '-': standard input)")
      ("trace,t", po::value<std::string>(), "write the JSON Lines trace to this file")
      ("seed,s", po::value<std::string>(), "override the scenario's seed (an integer in [0, 2^64-1])")
      ("explain,e", "narrate each call's kernel steps (function by function) on stderr")
      ("explain-filter", po::value<std::string>(),
       "with --explain: only blocks matching sock=NAME,errno=EADDRNOTAVAIL,from=10s,to=12s (any subset)")
      ("trace-sample", po::value<std::string>(), "trace only one generated (workload) connect in N")
      ("trace-level", po::value<std::string>()->default_value("all"),
       "all: calls, packets, states, tables, timers; calls: call records only")
      ("pcap", po::value<std::string>(), "write every packet (TCP, UDP, ICMP port unreachable) as a pcap file (LINKTYPE_RAW; tcpdump -r, tshark -r)")
      ("perfetto", po::value<std::string>(), "write a Chrome trace-event JSON file (ui.perfetto.dev, chrome://tracing)")
      ("ss-at", po::value<std::vector<std::string>>()->composing(),
       "print the socket table (ss -tan format) at this virtual time, inline on stdout (repeatable)")
      ("host", po::value<std::string>(), "with --ss-at: only this host")
      ("state", po::value<std::vector<std::string>>()->composing(), "with --ss-at: only sockets in this ss state")
      ("summary", "with --ss-at: the ss -s summary instead of the table")
      ("quiet,q", "print only expectation failures and errors")
      ("no-limits", "lift the size limits (machines, sockets, calls, events, memory; README \"Limits\")")
      ("kernel,k", po::value<std::string>(), "every machine runs this kernel profile, e.g. 4.19 or 5.10.119 (see 'portsim kernels')");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (int rc = parse("run", "SCENARIO [--trace FILE] [--seed N] [--explain] [--kernel X.Y]", opts, pos, argc, argv, vm); rc >= 0)
    return rc;
  scenario::RunOptions ro;
  if (vm.count("seed")) {
    ro.seed = u64_option(vm, "seed", "run");
    if (!ro.seed) return kExitBadInput;
  }
  auto lr = scenario::load_scenario_file(vm["scenario"].as<std::string>(), limits_of(vm), kernel_opt(vm));
  if (lr.error) {
    std::cerr << lr.error->message << "\n";
    return kExitBadInput;
  }
  if (vm.count("trace")) ro.trace_path = vm["trace"].as<std::string>();
  if (vm.count("pcap")) ro.pcap_path = vm["pcap"].as<std::string>();
  if (vm.count("perfetto")) ro.perfetto_path = vm["perfetto"].as<std::string>();
  ro.explain = vm.count("explain") > 0;
  if (vm.count("explain-filter")) {
    std::string ferr;
    auto f = trace::parse_explain_filter(vm["explain-filter"].as<std::string>(), ferr);
    if (!f) {
      std::cerr << "portsim run: " << ferr << "\n";
      return kExitBadInput;
    }
    ro.explain_filter = *f;
    ro.explain = true;  // a filter implies --explain
  }
  const std::string level = vm["trace-level"].as<std::string>();
  if (level != "all" && level != "calls") {
    std::cerr << "portsim run: --trace-level: expected all or calls, got '" << level << "'\n";
    return kExitBadInput;
  }
  ro.trace_calls_only = level == "calls";
  if (vm.count("ss-at")) {
    auto times = parse_times("run", "--ss-at", vm["ss-at"].as<std::vector<std::string>>());
    if (!times) return kExitBadInput;
    ro.ss_at = *times;
    if (!parse_ss_options("run", vm, *lr.scenario, ro.ss)) return kExitBadInput;
    ro.ss.label = true;
  } else if (vm.count("host") || vm.count("state") || vm.count("summary")) {
    std::cerr << "portsim run: --host, --state and --summary go with --ss-at\n";
    return kExitBadInput;
  }
  if (vm.count("trace-sample")) {
    const auto n = u64_option(vm, "trace-sample", "run");
    if (!n) return kExitBadInput;
    ro.trace_sample = *n;
    if (ro.trace_sample == 0) {
      std::cerr << "portsim run: --trace-sample must be at least 1\n";
      return kExitBadInput;
    }
  }
  // A trace past 1 GB by the estimate, with neither knob given: say so before it is written.
  if (!ro.trace_path.empty() && vm["trace-level"].defaulted() && !vm.count("trace-sample")) {
    const uint64_t est = scenario::estimate_trace_bytes(*lr.scenario, false, 1);
    if (est > (uint64_t(1) << 30))
      fmt::print(stderr, "portsim run: warning: the trace may grow to about {:.1f} GB (estimated from the timeline "
                         "and the workloads); --trace-level calls or --trace-sample N keep it small\n",
                 double(est) / 1e9);
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
    fmt::print("  timeline calls {} (ok {}{})\n", rep.calls, rep.calls_ok, errs);
    if (!rep.examined.empty())
      fmt::print("  autobind       {} scans, {} candidates examined ({:.1f} per scan)\n", rep.examined.size(),
                 rep.st.candidates, double(rep.st.candidates) / double(rep.examined.size()));
    if (rep.connects || rep.requests) {
      std::string gerrs;
      for (const auto& [e, n] : rep.connect_errors) gerrs += fmt::format(", {} {}", e, n);
      fmt::print("  connects       {} (ok {}{}){}{}\n", rep.connects, rep.connects_ok, gerrs,
                 rep.requests ? fmt::format("; pooled requests {} (failed {})", rep.requests, rep.requests_failed) : "",
                 rep.first_eaddrnotavail ? fmt::format("; first EADDRNOTAVAIL at {}", format_duration(*rep.first_eaddrnotavail)) : "");
    }
    if (rep.udp.autobinds || rep.udp.datagrams)
      fmt::print("  udp            datagrams {} (delivered {}), ICMP port unreachable {} (ECONNREFUSED set {}); "
                 "autobinds {} (failed {}){}\n",
                 rep.udp.datagrams, rep.udp.delivered, rep.udp.icmp_unreach, rep.udp.refused, rep.udp.autobinds,
                 rep.udp.autobind_fail,
                 rep.udp.queries ? fmt::format("; queries {} (answered {}, refused {}, timed out {}, no port {})",
                                               rep.udp.queries, rep.udp.queries_answered, rep.udp.queries_refused,
                                               rep.udp.queries_timeout, rep.udp.queries_failed)
                                 : "");
    fmt::print("  ESTABLISHED    peak {}\n", rep.st.established_peak);
    fmt::print("  TIME_WAIT      peak {}, recycled {}, overflow {}\n", rep.st.time_wait_peak, rep.st.tw_recycled,
               rep.st.tw_overflow);
    fmt::print("  virtual time   {}\n", format_duration(rep.virtual_end));
    fmt::print("  wall time      {:.3f} s, {:.0f} events/s, peak RSS {} MiB\n", wall,
               wall > 0 ? double(rep.events) / wall : 0.0, peak_rss_kib() / 1024);
    fmt::print("  expectations   {} held, {} failed\n", rep.expectations - rep.expectation_failures,
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

// Reads a Slurm array variable; nullopt when unset. `bad` is set when it is not a number.
std::optional<uint64_t> slurm_env(const char* name, bool& bad) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  uint64_t x = 0;
  auto [p, ec] = std::from_chars(v, v + std::strlen(v), x);
  if (ec != std::errc() || *p) {
    bad = true;
    std::cerr << "portsim sweep: " << name << "='" << v << "': expected a number\n";
    return std::nullopt;
  }
  return x;
}

// "12s", "3m05s", "1h02m".
std::string format_eta(double s) {
  const long t = std::lround(s);
  if (t < 60) return fmt::format("{}s", t);
  if (t < 3600) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}h{:02}m", t / 3600, t % 3600 / 60);
}

// Runs that failed an expectation: one line each on stderr (the first few).
void report_failed_runs(const char* cmd, const std::vector<std::string>& pointers,
                        const std::vector<scenario::ShardRun>& runs) {
  size_t shown = 0, failed = 0;
  for (const auto& r : runs) {
    if (!r.expectations_failed) continue;
    if (++failed > 10) continue;
    ++shown;
    std::string what;
    for (size_t k = 0; k < r.values.size() && k < pointers.size(); ++k) what += fmt::format("{}={}, ", pointers[k], r.values[k]);
    std::cerr << fmt::format("portsim {}: run {} ({}seed {}): {} expectation{} failed{}{}\n", cmd, r.run, what, r.seed,
                             r.expectations_failed, r.expectations_failed == 1 ? "" : "s",
                             r.first_failure.empty() ? "" : "; first: ", r.first_failure);
  }
  if (failed > shown) std::cerr << fmt::format("portsim {}: … and {} more runs with failed expectations\n", cmd, failed - shown);
}

int cmd_sweep(int argc, char** argv) {
  po::options_description opts("options");
  opts.add_options()("help,h", "this help")
      ("scenario", po::value<std::string>()->required(), "scenario file ('-': standard input)")
      ("vary", po::value<std::vector<std::string>>()->composing(),
       "POINTER=v1,v2,… — set the JSON value at this RFC 6901 pointer, creating missing object keys "
       "(repeatable: the cartesian product runs)")
      ("seeds", po::value<uint64_t>()->default_value(1), "runs per variant, seeds scenario.seed … +N-1")
      ("out,o", po::value<std::vector<std::string>>()->composing(),
       "results file(s): .csv, .json, or .shard (for 'portsim merge'); written whole or not at all")
      ("jobs,j", po::value<unsigned>()->default_value(std::max(1u, std::thread::hardware_concurrency())),
       "runs in parallel (default: SLURM_CPUS_PER_TASK when set, else the CPU count)")
      ("shard", po::value<std::string>(),
       "I/N: only the runs whose index r has r mod N = I (default in a Slurm array job: "
       "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT)")
      ("runs", po::value<std::string>(), "only these run indices, e.g. 3,7,10-20 (see --list-runs)")
      ("list-runs", "print run index, varied values and seed of each (selected) run; run nothing")
      ("timeseries", po::value<std::string>(),
       "sample every DURATION of virtual time: ESTABLISHED, TIME_WAIT, bound ports, and the connects "
       "(ok, by errno) since the previous sample")
      ("timeseries-out", po::value<std::string>(), "where the samples go (CSV)")
      ("kernel,k", po::value<std::string>(), "every run uses this kernel profile (or vary it: --vary /kernel=4.19,6.18)");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (int rc = parse("sweep", "SCENARIO --vary POINTER=v1,v2 [--vary …] [--seeds N] [--shard I/N] [--runs LIST] "
                     "--out results.csv|.json|.shard",
                     opts, pos, argc, argv, vm); rc >= 0)
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
  bool bad_env = false;
  if (vm["jobs"].defaulted())
    if (auto c = slurm_env("SLURM_CPUS_PER_TASK", bad_env); c && *c > 0) spec.jobs = unsigned(std::min<uint64_t>(*c, 4096));
  if (spec.jobs == 0) {
    std::cerr << "portsim sweep: --jobs must be at least 1\n";
    return kExitBadInput;
  }
  std::string err;
  if (vm.count("shard")) {
    auto s = scenario::parse_shard(vm["shard"].as<std::string>(), err);
    if (!s) {
      std::cerr << "portsim sweep: " << err << "\n";
      return kExitBadInput;
    }
    std::tie(spec.shard_index, spec.shard_count) = *s;
  } else if (auto id = slurm_env("SLURM_ARRAY_TASK_ID", bad_env)) {
    auto count = slurm_env("SLURM_ARRAY_TASK_COUNT", bad_env);
    if (!bad_env && (!count || *id >= *count)) {
      std::cerr << fmt::format("portsim sweep: SLURM_ARRAY_TASK_ID={} is not below SLURM_ARRAY_TASK_COUNT={}: submit "
                               "the array as --array=0-{} (or give --shard I/N)\n",
                               *id, count ? std::to_string(*count) : "(unset)", count && *count ? *count - 1 : 0);
      return kExitBadInput;
    }
    if (count) std::tie(spec.shard_index, spec.shard_count) = std::pair{*id, *count};
  }
  if (bad_env) return kExitBadInput;
  if (vm.count("runs")) {
    auto r = scenario::parse_runs(vm["runs"].as<std::string>(), err);
    if (!r) {
      std::cerr << "portsim sweep: " << err << "\n";
      return kExitBadInput;
    }
    spec.runs = *r;
  }
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
    if (!(o.ends_with(".csv") || o.ends_with(".json") || o.ends_with(".shard"))) {
      std::cerr << "portsim sweep: --out " << o << ": expected a .csv, .json or .shard file name\n";
      return kExitBadInput;
    }
  if (vm.count("timeseries")) {
    auto d = parse_duration(vm["timeseries"].as<std::string>());
    if (!d || *d == 0) {
      std::cerr << "portsim sweep: --timeseries: expected a duration like \"1s\"\n";
      return kExitBadInput;
    }
    if (!vm.count("timeseries-out") && std::none_of(outs.begin(), outs.end(), [](auto& o) { return o.ends_with(".shard"); })) {
      std::cerr << "portsim sweep: --timeseries needs --timeseries-out FILE.csv (or a .shard output)\n";
      return kExitBadInput;
    }
    spec.sample_every = *d;
  } else if (vm.count("timeseries-out")) {
    std::cerr << "portsim sweep: --timeseries-out needs --timeseries DURATION\n";
    return kExitBadInput;
  }
  auto plan = scenario::plan_sweep(spec, err);
  if (!plan) {
    std::cerr << err << "\n";
    return kExitBadInput;
  }
  if (vm.count("list-runs")) {
    std::string line = "run";
    for (const auto& v : spec.vary) line += "," + v.pointer;
    fmt::print("{},seed\n", line);
    for (uint64_t r : plan->selected) {
      const auto& p = plan->all[r];
      line = std::to_string(p.run);
      for (const auto& v : p.values) line += "," + v;
      fmt::print("{},{}\n", line, p.seed);
    }
    return kExitOk;
  }
  // Progress only for a person watching: a terminal on stderr.
  const bool tty = isatty(2);
  const auto t0 = std::chrono::steady_clock::now();
  auto rows = scenario::run_sweep(spec, *plan, err, [&](size_t done, size_t total) {
    if (!tty) return;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(stderr, "\rportsim sweep: {}/{} runs, {} elapsed, ~{} left   ", done, total, format_eta(el),
               format_eta(el / double(done) * double(total - done)));
  });
  if (tty && !plan->selected.empty()) fmt::print(stderr, "\n");
  if (!rows) {
    std::cerr << err << "\n";
    return kExitBadInput;
  }
  for (const auto& o : outs) {
    const bool ok = write_file(o, [&](std::FILE* f) {
      if (o.ends_with(".csv")) scenario::write_sweep_csv(f, spec, *rows);
      else if (o.ends_with(".json")) scenario::write_sweep_json(f, spec, *rows);
      else scenario::write_shard(f, spec, *plan, *rows);
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
  std::vector<scenario::ShardRun> failed;
  for (const auto& r : *rows)
    if (r.rep.expectation_failures)
      failed.push_back({r.run, r.seed, r.values, r.rep.expectation_failures, r.rep.failures.empty() ? "" : r.rep.failures.front(), {}, {}, {}});
  std::vector<std::string> pointers;
  for (const auto& v : spec.vary) pointers.push_back(v.pointer);
  report_failed_runs("sweep", pointers, failed);
  return failed.empty() ? kExitOk : kExitExpectationFailed;
}

int cmd_merge(int argc, char** argv) {
  po::options_description opts("options");
  opts.add_options()("help,h", "this help")
      ("shards", po::value<std::vector<std::string>>()->required(), "shard files ('portsim sweep … --out FILE.shard')")
      ("out,o", po::value<std::vector<std::string>>()->composing(),
       "merged results: .csv or .json (repeatable; default: CSV on stdout); written whole or not at all")
      ("timeseries-out", po::value<std::string>(), "the merged time series (CSV), when the sweep sampled one");
  po::positional_options_description pos;
  pos.add("shards", -1);
  po::variables_map vm;
  if (int rc = parse("merge", "-o results.csv [-o results.json] [--timeseries-out ts.csv] SHARD…", opts, pos, argc, argv, vm);
      rc >= 0)
    return rc;
  std::vector<std::string> outs;
  if (vm.count("out")) outs = vm["out"].as<std::vector<std::string>>();
  for (const auto& o : outs)
    if (!(o.ends_with(".csv") || o.ends_with(".json"))) {
      std::cerr << "portsim merge: --out " << o << ": expected a .csv or .json file name\n";
      return kExitBadInput;
    }
  std::string err;
  auto m = scenario::merge_shards(vm["shards"].as<std::vector<std::string>>(), err);
  if (!m) {
    std::cerr << "portsim merge: " << err << "\n";
    return kExitBadInput;
  }
  if (vm.count("timeseries-out") && m->timeseries_header.empty()) {
    std::cerr << "portsim merge: --timeseries-out: the shards hold no time series (their sweep ran without --timeseries)\n";
    return kExitBadInput;
  }
  for (const auto& o : outs)
    if (!write_file(o, [&](std::FILE* f) {
          if (o.ends_with(".csv")) scenario::write_merged_csv(f, *m);
          else scenario::write_merged_json(f, *m);
        })) {
      std::cerr << "portsim merge: cannot write " << o << "\n";
      return kExitBadInput;
    }
  if (vm.count("timeseries-out") &&
      !write_file(vm["timeseries-out"].as<std::string>(), [&](std::FILE* f) { scenario::write_merged_timeseries(f, *m); })) {
    std::cerr << "portsim merge: cannot write " << vm["timeseries-out"].as<std::string>() << "\n";
    return kExitBadInput;
  }
  if (outs.empty()) scenario::write_merged_csv(stdout, *m);
  // The pointers are the CSV header's first columns.
  std::vector<std::string> pointers;
  const size_t nvals = m->runs.empty() ? 0 : m->runs.front().values.size();
  for (size_t i = 0, at = 0; i < nvals; ++i) {
    const size_t comma = m->csv_header.find(',', at);
    pointers.push_back(m->csv_header.substr(at, comma - at));
    at = comma + 1;
  }
  report_failed_runs("merge", pointers, m->runs);
  for (const auto& r : m->runs)
    if (r.expectations_failed) return kExitExpectationFailed;
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
    auto lr = scenario::load_scenario_file(file, {}, kernels[ki]);
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

// Renders the heat map grid (JSON at `json`) to `out` with Debian's matplotlib; the format
// follows out's extension (png, svg, pdf). Empty string on success, else why not.
std::string render_heatmap_image(const std::string& json, const std::string& out) {
  static const char* kScript = R"PY(
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
import numpy as np
d = json.load(open(sys.argv[1]))
g = np.frombuffer(d["grid"].encode(), dtype=np.uint8).astype(int) - 48
g = g.reshape(d["rows"], d["cols"])
plt.rcParams.update({"font.size": 9})
fig, ax = plt.subplots(figsize=(7.0, 3.6), constrained_layout=True)
end = d["end_ns"] / 1e9
top = d["lo"] + d["rows"] * d["per_row"]
ax.imshow(g, cmap=ListedColormap(d["colors"]), vmin=0, vmax=len(d["colors"]) - 1, aspect="auto",
          interpolation="nearest", extent=[0, end, top, d["lo"]])
ax.set_xlabel("virtual time (s)")
ax.set_ylabel("local port")
ax.set_title(d["title"], fontsize=9)
ax.legend(handles=[Patch(facecolor=c, edgecolor="#999", label=n) for n, c in zip(d["cats"], d["colors"])],
          loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
fig.savefig(sys.argv[2], dpi=150, format=sys.argv[3])
)PY";
  const std::string ext = out.substr(out.rfind('.') + 1);
  if (ext != "png" && ext != "svg" && ext != "pdf") return "expected a .png, .svg or .pdf file name";
  char tmpl[] = "/tmp/portsim-heatmap-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return std::string("cannot create a temporary file: ") + std::strerror(errno);
  close(fd);
  const std::string img = tmpl;
  const char* argv[] = {"/usr/bin/python3", "-c", kScript, json.c_str(), img.c_str(), ext.c_str(), nullptr};
  pid_t pid;
  std::string err;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
    err = "cannot run /usr/bin/python3 (install python3-matplotlib)";
  } else {
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) err = "/usr/bin/python3 with matplotlib failed (install python3-matplotlib)";
  }
  if (err.empty()) {
    std::ifstream in(img, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!write_file(out, [&](std::FILE* f) { std::fwrite(bytes.data(), 1, bytes.size(), f); }))
      err = fmt::format("cannot write {}: {}", out, std::strerror(errno));
  }
  std::remove(img.c_str());
  return err;
}

int cmd_heatmap(int argc, char** argv) {
  po::options_description opts("options");
  opts.add_options()("help,h", "this help")
      ("scenario", po::value<std::string>()->required(), "scenario file")
      ("out,o", po::value<std::string>()->required(), "the HTML page to write (self-contained; opens offline)")
      ("png", po::value<std::string>(), "also an image: .png, .svg or .pdf (Debian's /usr/bin/python3 + matplotlib)")
      ("host", po::value<std::string>(), "the host whose ports are drawn (default: the first)")
      ("dest", po::value<std::string>(), "ADDR:PORT — only connections to this peer count (ports used toward others show as free)")
      ("ports", po::value<std::string>(), "LO-HI — the ports drawn (default: the host's ip_local_port_range)")
      ("rows", po::value<uint32_t>()->default_value(250), "at most this many rows (ports are binned beyond)")
      ("columns", po::value<uint32_t>()->default_value(400), "time bins")
      ("seed,s", po::value<std::string>(), "override the scenario's seed")
      ("no-limits", "lift the size limits (README \"Limits\")");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (int rc = parse("heatmap", "SCENARIO -o ports.html [--png ports.png] [--host H] [--dest ADDR:PORT]", opts, pos, argc,
                     argv, vm); rc >= 0)
    return rc;
  scenario::RunOptions ro;
  if (vm.count("seed")) {
    ro.seed = u64_option(vm, "seed", "heatmap");
    if (!ro.seed) return kExitBadInput;
  }
  auto lr = scenario::load_scenario_file(vm["scenario"].as<std::string>(), limits_of(vm));
  if (lr.error) {
    std::cerr << lr.error->message << "\n";
    return kExitBadInput;
  }
  const auto& sc = *lr.scenario;
  trace::PortMapOptions pm;
  const uint32_t rows = vm["rows"].as<uint32_t>(), cols = vm["columns"].as<uint32_t>();
  if (rows == 0 || rows > 4096 || cols == 0 || cols > 4096) {
    std::cerr << "portsim heatmap: --rows and --columns must be in [1, 4096]\n";
    return kExitBadInput;
  }
  pm.max_rows = rows;
  pm.columns = cols;
  std::string host;
  if (vm.count("host")) {
    host = vm["host"].as<std::string>();
    net::world w;
    scenario::build_world(sc, sc.seed, w);
    std::vector<std::string_view> names;
    int found = -1;
    for (const auto& n : w.nets) {
      names.push_back(n.name);
      if (n.name == host) found = n.id;
    }
    if (found < 0) {
      std::cerr << fmt::format("portsim heatmap: --host: no host '{}' in {}{}\n", host, sc.file, did_you_mean(host, names));
      return kExitBadInput;
    }
    pm.ns = uint16_t(found);
  }
  if (vm.count("dest")) {
    pm.dest = net::parse_endpoint(vm["dest"].as<std::string>());
    if (!pm.dest) {
      std::cerr << "portsim heatmap: --dest: expected ADDR:PORT like 10.0.0.2:80 or [::1]:80\n";
      return kExitBadInput;
    }
  }
  if (vm.count("ports")) {
    unsigned lo = 0, hi = 0;
    char dash = 0;
    std::istringstream in(vm["ports"].as<std::string>());
    if (!(in >> lo >> dash >> hi) || dash != '-' || lo == 0 || lo > hi || hi > 65535 || !in.eof()) {
      std::cerr << "portsim heatmap: --ports: expected LO-HI with 1 <= LO <= HI <= 65535\n";
      return kExitBadInput;
    }
    pm.ports = {uint16_t(lo), uint16_t(hi)};
  }
  trace::PortMap map(pm);
  ro.watch = &map;
  scenario::Runner runner(sc, ro);
  const scenario::RunReport rep = runner.run();
  if (!rep.runtime_error.empty()) {
    std::cerr << rep.runtime_error << "\n";
    return kExitBadInput;
  }
  const trace::PortGrid g = map.grid();
  const std::string title = fmt::format("{}: ports {}–{} of {}{} (seed {})", sc.name.empty() ? sc.file : sc.name, g.lo, g.hi,
                                        runner.world().nets[pm.ns].name,
                                        pm.dest ? " toward " + net::to_string(*pm.dest) : "", ro.seed.value_or(sc.seed));
  const std::string out = vm["out"].as<std::string>();
  if (!write_file(out, [&](std::FILE* f) { trace::write_heatmap_html(f, g, title); })) {
    std::cerr << fmt::format("portsim heatmap: cannot write {}: {}\n", out, std::strerror(errno));
    return kExitBadInput;
  }
  if (vm.count("png")) {
    char tmpl[] = "/tmp/portsim-grid-XXXXXX";
    const int fd = mkstemp(tmpl);
    std::FILE* f = fd < 0 ? nullptr : fdopen(fd, "w");
    if (!f) {
      std::cerr << "portsim heatmap: cannot create a temporary file\n";
      return kExitBadInput;
    }
    trace::write_heatmap_json(f, g, title);
    std::fclose(f);
    const std::string err = render_heatmap_image(tmpl, vm["png"].as<std::string>());
    std::remove(tmpl);
    if (!err.empty()) {
      std::cerr << "portsim heatmap: --png " << vm["png"].as<std::string>() << ": " << err << "\n";
      return kExitBadInput;
    }
  }
  std::string counts;
  for (int c = 0; c < trace::kPortCats; ++c)
    if (g.cells_of[size_t(c)]) counts += fmt::format(", {} {}", trace::port_cat_name(trace::port_cat(c)), g.cells_of[size_t(c)]);
  fmt::print("{}: {} rows x {} columns ({} port{} per row, {} per column){}\n", out, g.rows, g.cols, g.per_row,
             g.per_row > 1 ? "s" : "", format_duration(g.end / g.cols), counts);
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
    {"sweep", "run a scenario over varied values and seeds in parallel; CSV/JSON rows (or a shard)", cmd_sweep},
    {"merge", "put the shards of a sweep together: the CSV/JSON of one unsharded sweep", cmd_merge},
    {"heatmap", "draw a host's port range over time (HTML page, optional PNG/SVG/PDF)", cmd_heatmap},
    {"ss", "the socket table at a virtual time, as `ss -tan` (or `ss -s`) prints it", cmd_ss},
    {"kernels", "list the kernel profiles (3.10 … 6.18); 'kernels X': what X does differently", cmd_kernels},
    {"compare", "run a scenario under two or more kernels and show where the outcomes differ", cmd_compare},
};

void usage(std::FILE* to) {
  fmt::print(to, "portsim — a kernel-faithful simulator of how Linux picks local ports (Linux 3.10 … 6.18; default 6.18)\n\n"
                 "usage: portsim COMMAND [options]   ('portsim COMMAND --help' for its options; portsim --version)\n"
                 "SCENARIO '-' reads the scenario from standard input\n\ncommands:\n");
  for (const auto& c : kCommands) fmt::print(to, "  {:<8} {}\n", c.name, c.summary);
}

// Runs a command; what escapes it becomes one line and exit 2 (output files are removed by
// their destructors on the way out): memory exhausted, a write to stdout failing (EPIPE with
// SIGPIPE ignored), or our own bug.
int run_command(const Command& c, int argc, char** argv) {
  try {
    return c.fn(argc, argv);
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "portsim {}: out of memory (see README \"Limits\")\n", c.name);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "portsim %s: cannot write the output: %s\n", c.name, e.code().message().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "portsim %s: internal error: %s\n", c.name, scenario::printable(e.what(), 500).c_str());
  }
  return kExitBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  portsim::advise_huge_page_heap(portsim::kHugeHeapBytes);  // before the run allocates (huge_pages.h)
  if (argc < 2) {
    usage(stderr);
    return kExitBadInput;
  }
  install_signal_cleanup();  // an interrupted run leaves no temporary trace behind
  const std::string cmd = argv[1];
  if (cmd == "--version" || cmd == "-V") {
    fmt::print("portsim {} (model: Linux 6.18)\n", PORTSIM_VERSION);
    return kExitOk;
  }
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
    if (cmd == c.name) return run_command(c, argc - 1, argv + 1);
  }
  fmt::print(stderr, "portsim: unknown command '{}'{}\n", cmd, did_you_mean(cmd, names));
  usage(stderr);
  return kExitBadInput;
}
