// The engine's ordering contract (engine.h): time, then priority class, then insertion order.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <queue>
#include <tuple>
#include <vector>

#include "portsim/engine/engine.h"

using namespace portsim;

namespace {
struct Recorder : engine::EventHandler {
  std::vector<uint32_t> seen;
  void handle(const engine::Event& ev) override { seen.push_back(ev.a); }
};
}  // namespace

TEST_CASE("engine: events run by time, then timers before calls, then FIFO", "[engine]") {
  engine::Engine e;
  e.schedule({20, engine::Prio::Call, 0, 1, 0});
  e.schedule({10, engine::Prio::Call, 0, 2, 0});
  e.schedule({10, engine::Prio::Call, 0, 3, 0});
  e.schedule({10, engine::Prio::Timer, 0, 4, 0});
  Recorder r;
  CHECK(e.run(r) == 4);
  CHECK(r.seen == std::vector<uint32_t>{4, 2, 3, 1});
  CHECK(e.now() == 20);
}

TEST_CASE("engine: run stops at the horizon", "[engine]") {
  engine::Engine e;
  e.schedule({5, engine::Prio::Call, 0, 1, 0});
  e.schedule({50, engine::Prio::Call, 0, 2, 0});
  Recorder r;
  CHECK(e.run(r, 10) == 1);
  CHECK_FALSE(e.empty());
}

// The queue against the contract's definition: 20 000 events with colliding times and
// mixed priorities, some scheduled while running, come out sorted by (time, prio, insertion).
TEST_CASE("engine: a large mixed queue runs in (time, prio, insertion) order", "[engine]") {
  struct Ref {
    Nanos t;
    int prio;
    uint32_t id;
  };
  std::vector<Ref> ref;
  engine::Engine e;
  uint64_t x = 12345;
  auto rnd = [&x]() { return x = x * 6364136223846793005ULL + 1442695040888963407ULL, uint32_t(x >> 33); };
  uint32_t id = 0;
  for (; id < 10000; ++id) {
    const Nanos t = rnd() % 500;
    const auto p = engine::Prio(rnd() % 4);
    e.schedule({t, p, 0, id, 0});
    ref.push_back({t, int(p), id});
  }
  struct Chain : engine::EventHandler {
    engine::Engine& e;
    std::vector<Ref>& ref;
    uint32_t& id;
    std::vector<uint32_t> seen;
    Chain(engine::Engine& en, std::vector<Ref>& r, uint32_t& i) : e(en), ref(r), id(i) {}
    void handle(const engine::Event& ev) override {
      seen.push_back(ev.a);
      if (ev.a < 10000) {  // each first-generation event schedules one more, strictly later
        const Nanos t = ev.t + 1 + ev.a % 7;
        e.schedule({t, engine::Prio::Wire, 0, id, 0});
        ref.push_back({t, int(engine::Prio::Wire), id});
        ++id;
      }
    }
  } h(e, ref, id);
  CHECK(e.run(h) == 20000);
  // The reference: run order is (t, prio, insertion) — a stable sort by (t, prio) of insertion
  // order, replayed as a simulation since later events are inserted while running.
  std::vector<uint32_t> want;
  {
    std::vector<Ref> pending(ref.begin(), ref.begin() + 10000);
    std::vector<Ref> later(ref.begin() + 10000, ref.end());
    // Insertion order of `later` is the order they were scheduled: seen order of their parents.
    std::vector<Ref> all = pending;
    all.insert(all.end(), later.begin(), later.end());
    std::stable_sort(all.begin(), all.end(), [](const Ref& a, const Ref& b) { return a.t != b.t ? a.t < b.t : a.prio < b.prio; });
    for (const Ref& r : all) want.push_back(r.id);
  }
  CHECK(h.seen == want);
}

// After a run stops at its horizon the engine has looked at the next event (50): an event
// scheduled between now and it (20, 20 at a lower prio) still runs first, in order.
TEST_CASE("engine: an event scheduled after a horizon stop, before the next one, runs first", "[engine]") {
  engine::Engine e;
  e.schedule({5, engine::Prio::Call, 0, 1, 0});
  e.schedule({50, engine::Prio::Call, 0, 2, 0});
  Recorder r;
  CHECK(e.run(r, 10) == 1);
  e.schedule({20, engine::Prio::Call, 0, 3, 0});
  e.schedule({20, engine::Prio::Timer, 0, 4, 0});
  CHECK(e.run(r) == 3);
  CHECK(r.seen == std::vector<uint32_t>{1, 4, 3, 2});
}

