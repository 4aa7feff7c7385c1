// The virtual-time event engine. Events run in (time, prio, seq) order: seq is the insertion
// counter, so events of equal time and priority run FIFO and a run is reproducible.
// Cost: HEADER-TBD
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
  void schedule(const Event& ev) {
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
    ~Bucket();
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
  // A key with t > now_ goes to bucket (L, s): L the highest kDigitBits-bit digit in which t
  // differs from now_ (t's is larger), s that digit of t. Bucket indices L << kDigitBits | s
  // increase with t, so the lowest non-empty bucket holds the earliest keys; moving now_ to one
  // of its keys leaves every other bucket valid.
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
  bool settle(Bucket& from, unsigned i, Nanos until, Event& x);  // see engine.cc
  void enter_instant();               // batch_ (one instant, >= 2 events) into the rings by ord

  Bucket buckets_[kBuckets];
  uint64_t nonempty_[(kBuckets + 63) / 64] = {};  // bit i % 64 of word i / 64: buckets_[i] is not empty
  uint32_t summary_ = 0;                   // bit w: nonempty_[w] != 0
  Ring instant_[4];                   // t == now_, by prio
  unsigned instant_mask_ = 0;         // bit p: instant_[p] is not empty
  Bucket batch_;                      // settle's keys of the next instant
  size_t size_ = 0;
  Nanos now_ = 0;
  uint64_t seq_ = 0;
  uint64_t events_run_ = 0;
  bool stop_ = false;
};

}  // namespace portsim::engine
