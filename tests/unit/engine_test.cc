// The engine's ordering contract (engine.h): time, then priority class, then insertion order.
#include <catch2/catch.hpp>

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

// The 4-ary heap against the contract's definition: 20 000 events with colliding times and
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
