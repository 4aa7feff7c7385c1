#include "portsim/engine/engine.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "portsim/base/assert.h"

namespace portsim::engine {

namespace {
constexpr uint64_t kSeqMask = (uint64_t(1) << 62) - 1;
}  // namespace

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
  const unsigned k = unsigned(__builtin_ctzll(nonempty_));
  Bucket& from = buckets_[k];
  if (from.size() == 1) {
    if (from.begin->t > until) return false;
    x = *from.begin;
    from.end = from.begin;
    nonempty_ &= ~(uint64_t(1) << k);
    now_ = x.t;
    return true;
  }
  Nanos next = from.begin->t;
  size_t at_next = 0;  // how many keys have that time
  for (const Node* y = from.begin; y != from.end; ++y) {
    if (y->t < next) {
      next = y->t;
      at_next = 1;
    } else {
      at_next += y->t == next;
    }
  }
  if (next > until) return false;
  now_ = next;
  uint64_t mask = nonempty_ & ~(uint64_t(1) << k);
  if (at_next > 1) batch_.clear();
  for (const Node* y = from.begin; y != from.end; ++y) {  // every key goes lower: it agrees with next above k
    const Nanos d = y->t ^ next;
    if (!d) [[unlikely]] {
      if (at_next == 1) x = *y;
      else batch_.push_back(*y);
      continue;
    }
    const unsigned j = bucket_of(d);
    buckets_[j].push(*y);
    mask |= uint64_t(1) << j;
  }
  nonempty_ = mask;
  from.end = from.begin;
  if (at_next == 1) return true;
  enter_instant();
  const unsigned p = unsigned(__builtin_ctz(instant_mask_));
  x = instant_[p].pop();
  if (!instant_[p].n) instant_mask_ &= ~(1u << p);
  return true;
}

// Several keys of one time: they run by prio, then seq (the rings are empty).
void Engine::enter_instant() {
  std::sort(batch_.begin(), batch_.end(), [](const Node& l, const Node& r) { return l.ord < r.ord; });
  for (const Node& y : batch_) {
    const unsigned p = unsigned(y.ord >> 62);
    instant_[p].push(y);
    instant_mask_ |= 1u << p;
  }
}

void Engine::schedule(Event ev) {
  PORTSIM_ASSERT(ev.t >= now_, "event scheduled in the past ({} < {})", ev.t, now_);
  const Node n{ev.t, uint64_t(ev.prio) << 62 | (seq_++ & kSeqMask), ev.b, ev.a, ev.kind};
  ++size_;
  const Nanos d = ev.t ^ now_;
  if (!d) {  // the current instant: after every queued event of its prio (they have smaller seqs)
    const unsigned p = unsigned(ev.prio);
    instant_[p].push(n);
    instant_mask_ |= 1u << p;
    return;
  }
  const unsigned k = bucket_of(d);
  buckets_[k].push(n);
  nonempty_ |= uint64_t(1) << k;
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
