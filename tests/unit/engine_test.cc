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
