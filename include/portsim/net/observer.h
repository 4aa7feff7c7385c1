// Hooks through which the model reports table changes and explanations (the trace layer
// implements them). The model never formats anything itself; with no observer it pays nothing.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "portsim/base/time.h"
#include "portsim/net/sock.h"

namespace portsim::net {

struct world;
struct segment;

enum class table_op : uint8_t { create, destroy, update };
enum class timer_kind : uint8_t;

// What became of a segment put on the wire.
enum class seg_fate : uint8_t { delivered, lost, no_route };

// A call's outcome, as the runner reports it (timeline calls and generated connects).
struct call_event {
  Nanos t_start = 0;        // when the call was made (w.now is when it returned)
  uint16_t ns = 0;          // the host (netns) it ran in
  std::string_view op;      // "connect", "bind", …
  std::string_view sock;    // the scenario's name for the socket ("" if none)
  sock_id sk = UINT32_MAX;  // kNone for a sysctl
  int err = 0;              // 0 or an errno
  std::string_view detail;  // "to 127.0.0.1:5000", "addr …", "" — for display
};

class observer {
 public:
  virtual ~observer() = default;
  virtual void bind_bucket(const world&, table_op, uint32_t tb) = 0;
  virtual void bind2_bucket(const world&, table_op, uint32_t tb2) = 0;
  virtual void ehash(const world&, table_op, sock_id) = 0;  // create = insert, destroy = remove
  virtual void state_change(const world&, sock_id, tcp_state from, tcp_state to) = 0;
  // A socket slot was (re)used: names given to an earlier socket of that id no longer apply.
  virtual void sock_alloc(const world&, sock_id) {}
  // --explain: which kernel function took which step. Only called when explaining() is true.
  virtual bool explaining() const = 0;
  virtual void explain(std::string_view kernel_function, std::string_view what) = 0;
  // The runner's events (outside the model): a segment leaves a host (`arrive`: its delivery
  // time), a call returns, a timer fires. No-ops unless an output wants them.
  virtual void segment(const world&, const struct segment&, Nanos /*arrive*/, seg_fate) {}
  virtual void call(const world&, const call_event&) {}
  virtual bool wants_calls() const { return false; }  // call() is only made when true
  virtual void timer(const world&, timer_kind, sock_id) {}
  // The run ended at virtual time `end` (outputs that draw intervals close them here).
  virtual void finish(const world&, Nanos /*end*/) {}
  // --explain: the name a socket answers to in the scenario ("sk<id>" when it has none).
  virtual std::string sock_name(const world&, sock_id id) const { return "sk" + std::to_string(id); }
};

// Forwards every hook to several observers (the JSONL trace, pcap, Perfetto, heat map…).
class observer_tee final : public observer {
 public:
  void add(observer* o) {
    if (o) outs_.push_back(o);
  }
  bool empty() const { return outs_.empty(); }
  observer* only() const { return outs_.size() == 1 ? outs_[0] : nullptr; }
  void bind_bucket(const world& w, table_op op, uint32_t tb) override { for (auto* o : outs_) o->bind_bucket(w, op, tb); }
  void bind2_bucket(const world& w, table_op op, uint32_t tb2) override { for (auto* o : outs_) o->bind2_bucket(w, op, tb2); }
  void ehash(const world& w, table_op op, sock_id id) override { for (auto* o : outs_) o->ehash(w, op, id); }
  void state_change(const world& w, sock_id id, tcp_state from, tcp_state to) override {
    for (auto* o : outs_) o->state_change(w, id, from, to);
  }
  void sock_alloc(const world& w, sock_id id) override { for (auto* o : outs_) o->sock_alloc(w, id); }
  std::string sock_name(const world& w, sock_id id) const override {  // the first output names it (the trace)
    return outs_.empty() ? observer::sock_name(w, id) : outs_.front()->sock_name(w, id);
  }
  bool explaining() const override {
    for (auto* o : outs_)
      if (o->explaining()) return true;
    return false;
  }
  void explain(std::string_view fn, std::string_view what) override {
    for (auto* o : outs_)
      if (o->explaining()) o->explain(fn, what);
  }
  void segment(const world& w, const struct segment& s, Nanos arrive, seg_fate f) override {
    for (auto* o : outs_) o->segment(w, s, arrive, f);
  }
  void call(const world& w, const call_event& c) override { for (auto* o : outs_) o->call(w, c); }
  bool wants_calls() const override {
    for (auto* o : outs_)
      if (o->wants_calls()) return true;
    return false;
  }
  void timer(const world& w, timer_kind k, sock_id id) override { for (auto* o : outs_) o->timer(w, k, id); }
  void finish(const world& w, Nanos end) override { for (auto* o : outs_) o->finish(w, end); }

 private:
  std::vector<observer*> outs_;
};

// How the model arms timers without knowing the engine (net/ never includes engine/).
enum class timer_kind : uint8_t { timewait, retransmit, keepalive };
class timer_sink {
 public:
  virtual ~timer_sink() = default;
  // Fire `kind` for `sk` at virtual time `when` unless sk.timer_gen has changed meanwhile.
  virtual void arm(Nanos when, timer_kind kind, sock_id sk, uint32_t gen) = 0;
};

}  // namespace portsim::net
