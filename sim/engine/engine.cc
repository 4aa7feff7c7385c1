#include "portsim/engine/engine.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "portsim/base/assert.h"

namespace portsim::engine {

namespace {
constexpr uint64_t kSlotMask = (uint64_t(1) << Engine::kSlotBits) - 1;
constexpr uint64_t kSeqMask = (uint64_t(1) << Engine::kSeqBits) - 1;
}  // namespace

Engine::~Engine() { ::operator delete(heap_, std::align_val_t{64}); }

void Engine::grow() {
  const size_t cap = cap_ ? cap_ * 2 : 256;
  auto* fresh = static_cast<Node*>(::operator new((cap + kRootAt) * sizeof(Node), std::align_val_t{64}));
  if (heap_) std::memcpy(fresh, heap_, (size_ + kRootAt) * sizeof(Node));
  ::operator delete(heap_, std::align_val_t{64});
  heap_ = fresh;
  cap_ = cap;
}

// Every pending event gets a new seq in its current order (0, 1, …): the order is unchanged,
// and a sorted array is a heap.
void Engine::renumber() {
  Node* first = heap_ + kRootAt;
  std::sort(first, first + size_, less);
  for (size_t i = 0; i < size_; ++i) first[i].ord = (first[i].ord & ~(kSeqMask << kSlotBits)) | (uint64_t(i) << kSlotBits);
  seq_ = size_;
}

void Engine::schedule(Event ev) {
  PORTSIM_ASSERT(ev.t >= now_, "event scheduled in the past ({} < {})", ev.t, now_);
  if (seq_ > kSeqMask) renumber();
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    payload_[slot] = {ev.b, ev.a, ev.kind};
  } else {
    if (payload_.size() > kSlotMask) throw std::bad_alloc();  // 2^28 events pending
    slot = uint32_t(payload_.size());
    payload_.push_back({ev.b, ev.a, ev.kind});
  }
  if (size_ == cap_) grow();
  const Node n{ev.t, uint64_t(ev.prio) << 62 | seq_++ << kSlotBits | slot};
  size_t i = size_++;
  while (i > 0) {  // sift up
    const size_t parent = (i - 1) / 4;
    if (!less(n, at(parent))) break;
    at(i) = at(parent);
    i = parent;
  }
  at(i) = n;
}

// Removes the root: the last node sinks from the root through the smallest children.
void Engine::pop_root() {
  const Node last = at(--size_);
  if (size_ == 0) return;
  size_t i = 0;
  for (;;) {
    const size_t c = 4 * i + 1;
    if (c >= size_) break;
    size_t best = c;
    const size_t end = std::min(c + 4, size_);
    for (size_t j = c + 1; j < end; ++j)
      if (less(at(j), at(best))) best = j;
    if (!less(at(best), last)) break;
    at(i) = at(best);
    i = best;
  }
  at(i) = last;
}

uint64_t Engine::run(EventHandler& h, Nanos until, uint64_t max_events) {
  uint64_t n = 0;
  while (size_ && at(0).t <= until && n < max_events && !stop_) {
    const Node top = at(0);
    pop_root();
    const uint32_t slot = uint32_t(top.ord & kSlotMask);
    const Payload p = payload_[slot];
    free_slots_.push_back(slot);
    now_ = top.t;
    Event ev;
    ev.t = top.t;
    ev.prio = Prio(top.ord >> 62);
    ev.kind = p.kind;
    ev.a = p.a;
    ev.b = p.b;
    ev.seq = (top.ord >> kSlotBits) & kSeqMask;
    h.handle(ev);
    ++n;
  }
  events_run_ += n;
  return n;
}

}  // namespace portsim::engine