// The definition the engine must match, kept naive: a binary heap on (time, prio, seq), seq
// the insertion counter, with run()'s stopping rules (horizon, max_events, stop()).
namespace {
class RefEngine {
 public:
  void schedule(engine::Event ev) {
    REQUIRE(ev.t >= now_);
    ev.seq = seq_++;
    q_.push(ev);
  }
  uint64_t run(engine::EventHandler& h, Nanos until = UINT64_MAX, uint64_t max_events = UINT64_MAX) {
    uint64_t n = 0;
    while (!q_.empty() && n < max_events && !stop_) {
      const engine::Event ev = q_.top();
      if (ev.t > until) break;
      q_.pop();
      now_ = ev.t;
      h.handle(ev);
      ++n;
    }
    events_run_ += n;
    return n;
  }
  Nanos now() const { return now_; }
  size_t pending() const { return q_.size(); }
  bool empty() const { return q_.empty(); }
  uint64_t events_run() const { return events_run_; }
  void stop() { stop_ = true; }

 private:
  struct After {
    bool operator()(const engine::Event& x, const engine::Event& y) const {
      return std::tie(x.t, x.prio, x.seq) > std::tie(y.t, y.prio, y.seq);
    }
  };
  std::priority_queue<engine::Event, std::vector<engine::Event>, After> q_;
  Nanos now_ = 0;
  uint64_t seq_ = 0;
  uint64_t events_run_ = 0;
  bool stop_ = false;
};

// splitmix64: one stream per driver, consumed the same way as long as both see the same events.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

// A delay with many exact ties (0, 1, 2) and spans across every 8-bit digit of a time.
Nanos random_delay(Rng& r) {
  switch (r.below(8)) {
    case 0: case 1: return 0;
    case 2: return 1 + r.below(2);
    case 3: return r.below(300);
    case 4: return r.below(uint64_t(1) << 20);
    case 5: return (uint64_t(1) << (8 * (1 + r.below(6)))) - r.below(3);  // digit boundaries
    case 6: return r.below(uint64_t(1) << 40);
    default: return r.below(uint64_t(1) << 58);
  }
}

struct Seen {
  uint32_t a;
  Nanos t;
  engine::Prio prio;
  uint64_t seq;
  uint64_t b;
  uint8_t kind;
  bool operator==(const Seen&) const = default;
};

// Each event schedules 0-2 children (fewer as the run grows) and may call stop().
template <typename E>
struct Driver : engine::EventHandler {
  E& e;
  Rng r;
  uint64_t stop_at;  // the event count at which the handler calls stop() (UINT64_MAX: never)
  std::vector<Seen> seen;
  uint32_t next_id = 0;
  Driver(E& en, uint64_t seed, uint64_t stop_after) : e(en), r{seed}, stop_at(stop_after) {}
  void add(Nanos t) {
    const auto p = engine::Prio(r.below(4));
    const uint8_t kind = uint8_t(r.below(256));
    const uint64_t b = r.next();
    e.schedule({t, p, kind, next_id++, b});
  }
  void handle(const engine::Event& ev) override {
    seen.push_back({ev.a, ev.t, ev.prio, ev.seq, ev.b, ev.kind});
    CHECK(e.now() == ev.t);
    if (seen.size() == stop_at) e.stop();
    const uint64_t children = seen.size() < 3000 ? r.below(3) : r.below(2);
    for (uint64_t c = 0; c < children; ++c) {
      const Nanos d = random_delay(r);
      add(ev.t > UINT64_MAX - d ? UINT64_MAX : ev.t + d);
    }
  }
};

// One trial: the same operations on both engines; everything observable must agree.
void differential_trial(uint64_t seed) {
  engine::Engine e;
  RefEngine ref;
  Rng outer{seed * 7919 + 1};
  const uint64_t stop_after = outer.below(4) == 0 ? 1 + outer.below(4000) : UINT64_MAX;
  Driver<engine::Engine> de(e, seed, stop_after);
  Driver<RefEngine> dr(ref, seed, stop_after);
  const size_t initial = 1 + outer.below(2000);
  const Nanos spread = outer.below(2) ? 1000 : uint64_t(1) << 44;
  for (size_t i = 0; i < initial; ++i) {
    const Nanos t = i % 5 == 0 ? outer.below(8) : outer.below(spread);  // many equal times
    de.add(t);
    dr.add(t);
  }
  for (int round = 0; round < 400 && !(e.empty() && ref.empty()); ++round) {
    Nanos until = UINT64_MAX;
    uint64_t max_events = UINT64_MAX;
    switch (outer.below(5)) {
      case 0: until = e.now() + outer.below(2000); break;  // a horizon stop
      case 4: until = e.now() - std::min(e.now(), 1 + outer.below(3)), max_events = 1 + outer.below(5); break;  // before now
      case 1: until = e.now() + (outer.below(uint64_t(1) << 40)); break;
      case 2: max_events = 1 + outer.below(50); break;
      default: until = e.now() + outer.below(5000), max_events = 1 + outer.below(200); break;
    }
    const uint64_t ran = e.run(de, until, max_events);
    REQUIRE(ref.run(dr, until, max_events) == ran);
    REQUIRE(e.now() == ref.now());
    REQUIRE(e.pending() == ref.pending());
    REQUIRE(e.events_run() == ref.events_run());
    // Between runs: events at now, just after now (before the next one the engine looked at
    // when it stopped at its horizon), and anywhere later.
    for (uint64_t k = outer.below(4); k > 0; --k) {
      const uint64_t kind = outer.below(3);
      const Nanos t = kind == 0 ? e.now() : kind == 1 ? e.now() + 1 + outer.below(3) : e.now() + random_delay(outer);
      de.add(t);
      dr.add(t);
    }
  }
  if (stop_after == UINT64_MAX) {  // drain
    CHECK(e.run(de) == ref.run(dr));
    CHECK(e.empty());
  }
  REQUIRE(de.seen.size() == dr.seen.size());
  CHECK(de.seen == dr.seen);
}
}  // namespace

