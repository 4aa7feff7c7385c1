// The connect destination index (connect_dest, inet_hashtables.cc: dest_find with its last-entry
// memo, dest_add, dest_remove) against a std::map reference: thousands of destinations, socks
// hashed into ehash and removed at random (entries freed with their last port, their indexes
// reused); after every step, random destinations are looked up and must answer exactly as the
// map does (no entry, or the entry of that destination with its port count).
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "world_fixture.h"

namespace {

using Dest = std::tuple<uint32_t, uint16_t>;  // (daddr, dport); netns and saddr fixed

}  // namespace

TEST_CASE("destination index: dest_find answers as a std::map of destinations", "[dest_index]") {
  using namespace portsim;
  test::World t(R"([{"name":"a","addresses":["10.0.0.1/8"]}])");
  net::world& w = t.w;
  std::mt19937 rng(4096);
  std::map<Dest, std::set<uint16_t>> ref;
  std::vector<net::sock_id> held;
  const uint32_t kDests = 6000;
  const auto dest_of = [&](uint32_t i) { return Dest{0x0b000000u + i / 3, uint16_t(80 + i % 3)}; };
  const auto probe = [&](const Dest& d) {
    net::sock s;
    s.rcv_saddr = net::inet_addr::v4(0x0a000001);
    s.daddr = net::inet_addr::v4(std::get<0>(d));
    s.dport = std::get<1>(d);
    const net::connect_dest* e = net::connect_dest_find(w, s);
    const auto it = ref.find(d);
    if (it == ref.end() || it->second.empty()) {
      REQUIRE(e == nullptr);
      return;
    }
    REQUIRE(e != nullptr);
    REQUIRE(e->daddr == s.daddr);
    REQUIRE(e->dport == s.dport);
    REQUIRE(e->est.count == it->second.size());
  };
  for (int step = 0; step < 60000; ++step) {
    const bool add = held.empty() || rng() % 100 < 55;
    if (add) {
      const Dest d = dest_of(rng() % kDests);
      uint16_t port;
      do port = uint16_t(32768 + rng() % 28232); while (ref[d].count(port));
      const net::sock_id id = t.socket();
      net::sock& s = w.sk(id);
      s.rcv_saddr = net::inet_addr::v4(0x0a000001);
      s.daddr = net::inet_addr::v4(std::get<0>(d));
      s.dport = std::get<1>(d);
      s.num = port;
      s.state = net::tcp_state::ESTABLISHED;
      net::inet_ehash_insert(w, id);  // joins the destination index (connect_dest_refresh)
      ref[d].insert(port);
      held.push_back(id);
    } else {
      const size_t i = rng() % held.size();
      const net::sock_id id = held[i];
      const net::sock& s = w.sk(id);
      const Dest d{s.daddr.v4_host(), s.dport};
      ref[d].erase(s.num);
      net::inet_ehash_remove(w, id);  // leaves the index; its entry is freed with its last port
      w.sk(id).num = 0;
      w.sock_free(id);
      held[i] = held.back();
      held.pop_back();
    }
    for (int q = 0; q < 3; ++q) probe(dest_of(rng() % kDests));
  }
  for (uint32_t i = 0; i < kDests; ++i) probe(dest_of(i));
}
