// The event queue: a radix heap over time by 8-bit digits (engine.h).
#include "portsim/engine/engine.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "portsim/base/assert.h"

namespace portsim::engine {

void Engine::Bucket::grow() {
  const size_t n = size();
  const size_t cap_n = n ? 2 * n : 16;
  Event* fresh = static_cast<Event*>(::operator new(cap_n * sizeof(Event)));
  if (n) std::memcpy(static_cast<void*>(fresh), begin, n * sizeof(Event));
  ::operator delete(begin);
  begin = fresh;
  end = fresh + n;
  cap = fresh + cap_n;
}

// Full: double, unrolled to start at 0.
void Engine::Ring::grow() {
  std::vector<Event> bigger(buf.empty() ? 16 : 2 * buf.size());
  for (size_t i = 0; i < n; ++i) bigger[i] = buf[(head + i) & (buf.size() - 1)];
  buf.swap(bigger);
  head = 0;
}

void Engine::scheduled_in_the_past(Nanos t) const {
  PORTSIM_ASSERT(false, "event scheduled in the past ({} < {})", t, now_);
  std::abort();
}

// The instant is over and `from`, bucket i, the lowest non-empty one, holds at least two
// events: its earliest time T is the next instant (false: T is after until, nothing changes).
// Its other events move to lower buckets relative to T; T's events come back in x if alone,
// else go to the rings by (prio, seq) and x is the first.
bool Engine::settle(Bucket& from, unsigned i, Nanos until, Event& x) {
  Nanos next = from.begin->t;
  for (const Event* y = from.begin + 1; y < from.end; ++y) next = std::min(next, y->t);
  if (next > until) return false;
  now_ = next;
  const unsigned w = i >> 6;
  uint32_t summary = summary_;
  if (!(nonempty_[w] &= ~(uint64_t(1) << (i & 63)))) summary &= ~(1u << w);
  batch_.end = batch_.begin;
  // Every other event goes to a lower bucket: it agrees with next down to bucket i's digit.
  for (const Event* y = from.begin; y != from.end; ++y) {
    const Nanos d = y->t ^ next;
    if (!d) {
      *batch_.alloc() = *y;
      continue;
    }
    const unsigned j = bucket_of(y->t, d);
    *buckets_[j].alloc() = *y;
    nonempty_[j >> 6] |= uint64_t(1) << (j & 63);
    summary |= 1u << (j >> 6);
  }
  summary_ = summary;
  from.end = from.begin;
  if (batch_.size() == 1) {
    x = *batch_.begin;
    return true;
  }
  std::sort(batch_.begin, batch_.end, [](const Event& l, const Event& r) { return l.prio != r.prio ? l.prio < r.prio : l.seq < r.seq; });
  for (const Event* y = batch_.begin; y != batch_.end; ++y) *instant_slot(y->prio) = *y;
  x = pop_instant();
  return true;
}

uint64_t Engine::run(EventHandler& h, Nanos until, uint64_t max_events) {
  uint64_t n = 0;
  Event x;
  while (size_ && n < max_events && !stop_) {
    if (instant_mask_) {
      if (now_ > until) break;
      x = pop_instant();
    } else {
      const unsigned w = unsigned(__builtin_ctz(summary_));
      const unsigned i = w << 6 | unsigned(__builtin_ctzll(nonempty_[w]));
      Bucket& from = buckets_[i];
      if (from.size() == 1) {  // alone in its bucket: the next instant, nothing to move
        if (from.begin->t > until) break;
        x = *from.begin;
        from.end = from.begin;
        if (!(nonempty_[w] &= ~(uint64_t(1) << (i & 63)))) summary_ &= ~(1u << w);
        now_ = x.t;
      } else if (!settle(from, i, until, x)) {
        break;
      }
    }
    --size_;
    h.handle(x);
    ++n;
  }
  events_run_ += n;
  return n;
}

}  // namespace portsim::engine
