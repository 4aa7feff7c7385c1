// The virtual-time event engine. Events run in (time, prio, seq) order: seq is the insertion
// counter, so events of equal time and priority run FIFO and a run is reproducible.
// Cost: a radix heap over time (events are never scheduled before now): 32-byte records (time;
// prio ‖ seq; the payload kind, a, b) sit in 64 buckets by the highest bit in which their time
// differs from the last time popped, and the events of that very instant in a small heap
// ordered by prio ‖ seq. A record moves to a lower bucket at most 64 times over its life,
// always in a sequential pass over a vector, so there is no cache-missing sift through a big
// heap and no payload looked up elsewhere. No allocation per event in steady state.
// Timeline repetitions are scheduled one at a time (the next when the current runs).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "portsim/base/time.h"

namespace portsim::engine {

// The order of these values is deliberate: changing it changes traces. At one instant, timers
// that expire (e.g. TIME_WAIT's 60 s) run first, the way a due kernel timer has already fired
// when a syscall runs at the same jiffy; then segments arriving at that instant (softirq work
// done before the process runs); then the scenario's calls.
// Observers (ss snapshots) run last: they see the instant's final state.
enum class Prio : uint8_t { Timer = 0, Wire = 1, Call = 2, Observe = 3 };

struct Event {
  Nanos t = 0;
  Prio prio = Prio::Call;
  uint8_t kind = 0;     // interpreted by the handler
  uint32_t a = 0;       // handler-defined (e.g. timeline index, sock id)
  uint64_t b = 0;       // handler-defined (e.g. repetition, timer generation)
  uint64_t seq = 0;     // set by the engine
};

class EventHandler {
 public:
  virtual ~EventHandler() = default;
  virtual void handle(const Event& ev) = 0;
};

class Engine {
 public:
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // Schedules ev at ev.t, which must not be before now().
  void schedule(Event ev);
  // Runs events until none is left, the next is after `until`, or `max_events` have run.
  // Returns events run.
  uint64_t run(EventHandler& h, Nanos until = UINT64_MAX, uint64_t max_events = UINT64_MAX);
  Nanos now() const { return now_; }
  uint64_t events_run() const { return events_run_; }
  bool empty() const { return size_ == 0; }
  size_t pending() const { return size_; }
  // Makes run() return after the current event (the events left stay queued).
  void stop() { stop_ = true; }

  // Node::ord is prio (2 bits) ‖ seq (62 bits): 4.6·10^18 events before seq could wrap.

 private:
  struct Node {
    Nanos t;
    uint64_t ord;
    uint64_t b;
    uint32_t a;
    uint8_t kind;
  };
  static bool less(const Node& x, const Node& y) { return x.t < y.t || (x.t == y.t && x.ord < y.ord); }
  static unsigned bucket_of(Nanos t, Nanos last) { return 64u - unsigned(__builtin_clzll(t ^ last)); }  // t != last
  void place(const Node& n);   // into the instant heap (t == last_) or its bucket
  bool settle();               // the instant heap empty: moves last_ to the next time; false if none
  void rebuild();              // re-buckets every key (an event before last_)

  Nanos last_ = 0;                   // the time the buckets are relative to
  std::vector<Node> now_heap_;       // keys at t == last_, a min-heap by ord
  std::vector<Node> buckets_[65];    // [1..64]: keys with t > last_ by the highest differing bit
  uint64_t nonempty_ = 0;            // bit i-1: buckets_[i] holds keys
  size_t size_ = 0;
  Nanos now_ = 0;
  uint64_t seq_ = 0;
  uint64_t events_run_ = 0;
  bool stop_ = false;
};

}  // namespace portsim::engine
