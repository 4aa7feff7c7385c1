// The virtual-time event engine. Events run in (time, prio, seq) order: seq is the insertion
// counter, so events of equal time and priority run FIFO and a run is reproducible.
// Cost: a radix heap over time by 8-bit digits, the Event records themselves (32 bytes, payload
// inline) stored unordered in buckets; nothing is compared on the way in.
// - An event after now() goes to bucket (L, s): L the highest 8-bit digit in which its time
//   differs from now(), s its own digit L (8 levels x 256 buckets, bucket order = time order).
//   schedule() is inline: one clz, a 32-byte store, two bits set. The lowest non-empty bucket
//   is found by two ctz (32 bitmap words and their summary).
// - If that bucket holds one event, it is the next one and runs straight away (77 % of
//   churn-random's events). Otherwise the bucket's earliest time becomes now() and its other
//   events move to lower buckets (each move drops at least one digit, so at most 7 per event;
//   0.9 per event on churn-random).
// - The events of the current instant wait in four FIFO rings, one per prio: an event scheduled
//   at now() is appended (its seq is the largest so far); the events of a new instant that
//   arrive together are sorted by (prio, seq) once.
// - run() moves now() only to an event it runs, never past a horizon, so an event scheduled
//   after a horizon stop (before the next pending one) simply lands in its bucket.
// Measured with callgrind (2026-11-30, README "Performance"): churn-random ~152 instructions
// per event including schedule() (484 before), hold-1m's same-instant timeline calls ~70 (393).
// No allocation per event in steady state (buckets and rings keep their capacity); the 2 048
// bucket headers cost 48 KiB per engine.
// Timeline repetitions are scheduled one at a time (the next when the current runs).
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
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
static_assert(sizeof(Event) == 32, "the queue stores and moves Events as they are");

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
  [[gnu::always_inline]] void schedule(const Event& ev) {
    if (ev.t < now_) [[unlikely]] scheduled_in_the_past(ev.t);
    ++size_;
    const Nanos d = ev.t ^ now_;
    Event* slot;
    if (!d) {
      slot = instant_slot(ev.prio);
    } else {
      const unsigned i = bucket_of(ev.t, d);
      slot = buckets_[i].alloc();
      nonempty_[i >> 6] |= uint64_t(1) << (i & 63);
      summary_ |= 1u << (i >> 6);
    }
    *slot = ev;
    slot->seq = seq_++;
  }
  // Runs events until none is left, the next is after `until`, or `max_events` have run.
  // Returns events run.
  uint64_t run(EventHandler& h, Nanos until = UINT64_MAX, uint64_t max_events = UINT64_MAX);
  Nanos now() const { return now_; }
  uint64_t events_run() const { return events_run_; }
  // The events run() hands out next when known without work, nullptr where not: next[0] the
  // next one, next[1] the one after — each alone in its bucket, the two lowest non-empty ones
  // (while the current instant has events left: its next two of the next one's prio). A hint:
  // a handler may start loading what they will touch while it runs the current event.
  void peek(const Event* next[2]) const {
    next[0] = next[1] = nullptr;
    if (instant_mask_) {
      const Ring& r = instant_[__builtin_ctz(instant_mask_)];
      next[0] = &r.buf[r.head];
      if (r.n > 1) next[1] = &r.buf[(r.head + 1) & (r.buf.size() - 1)];
      return;
    }
    if (!summary_) return;
    unsigned w = unsigned(__builtin_ctz(summary_));
    uint64_t word = nonempty_[w];
    const Bucket* b = &buckets_[w << 6 | unsigned(__builtin_ctzll(word))];
    if (b->size() != 1) return;
    next[0] = b->begin;
    if (!(word &= word - 1)) {  // the next non-empty bitmap word
      const uint32_t rest = summary_ & (summary_ - 1);
      if (!rest) return;
      w = unsigned(__builtin_ctz(rest));
      word = nonempty_[w];
    }
    b = &buckets_[w << 6 | unsigned(__builtin_ctzll(word))];
    if (b->size() == 1) next[1] = b->begin;
  }
  // The event `k` places after the next one (k = 0: the next) among the current instant's
  // events of the next one's prio; nullptr when there is none or the instant is over.
  const Event* peek_instant(size_t k) const {
    if (!instant_mask_) return nullptr;
    const Ring& r = instant_[__builtin_ctz(instant_mask_)];
    return k < r.n ? &r.buf[(r.head + k) & (r.buf.size() - 1)] : nullptr;
  }
  bool empty() const { return size_ == 0; }
  size_t pending() const { return size_; }
  // Makes run() return after the current event (the events left stay queued).
  void stop() { stop_ = true; }

 private:
  // An unordered run of events; alloc() is the hot path of schedule and settle, grow() is not.
  struct Bucket {
    Event* begin = nullptr;
    Event* end = nullptr;
    Event* cap = nullptr;
    Bucket() = default;
    Bucket(const Bucket&) = delete;
    Bucket& operator=(const Bucket&) = delete;
    ~Bucket() {
      if (begin) ::operator delete(begin);
    }
    size_t size() const { return size_t(end - begin); }
    Event* alloc() {
      if (end == cap) [[unlikely]] grow();
      return end++;
    }
    void grow();
  };
  // The events of the current instant (t == now_) of one priority, in seq order: a ring.
  struct Ring {
    std::vector<Event> buf;  // size a power of two (or 0)
    size_t head = 0;
    size_t n = 0;
    Event* alloc() {
      if (n == buf.size()) [[unlikely]] grow();
      return &buf[(head + n++) & (buf.size() - 1)];
    }
    void grow();
    const Event& pop() {
      const Event& x = buf[head];
      head = (head + 1) & (buf.size() - 1);
      --n;
      return x;
    }
  };
  // An event with t > now_ goes to bucket (L, s): L the highest kDigitBits-bit digit in which t
  // differs from now_ (t's is larger), s that digit of t. Bucket indices L << kDigitBits | s
  // increase with t, so the lowest non-empty bucket holds the earliest events; moving now_ to
  // one of its events leaves every other bucket valid (they differ from it where they did).
  static constexpr unsigned kDigitBits = 8;
  static constexpr unsigned kLevels = (64 + kDigitBits - 1) / kDigitBits;
  static constexpr unsigned kBuckets = kLevels << kDigitBits;
  static unsigned bucket_of(Nanos t, Nanos d) {  // d = t ^ now_ != 0
    const unsigned level = (63u - unsigned(__builtin_clzll(d))) / kDigitBits;
    return level << kDigitBits | (unsigned(t >> (level * kDigitBits)) & ((1u << kDigitBits) - 1));
  }
  [[noreturn]] void scheduled_in_the_past(Nanos t) const;
  Event* instant_slot(Prio p) {  // the current instant's next slot of prio p: after its events
    instant_mask_ |= 1u << unsigned(p);
    return instant_[unsigned(p)].alloc();
  }
  Event pop_instant() {  // the current instant's next event: the lowest prio's first
    const unsigned p = unsigned(__builtin_ctz(instant_mask_));
    const Event x = instant_[p].pop();
    if (!instant_[p].n) instant_mask_ &= ~(1u << p);
    return x;
  }
  bool settle(Bucket& from, unsigned i, Nanos until, Event& x);  // see engine.cc

  Bucket buckets_[kBuckets];                      // t > now_
  uint64_t nonempty_[(kBuckets + 63) / 64] = {};  // bit i % 64 of word i / 64: buckets_[i] not empty
  uint32_t summary_ = 0;                          // bit w: nonempty_[w] != 0
  Ring instant_[4];                               // t == now_, by prio
  unsigned instant_mask_ = 0;                     // bit p: instant_[p] is not empty
  Bucket batch_;                                  // settle(): the events of the next instant
  size_t size_ = 0;
  Nanos now_ = 0;
  uint64_t seq_ = 0;
  uint64_t events_run_ = 0;
  bool stop_ = false;
};

}  // namespace portsim::engine
