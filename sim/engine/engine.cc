#include "portsim/engine/engine.h"

#include <algorithm>

#include "portsim/base/assert.h"

namespace portsim::engine {

namespace {
constexpr uint64_t kSeqMask = (uint64_t(1) << 62) - 1;
// now_heap_ is a min-heap by ord: std::push_heap keeps the largest first, so compare reversed.
struct OrdAfter {
  template <typename N>
  bool operator()(const N& x, const N& y) const { return x.ord > y.ord; }
};
}  // namespace

void Engine::place(const Node& n) {
  if (n.t == last_) {
    now_heap_.push_back(n);
    std::push_heap(now_heap_.begin(), now_heap_.end(), OrdAfter{});
    return;
  }
  const unsigned b = bucket_of(n.t, last_);
  buckets_[b].push_back(n);
  nonempty_ |= uint64_t(1) << (b - 1);
}

// The instant is over: the lowest non-empty bucket holds the next time (every key in a lower
// bucket would be earlier); its keys move to lower buckets relative to that time, those of
// that very time into the instant heap.
bool Engine::settle() {
  if (!nonempty_) return false;
  const unsigned b = unsigned(__builtin_ctzll(nonempty_)) + 1;
  std::vector<Node>& from = buckets_[b];
  Nanos next = from.front().t;
  for (const Node& n : from) next = std::min(next, n.t);
  last_ = next;
  nonempty_ &= ~(uint64_t(1) << (b - 1));
  std::vector<Node> moving;
  moving.swap(from);
  for (const Node& n : moving) place(n);
  moving.clear();
  moving.swap(from);  // keep the capacity for the next fill
  return true;
}

// Every key again, relative to the earliest time.
void Engine::rebuild() {
  std::vector<Node> all;
  all.reserve(size_);
  all.insert(all.end(), now_heap_.begin(), now_heap_.end());
  now_heap_.clear();
  for (unsigned b = 1; b <= 64; ++b) {
    all.insert(all.end(), buckets_[b].begin(), buckets_[b].end());
    buckets_[b].clear();
  }
  nonempty_ = 0;
  std::sort(all.begin(), all.end(), less);
  if (!all.empty()) last_ = std::min(last_, all.front().t);
  for (const Node& n : all) place(n);
}

void Engine::schedule(Event ev) {
  PORTSIM_ASSERT(ev.t >= now_, "event scheduled in the past ({} < {})", ev.t, now_);
  const Node n{ev.t, uint64_t(ev.prio) << 62 | (seq_++ & kSeqMask), ev.b, ev.a, ev.kind};
  if (ev.t < last_) {  // a run stopped at its horizon had moved last_ past now: start over from t
    last_ = ev.t;
    rebuild();
  }
  ++size_;
  place(n);
}

uint64_t Engine::run(EventHandler& h, Nanos until, uint64_t max_events) {
  uint64_t n = 0;
  while (size_ && n < max_events && !stop_) {
    if (now_heap_.empty() && !settle()) break;
    if (last_ > until) break;
    std::pop_heap(now_heap_.begin(), now_heap_.end(), OrdAfter{});
    const Node top = now_heap_.back();
    now_heap_.pop_back();
    --size_;
    now_ = top.t;
    Event ev;
    ev.t = top.t;
    ev.prio = Prio(top.ord >> 62);
    ev.kind = top.kind;
    ev.a = top.a;
    ev.b = top.b;
    ev.seq = top.ord & kSeqMask;
    h.handle(ev);
    ++n;
  }
  events_run_ += n;
  return n;
}

}  // namespace portsim::engine
