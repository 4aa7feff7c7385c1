// The virtual-time event engine. Events run in (time, prio, seq) order: seq is the insertion
// counter, so events of equal time and priority run FIFO and a run is reproducible.
// Cost: a 4-ary min-heap of 16-byte keys (time; prio ‖ seq ‖ slot), each node's four children
// in one 64-byte cache line, so a pop touches one line per level (log4 n levels); the event's
// payload (kind, a, b: 16 bytes) sits in a slot array recycled LIFO. No allocation per event
// in steady state. Timeline repetitions are scheduled one at a time (the next when the current
// runs), so the heap stays small.
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
  ~Engine();
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

  // Bits of Node::ord: prio (2) ‖ seq (kSeqBits) ‖ payload slot (kSlotBits). seq is renumbered
  // (order kept) when it would overflow; more than 2^kSlotBits pending events is out of memory.
  static constexpr unsigned kSlotBits = 28, kSeqBits = 62 - kSlotBits;

 private:
  struct Node {
    Nanos t;
    uint64_t ord;
  };
  struct Payload {
    uint64_t b;
    uint32_t a;
    uint8_t kind;
  };
  static bool less(const Node& x, const Node& y) { return x.t < y.t || (x.t == y.t && x.ord < y.ord); }
  // Logical index i lives at heap_[i + kRootAt]: the children of i (4i+1 … 4i+4) then start
  // at a multiple of 4 nodes = 64 bytes.
  static constexpr size_t kRootAt = 3;
  Node& at(size_t i) { return heap_[i + kRootAt]; }
  void grow();
  void pop_root();
  void renumber();

  Node* heap_ = nullptr;  // 64-byte aligned, cap_ + kRootAt nodes
  size_t size_ = 0, cap_ = 0;
  std::vector<Payload> payload_;
  std::vector<uint32_t> free_slots_;
  Nanos now_ = 0;
  uint64_t seq_ = 0;
  uint64_t events_run_ = 0;
  bool stop_ = false;
};

}  // namespace portsim::engine
