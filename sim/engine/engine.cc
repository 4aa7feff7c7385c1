#include "portsim/engine/engine.h"

#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <new>

#include "portsim/base/assert.h"

namespace portsim::engine {

Engine::Bucket::~Bucket() { ::operator delete(begin); }

void Engine::Bucket::grow() {
  const size_t n = size();
  const size_t cap_n = n ? 2 * n : 16;
  Node* fresh = static_cast<Node*>(::operator new(cap_n * sizeof(Node)));
  if (n) std::memcpy(static_cast<void*>(fresh), begin, n * sizeof(Node));
  ::operator delete(begin);
  begin = fresh;
  end = fresh + n;
  cap = fresh + cap_n;
}

void Engine::Ring::push(const Node& x) {
  if (n == buf.size()) {  // full: double, unrolled to start at 0
    std::vector<Node> bigger(buf.empty() ? 16 : 2 * buf.size());
    for (size_t i = 0; i < n; ++i) bigger[i] = buf[(head + i) & (buf.size() - 1)];
    buf.swap(bigger);
    head = 0;
  }
  buf[(head + n++) & (buf.size() - 1)] = x;
}

Engine::Node Engine::Ring::pop() {
  const Node x = buf[head];
  head = (head + 1) & (buf.size() - 1);
  --n;
  return x;
}

// The instant is over: the lowest non-empty bucket holds the next time T (its minimum). Its
// other keys move to lower buckets relative to T; T's keys are the next instant. A lone key
// of T comes back in x; several go through batch_ into the rings (x is then the first).
bool Engine::settle(Nanos until, Node& x) {
  const unsigned w = unsigned(__builtin_ctz(summary_));
  const unsigned i = w << 6 | unsigned(__builtin_ctzll(nonempty_[w]));
  Bucket& from = buckets_[i];
  Nanos next = from.begin->t;
  for (const Node* y = from.begin + 1; y < from.end; ++y) next = std::min(next, y->t);
  if (next > until) return false;
  now_ = next;
  uint32_t summary = summary_;
  if (!(nonempty_[w] &= ~(uint64_t(1) << (i & 63)))) summary &= ~(1u << w);
  batch_.end = batch_.begin;
  // Every other key goes to a lower bucket: it agrees with next down to its digit of i.
  for (const Node* y = from.begin; y != from.end; ++y) {
    const Nanos d = y->t ^ next;
    if (!d) {
      batch_.push(*y);
      continue;
    }
    const unsigned j = bucket_of(y->t, d);
    buckets_[j].push(*y);
    nonempty_[j >> 6] |= uint64_t(1) << (j & 63);
    summary |= 1u << (j >> 6);
  }
  summary_ = summary;
  from.end = from.begin;
  if (batch_.size() == 1) {
    x = *batch_.begin;
    return true;
  }
  enter_instant();
  const unsigned p = unsigned(__builtin_ctz(instant_mask_));
  x = instant_[p].pop();
  if (!instant_[p].n) instant_mask_ &= ~(1u << p);
  return true;
}

// Several keys of one time: they run by prio, then seq (the rings are empty).
void Engine::enter_instant() {
  std::sort(batch_.begin, batch_.end, [](const Node& l, const Node& r) { return l.ord < r.ord; });
  for (const Node* y = batch_.begin; y != batch_.end; ++y) {
    const unsigned p = unsigned(y->ord >> 62);
    instant_[p].push(*y);
    instant_mask_ |= 1u << p;
  }
}

void Engine::scheduled_in_the_past(Nanos t) const {
  PORTSIM_ASSERT(false, "event scheduled in the past ({} < {})", t, now_);
  std::abort();
}

// After every queued event of its prio: they have smaller seqs.
void Engine::schedule_now(const Node& x) {
  const unsigned p = unsigned(x.ord >> 62);
  instant_[p].push(x);
  instant_mask_ |= 1u << p;
}

uint64_t Engine::run(EventHandler& h, Nanos until, uint64_t max_events) {
  uint64_t n = 0;
  while (size_ && n < max_events && !stop_) {
    Node x;
    if (instant_mask_) {
      if (now_ > until) break;
      const unsigned p = unsigned(__builtin_ctz(instant_mask_));
      x = instant_[p].pop();
      if (!instant_[p].n) instant_mask_ &= ~(1u << p);
    } else if (!settle(until, x)) {
      break;
    }
    --size_;
    Event ev;
    ev.t = x.t;
    ev.prio = Prio(x.ord >> 62);
    ev.kind = x.kind;
    ev.a = x.a;
    ev.b = x.b;
    ev.seq = x.ord & kSeqMask;
    h.handle(ev);
    ++n;
  }
  events_run_ += n;
  return n;
}

}  // namespace portsim::engine
