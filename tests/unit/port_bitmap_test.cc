// find_free_step2() (the 64-candidates-per-word scan of connect()'s parity pass, with the
// full-word summary) against the obvious one-port-at-a-time scan, on random sets with runs of
// full words (a destination nearly exhausted), every parity and window, and after clears.
#include <catch2/catch.hpp>

#include <random>

#include "portsim/net/port_bitmap.h"

using portsim::net::find_free_step2;
using portsim::net::PortBitmap;

namespace {

uint32_t naive(const PortBitmap& a, const PortBitmap* b, const PortBitmap* c, uint32_t first, uint32_t count) {
  for (uint32_t k = 0; k < count; ++k) {
    const uint32_t p = first + 2 * k;
    if (!a.test(p) && !(b && b->test(p)) && !(c && c->test(p))) return k;
  }
  return count;
}

void fill_runs(PortBitmap& bm, std::mt19937& rng, int runs) {
  for (int r = 0; r < runs; ++r) {
    const uint32_t lo = rng() % 65536, len = rng() % 20000;
    for (uint32_t p = lo; p < lo + len && p < 65536; ++p) bm.set(p);
  }
  for (int i = 0; i < 50; ++i) bm.clear(rng() % 65536);  // holes, some inside full words
}

}  // namespace

TEST_CASE("find_free_step2 agrees with a port-by-port scan, full-word summary included", "[port_bitmap]") {
  std::mt19937 rng(12345);
  for (int round = 0; round < 60; ++round) {
    PortBitmap a, b, c;
    fill_runs(a, rng, 1);
    fill_runs(b, rng, 3);
    fill_runs(c, rng, 2);
    for (int q = 0; q < 200; ++q) {
      const uint32_t first = rng() % 65536;
      const uint32_t max_count = (65536 - first + 1) / 2;
      const uint32_t count = q % 4 == 0 ? max_count : rng() % (max_count + 1);
      INFO("round " << round << " first " << first << " count " << count);
      REQUIRE(find_free_step2(a, &b, &c, first, count) == naive(a, &b, &c, first, count));
      REQUIRE(find_free_step2(b, nullptr, &c, first, count) == naive(b, nullptr, &c, first, count));
      REQUIRE(find_free_step2(a, &b, nullptr, first, count) == naive(a, &b, nullptr, first, count));
    }
  }
}

TEST_CASE("a full class is skipped by the summary and a single hole is still found", "[port_bitmap]") {
  PortBitmap bm;
  for (uint32_t p = 0; p < 65536; p += 2) bm.set(p);  // every even port
  CHECK(find_free_step2(bm, nullptr, nullptr, 32768, 14116) == 14116);
  CHECK(bm.full(0, 7) == ~uint64_t(0));
  bm.clear(60998);  // the last candidate of the default range's even class
  CHECK(bm.full(0, 7) != ~uint64_t(0));
  CHECK(find_free_step2(bm, nullptr, nullptr, 32768, 14116) == (60998 - 32768) / 2);
  CHECK(find_free_step2(bm, nullptr, nullptr, 32768, 14115) == 14115);  // outside the window
  bm.set(60998);
  CHECK(find_free_step2(bm, nullptr, nullptr, 32769, 14116) == 0);  // odd class untouched
}
