#include "portsim/engine/engine.h"

#include "portsim/base/assert.h"

namespace portsim::engine {

void Engine::schedule(Event ev) {
  PORTSIM_ASSERT(ev.t >= now_, "event scheduled in the past ({} < {})", ev.t, now_);
  ev.seq = seq_++;
  heap_.push(ev);
}

uint64_t Engine::run(EventHandler& h, Nanos until, uint64_t max_events) {
  uint64_t n = 0;
  while (!heap_.empty() && heap_.top().t <= until && n < max_events && !stop_) {
    const Event ev = heap_.top();
    heap_.pop();
    now_ = ev.t;
    h.handle(ev);
    ++n;
  }
  events_run_ += n;
  return n;
}

}  // namespace portsim::engine
