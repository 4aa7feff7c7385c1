// IdTable (id_table.h): the open-addressing index behind ehash and the destination index,
// checked against std::unordered_multimap over random inserts and erases with colliding hashes.
#include <catch2/catch.hpp>

#include <unordered_map>
#include <vector>

#include "portsim/net/id_table.h"

using portsim::net::IdTable;

TEST_CASE("IdTable: finds exactly what was inserted and not erased", "[id_table]") {
  IdTable t;
  std::unordered_multimap<uint32_t, uint32_t> ref;  // hash -> id
  std::vector<std::pair<uint32_t, uint32_t>> live;
  uint64_t x = 99;
  auto rnd = [&x]() { return x = x * 6364136223846793005ULL + 1442695040888963407ULL, uint32_t(x >> 32); };
  uint32_t next_id = 0;
  for (int step = 0; step < 200000; ++step) {
    if (live.empty() || rnd() % 3 != 0) {
      const uint32_t h = rnd() % 5000 == 0 ? 7u : rnd() & 0xffff0000u;  // clusters and repeats
      t.insert(h, next_id);
      ref.emplace(h, next_id);
      live.push_back({h, next_id++});
    } else {
      const size_t k = rnd() % live.size();
      const auto [h, id] = live[k];
      t.erase(h, id);
      auto range = ref.equal_range(h);
      for (auto it = range.first; it != range.second; ++it)
        if (it->second == id) {
          ref.erase(it);
          break;
        }
      live[k] = live.back();
      live.pop_back();
    }
    if (step % 997 == 0) t.reserve(live.size() * 2);
  }
  REQUIRE(t.size() == ref.size());
  for (const auto& [h, id] : live) {
    const uint32_t want = id;
    CHECK(t.find(h, [&](uint32_t got) { return got == want; }) == int64_t(want));
  }
  CHECK(t.find(3, [](uint32_t) { return true; }) == -1);  // a hash never inserted
  // Every live id under the hot hash 7 is found, no erased one is.
  size_t under7 = 0;
  for (const auto& [h, id] : live) under7 += h == 7;
  size_t found7 = 0;
  for (uint32_t id = 0; id < next_id; ++id)
    found7 += t.find(7, [&](uint32_t got) { return got == id; }) >= 0;
  CHECK(found7 == under7);
}