// Randomized against the reference: 60 trials mixing equal times and prios, events scheduled
// while running (at the same instant too), horizon stops followed by events scheduled before
// the next pending one, max_events, stop(), and times across every digit of the radix heap.
TEST_CASE("engine: randomized runs match a (time, prio, seq) priority queue", "[engine]") {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    INFO("seed " << seed);
    differential_trial(seed);
  }
}

// peek() is a hint that must never lie: whatever it names as the next event (and the one after)
// is what run() hands out next, when the handler schedules nothing; so is peek_instant(k), the
// event k + 1 places on within the current instant. Ties, all four priorities
// and times across every digit; with times mostly apart it must also know the next event
// most of the time (churn-random: 78 % of events), or the prefetching it serves is idle.
TEST_CASE("engine: peek names the events that run next, or nothing", "[engine]") {
  struct Peeker : engine::EventHandler {
    engine::Engine& e;
    std::vector<uint64_t> seq, next0, next1;  // UINT64_MAX: not named
    std::vector<std::array<uint64_t, 4>> instant;  // peek_instant(0..3)
    explicit Peeker(engine::Engine& en) : e(en) {}
    void handle(const engine::Event& ev) override {
      const engine::Event* n[2];
      e.peek(n);
      seq.push_back(ev.seq);
      next0.push_back(n[0] ? n[0]->seq : UINT64_MAX);
      next1.push_back(n[1] ? n[1]->seq : UINT64_MAX);
      std::array<uint64_t, 4> k{};
      for (size_t i = 0; i < k.size(); ++i) k[i] = e.peek_instant(i) ? e.peek_instant(i)->seq : UINT64_MAX;
      instant.push_back(k);
    }
  };
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    INFO("seed " << seed);
    engine::Engine e;
    Rng r{seed};
    const bool ties = seed % 2;
    for (int i = 0; i < 3000; ++i)
      e.schedule({ties ? random_delay(r) : r.below(uint64_t(1) << 40), engine::Prio(r.below(4)), 0, uint32_t(i), 0});
    Peeker p(e);
    REQUIRE(e.run(p) == 3000);
    size_t named = 0, named_instant = 0;
    for (size_t i = 0; i < p.seq.size(); ++i) {
      if (p.next0[i] != UINT64_MAX) {
        ++named;
        REQUIRE(i + 1 < p.seq.size());
        CHECK(p.next0[i] == p.seq[i + 1]);
      }
      if (p.next1[i] != UINT64_MAX) {
        REQUIRE(i + 2 < p.seq.size());
        CHECK(p.next1[i] == p.seq[i + 2]);
      }
      for (size_t k = 0; k < 4; ++k) {
        if (p.instant[i][k] == UINT64_MAX) continue;
        ++named_instant;
        REQUIRE(i + 1 + k < p.seq.size());
        CHECK(p.instant[i][k] == p.seq[i + 1 + k]);
      }
    }
    if (ties) CHECK(named_instant > p.seq.size());  // ties: instants of many events
    if (!ties) CHECK(named > p.seq.size() / 2);
  }
}
