// --perfetto: the run as Chrome trace-event JSON (the "JSON trace format" that ui.perfetto.dev
// and chrome://tracing open). One process per host, one thread (track) per socket with its TCP
// states as complete ("X") slices, instant ("i") events for calls (category "call", or "error"
// when it failed) and timers, and per host counters ("C"): ESTABLISHED, TIME_WAIT, ports in
// use (bind buckets). Timestamps in µs of virtual time. Written through OutputFile.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <map>
#include <unordered_map>
#include <vector>

#include "portsim/base/output_file.h"
#include "portsim/net/observer.h"

namespace portsim::trace {

class PerfettoWriter final : public net::observer {
 public:
  using NameFn = std::function<std::string(net::sock_id)>;
  PerfettoWriter(std::string path, NameFn name_of);
  bool ok() const { return f_ != nullptr; }
  bool commit();
  void abandon() { out_.abandon(); f_ = nullptr; }
  int error() const { return out_.error(); }

  void bind_bucket(const net::world&, net::table_op, uint32_t tb) override;
  void bind2_bucket(const net::world&, net::table_op, uint32_t) override {}
  void ehash(const net::world&, net::table_op, net::sock_id) override {}
  void state_change(const net::world&, net::sock_id, net::tcp_state from, net::tcp_state to) override;
  void sock_alloc(const net::world&, net::sock_id id) override;
  bool explaining() const override { return false; }
  void explain(std::string_view, std::string_view) override {}
  void call(const net::world&, const net::call_event&) override;
  bool wants_calls() const override { return true; }
  void timer(const net::world&, net::timer_kind, net::sock_id) override;
  void finish(const net::world&, Nanos end) override;

 private:
  struct Track {
    uint32_t tid = 0;       // unique per socket lifetime (ids are reused)
    uint16_t ns = 0;
    std::string state;      // the open slice ("" if none)
    Nanos since = 0;
  };
  struct HostCount {
    int64_t established = 0, time_wait = 0, ports = 0;
    bool dirty = false;
  };
  Track& track(const net::world& w, net::sock_id id);
  void close_slice(Track& t, Nanos now);
  void event(const std::string& json);
  void flush_counters(Nanos now);
  void touch(const net::world& w, uint16_t ns);

  OutputFile out_;
  std::FILE* f_ = nullptr;
  NameFn name_of_;
  bool first_ = true;
  uint32_t next_tid_ = 1;
  std::map<net::sock_id, Track> tracks_;  // ordered: the output is deterministic
  std::unordered_map<uint32_t, std::pair<uint16_t, std::string>> tid_names_;  // tid -> (pid, name)
  std::vector<HostCount> hosts_;
  std::vector<std::string> host_names_;
  Nanos counters_at_ = 0;
};

}  // namespace portsim::trace
