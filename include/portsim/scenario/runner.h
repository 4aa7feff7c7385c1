// Replays a Scenario: builds the world (machines, netns, seeded secrets), runs the timeline in
// virtual time, checks expectations, feeds the trace. The pipeline of `portsim run`.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "portsim/engine/engine.h"
#include "portsim/net/netns.h"
#include "portsim/scenario/scenario.h"
#include "portsim/trace/jsonl.h"

namespace portsim::scenario {

struct RunOptions {
  std::string trace_path;  // empty: no trace
  bool explain = false;    // narrate each call's kernel steps on stderr
  std::optional<uint64_t> seed;  // overrides the scenario's
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
  uint64_t sockets_peak = 0;
};

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
  void finish_call(uint32_t ci, uint64_t k, const Outcome& out, Nanos t_start);
  void check_expect(uint32_t ci, uint64_t k, const Outcome& o, uint16_t port);
  void explain_call(const Call& c, const std::string& sname, const Outcome& o, uint16_t port);
  const Scenario& sc_;
  RunOptions opt_;
  net::world w_;
  engine::Engine eng_;
  std::unique_ptr<Impl> impl_;
  RunReport rep_;
};

}  // namespace portsim::scenario
