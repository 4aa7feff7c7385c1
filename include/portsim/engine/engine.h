// The virtual-time event engine. Events run in (time, prio, seq) order: seq is the insertion
// counter, so events of equal time and priority run FIFO and a run is reproducible.
// Cost: binary heap, O(log n) insert and pop, 32 bytes an event; timeline repetitions are
// scheduled one at a time (the next when the current runs), so the heap stays small.
#pragma once
#include <cstdint>
#include <queue>
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
  // Schedules ev at ev.t, which must not be before now().
  void schedule(Event ev);
  // Runs events until none is left or the next is after `until`. Returns events run.
  uint64_t run(EventHandler& h, Nanos until = UINT64_MAX);
  Nanos now() const { return now_; }
  uint64_t events_run() const { return events_run_; }
  bool empty() const { return heap_.empty(); }

 private:
  struct Later {
    bool operator()(const Event& x, const Event& y) const {
      if (x.t != y.t) return x.t > y.t;
      if (x.prio != y.prio) return x.prio > y.prio;
      return x.seq > y.seq;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  Nanos now_ = 0;
  uint64_t seq_ = 0;
  uint64_t events_run_ = 0;
};

}  // namespace portsim::engine
