// Replays a Scenario: builds the world (machines, netns, seeded secrets), runs the timeline in
// virtual time, checks expectations, feeds the trace. The pipeline of `portsim run`.
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "portsim/engine/engine.h"
#include "portsim/net/netns.h"
#include "portsim/scenario/scenario.h"
#include "portsim/scenario/ss.h"
#include "portsim/trace/jsonl.h"
#include "portsim/trace/pcap.h"
#include "portsim/trace/perfetto.h"

namespace portsim::scenario {

struct RunOptions {
  std::string trace_path;  // empty: no trace
  bool explain = false;    // narrate each call's kernel steps on stderr
  trace::ExplainFilter explain_filter;  // --explain-filter
  std::FILE* explain_out = stderr;      // where --explain goes
  std::optional<uint64_t> seed;  // overrides the scenario's
  Nanos sample_every = 0;        // > 0: sample table occupancy every Δt of virtual time
  uint64_t trace_sample = 1;     // trace one generated connect in N (1: all)
  bool trace_calls_only = false; // no table / state / packet / timer records
  std::string pcap_path;         // every segment as a pcap (trace/pcap.h); empty: none
  std::string perfetto_path;     // Chrome trace-event JSON (trace/perfetto.h); empty: none
  net::observer* watch = nullptr;  // one more observer (e.g. the heat map's PortMap), not owned
  std::vector<Nanos> ss_at;      // print the socket table (ss -tan) at these virtual times
  SsOptions ss;                  // which namespaces / states, or the summary
  std::FILE* ss_out = stdout;
  Nanos stop_at = UINT64_MAX;    // run no event after this time (portsim ss)
  uint64_t max_events = UINT64_MAX;  // stop after this many events (the fuzz target's bound)
};

// Table occupancy at a sample instant, and the connect() outcomes counted so far (sweeps turn
// the running counts into per-interval ones).
struct Sample {
  Nanos t;
  uint64_t established, time_wait, bound_ports;
  uint64_t connects_ok = 0;                        // running total
  std::map<std::string, uint64_t> connect_errors;  // running totals by errno name
};

// How many candidates each autobind examined, kept as counts per value (a connect() scan
// examines at most its range, ≤ 65 536): bounded memory however many connects ran. Larger
// values (UDP searches can count more) are kept one by one.
struct ExaminedCounts {
  static constexpr uint32_t kCounted = 1u << 17;
  std::vector<uint64_t> counts;  // counts[v]: autobinds that examined v < kCounted candidates
  std::vector<uint32_t> large;   // the values ≥ kCounted, in arrival order
  uint64_t n = 0;
  void add(uint32_t v) {
    ++n;
    if (v >= kCounted) {
      large.push_back(v);
      return;
    }
    if (v >= counts.size()) counts.resize(size_t(v) + 1, 0);
    ++counts[v];
  }
  uint64_t size() const { return n; }
  bool empty() const { return n == 0; }
  // The value at index i of the sorted list of every count (i < size()).
  uint32_t at_sorted(uint64_t i) const;
  friend bool operator==(const ExaminedCounts&, const ExaminedCounts&) = default;
};

struct RunReport {
  uint64_t calls = 0, calls_ok = 0;
  std::map<std::string, uint64_t> errors;  // errno name -> count
  uint64_t expectations = 0, expectation_failures = 0;
  std::vector<std::string> failures;       // the first few, formatted
  std::string runtime_error;               // bad input found while running (exit 2)
  Nanos virtual_end = 0;
  uint64_t events = 0;
  net::stats st;
  net::udp_stats udp;
  // Every connect() outcome, hand-written and generated (what sweeps report).
  uint64_t connects = 0, connects_ok = 0;
  std::map<std::string, uint64_t> connect_errors;
  uint64_t requests = 0, requests_failed = 0;  // pooled workloads
  std::optional<Nanos> first_eaddrnotavail;
  ExaminedCounts examined;  // candidates examined by each connect() autobind
  std::vector<Sample> samples;
};

// What a trace of this scenario will roughly weigh, estimated before running: timeline calls
// plus generated connects (rate × duration, or the pool), times the bytes one costs — measured:
// ~3.5 KB for a connect's whole life at --trace-level all (call, states, tables, segments,
// timers, both ends in the model), ~300 bytes as a call record alone.
uint64_t estimate_trace_bytes(const Scenario& sc, bool calls_only, uint64_t trace_sample);

// Builds the machines and namespaces of `sc` into `w`: seeded net_secret, table_perturb and
// uptime per machine (overridable in the scenario), sysctls applied in file order.
void build_world(const Scenario& sc, uint64_t seed, net::world& w);

class Runner final : public engine::EventHandler {
 public:
  Runner(const Scenario& sc, RunOptions opt);
  ~Runner() override;
  // Runs to the end. The trace is committed unless a runtime error occurred.
  RunReport run();
  const net::world& world() const { return w_; }

  void handle(const engine::Event& ev) override;

 private:
  struct Impl;
  struct Outcome;
  void on_timer(const engine::Event& ev);
  void run_call(uint32_t ci, uint64_t k);
  [[gnu::noinline]] void run_call_any(uint32_t ci, uint64_t k, const Call& c, Nanos now);
  void run_fresh_connect(uint32_t ci, uint64_t k, Nanos now);
  [[gnu::noinline]] void count_call_error(uint32_t ci, int err);
  bool run_udp_call(uint32_t ci, uint64_t k, net::sock_id sk, const std::string& sname, Outcome& out);
  void finish_call(uint32_t ci, uint64_t k, Outcome& out, Nanos t_start);
  void finish_call_inline(uint32_t ci, uint64_t k, Outcome& out, Nanos t_start);
  void observe_call(uint32_t ci, uint64_t k, const Outcome& o, Nanos t_start, bool alive, uint16_t port);
  void check_expect(uint32_t ci, uint64_t k, const Outcome& o, uint16_t port);
  void explain_call(const Call& c, const std::string& sname, const Outcome& o, uint16_t port, bool own_block);
  Nanos next_gap(uint32_t wi);
  const net::endpoint& next_dest(uint32_t wi);
  net::sock_id workload_connect(uint32_t wi, uint64_t k);
  net::sock_id workload_udp(uint32_t wi, uint64_t k);
  void prefetch_ahead();
  void prefetch_calls_ahead();
  void workload_established(uint32_t wi, net::sock_id sk);
  void workload_arrival(uint32_t wi, uint64_t k);
  void workload_close(net::sock_id sk, uint64_t wl_gen);
  void workload_close_tcp(const WorkloadSpec& ws, net::sock_id sk);
  bool workload_external_only(uint32_t wi);
  void pool_open(uint32_t wi);
  void pool_close(uint32_t wi);
  void take_sample();
  void count_connect(int err);
  void record_connect(int err, const net::connect_info& info, net::sock_id sk, const net::endpoint& to,
                      const std::string& wname, uint64_t k, Nanos t_start);
  const Scenario& sc_;
  RunOptions opt_;
  net::world w_;
  engine::Engine eng_;
  std::unique_ptr<Impl> impl_;
  RunReport rep_;
  Nanos last_effective_ = 0;  // the time of the last event that did something
};

}  // namespace portsim::scenario
