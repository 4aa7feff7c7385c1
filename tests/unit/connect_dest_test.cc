// The connect destination index (portsim's, inet_hashtables.cc: connect_dest, dest_table) and
// ehash under random connects and every kind of close, checked after each step against a
// reference rebuilt with std:: containers from the socks themselves. The index is portsim's
// own structure (not the kernel's): what it must hold follows from its definition in
// include/portsim/net/inet_hashtables.h — per (netns, saddr, daddr, dport) the local ports of
// the hashed non-listener-child socks, `est` unless TIME_WAIT (`tw`); its key, and the ehash
// key of each of those socks, derive from one inet_ehashfn_port0 that the entry keeps
// (hash_port0), so unhashing a sock must find it in ehash under inet_ehash_port(hash_port0, num).
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <tuple>

#include "portsim/net/netns.h"
#include "world_fixture.h"

using namespace portsim;
using portsim::test::World;

namespace {

using DestKey = std::tuple<uint16_t, uint64_t, uint64_t, uint64_t, uint64_t, uint16_t>;  // netns, saddr, daddr, dport
DestKey key_of(uint16_t netns, const net::inet_addr& saddr, const net::inet_addr& daddr, uint16_t dport) {
  return {netns, saddr.hi, saddr.lo, daddr.hi, daddr.lo, dport};
}

std::set<uint16_t> ports_of(const net::port_set& p) {
  std::set<uint16_t> out;
  if (p.big) {
    for (uint32_t port = 0; port < 65536; ++port)
      if (p.big->test(port)) out.insert(uint16_t(port));
  } else {
    out.insert(p.small.begin(), p.small.end());
  }
  return out;
}

// Every invariant of ehash and the destination index, against the socks.
void check_tables(const net::world& w) {
  std::map<DestKey, std::pair<std::set<uint16_t>, std::set<uint16_t>>> want;  // est, tw
  size_t hashed = 0;
  for (net::sock_id id = 0; id < w.socks.size(); ++id) {
    const net::sock& s = w.sk(id);
    if (!s.alive || !s.hashed) continue;
    ++hashed;
    // ehash finds it under its own 4-tuple.
    REQUIRE(net::inet_ehash_lookup(w, s.netns, s.rcv_saddr, s.num, s.daddr, s.dport) == id);
    if (s.listener != net::kNone) continue;
    auto& sets = want[key_of(s.netns, s.rcv_saddr, s.daddr, s.dport)];
    (s.state == net::tcp_state::TIME_WAIT ? sets.second : sets.first).insert(s.num);
    REQUIRE(s.in_dest == (s.state == net::tcp_state::TIME_WAIT ? 2 : 1));
  }
  REQUIRE(w.ehash.size() == hashed);
  const std::set<uint32_t> free_entries(w.free_dests.begin(), w.free_dests.end());
  size_t entries = 0;
  for (uint32_t di = 0; di < w.dests.size(); ++di) {
    if (free_entries.count(di)) continue;
    ++entries;
    const net::connect_dest& d = w.dests[di];
    const DestKey key = key_of(d.netns, d.saddr, d.daddr, d.dport);
    INFO("destination entry " << di);
    REQUIRE(want.count(key) == 1);
    CHECK(ports_of(d.est) == want[key].first);
    CHECK(ports_of(d.tw) == want[key].second);
    CHECK(d.est.count == want[key].first.size());
    CHECK(d.tw.count == want[key].second.size());
    // Its key: the ehash key of port 0, from the hash_port0 it keeps.
    CHECK(d.hash_port0 == net::inet_ehashfn_port0(d.netns, d.saddr, d.daddr, d.dport));
    CHECK(w.dest_table.find(net::inet_ehash_port(d.hash_port0, 0), [&](uint32_t x) { return x == di; }) == int64_t(di));
  }
  CHECK(entries == want.size());
  CHECK(w.dest_table.size() == want.size());
}

}  // namespace

TEST_CASE("connect destination index and ehash follow random connects and closes (std:: reference)",
          "[connect_dest][ehash]") {
  // A 32-port range toward 6 destinations on two external hosts; tcp_tw_reuse 1 lets a connect
  // recycle a TIME_WAIT (inet_twsk_kill unhashes it). Closes: RST (SO_LINGER 0), an orderly
  // client close (FIN_WAIT1 → TIME_WAIT when the external host answers), the server's FIN
  // first (CLOSE_WAIT, then close: LAST_ACK → CLOSE), and tcp_disconnect-style aborts.
  for (uint64_t seed : {1, 2, 3}) {
    World t(R"([{"name":"h","addresses":["10.0.0.1/24"],"sysctls":{"net.ipv4.ip_local_port_range":"40000 40031",
               "net.ipv4.tcp_tw_reuse":"1"}}])",
            seed, R"(["10.0.0.2:*","10.0.0.3:*"])");
    std::mt19937_64 rng(seed);
    const char* dests[] = {"10.0.0.2:80", "10.0.0.2:81", "10.0.0.2:82", "10.0.0.3:80", "10.0.0.3:443", "10.0.0.3:8080"};
    std::vector<net::sock_id> held;  // sockets the application holds
    int ok = 0, closes = 0;
    for (int step = 0; step < 4000; ++step) {
      if (step % 50 == 0) t.w.now += 700'000'000;  // time passes: TIME_WAITs become recyclable
      const uint64_t r = rng() % 100;
      if (held.empty() || r < 55) {
        const net::sock_id s = t.socket();
        const auto cr = t.connect(s, dests[rng() % 6]);
        if (cr.err == 0) {
          held.push_back(s);
          ++ok;
        } else {
          net::tcp_close(t.w, s);
        }
      } else {
        const size_t i = rng() % held.size();
        const net::sock_id s = held[i];
        held[i] = held.back();
        held.pop_back();
        ++closes;
        switch (rng() % 4) {
          case 0: t.w.sk(s).linger0 = true; net::tcp_close(t.w, s); break;  // RST
          case 1: net::tcp_close(t.w, s); break;                             // FIN: TIME_WAIT
          case 2:                                                            // the server's FIN first
            if (t.w.sk(s).state == net::tcp_state::ESTABLISHED) net::external_close(t.w, s);
            net::tcp_close(t.w, s);
            break;
          default: net::tcp_disconnect(t.w, s); net::tcp_close(t.w, s); break;  // abort, then close
        }
      }
      check_tables(t.w);
    }
    // Both kinds of sets and entries coming and going were exercised.
    CHECK(ok > 1000);
    CHECK(closes > 1000);
    CHECK(t.w.st.tw_recycled > 0);
    CHECK(t.w.st.time_wait_peak > 0);
  }
}
