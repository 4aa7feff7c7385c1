// sock_addr's predicates (is_v4, is_any, is_loopback, v4_host), which read its 8 bytes directly,
// against inet_addr's own on the decoded address: every edge (0.0.0.0, ::, ::1, 127/8, ::ffff:*,
// upper-half-zero addresses at and above 2^63, interned IPv6) and random addresses. And
// world::sock_alloc_with() (the caller's fields set in place) against sock_alloc(): a reused
// slot keeps the timer_gen that sock_free() bumped, everything else is a fresh sock.
// Reference: the inet_addr predicates (include/linux/in.h ipv4_is_loopback for 127/8).
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "portsim/net/af_inet.h"
#include "portsim/net/inet_addr.h"
#include "portsim/net/netns.h"

using portsim::net::inet_addr;
using portsim::net::sock_addr;

namespace {

void check_same(const inet_addr& a) {
  const sock_addr s(a);
  INFO("address " << std::hex << a.hi << ":" << a.lo);
  REQUIRE(s.get() == a);
  CHECK(s.is_v4() == a.is_v4());
  CHECK(s.is_any() == a.is_any());
  CHECK(s.is_loopback() == a.is_loopback());
  CHECK(s.v4_host() == a.v4_host());
}

}  // namespace

TEST_CASE("sock_addr predicates agree with inet_addr's on edges and random addresses", "[sock_addr]") {
  const std::vector<inet_addr> edges = {
      inet_addr{},                      // ::
      inet_addr{0, 1},                  // ::1
      inet_addr{0, 2},
      inet_addr{1, 1},                  // ::1 with a non-zero upper half: interned, not loopback
      inet_addr{0, 1ULL << 63},         // upper half zero, lower half ≥ 2^63: interned
      inet_addr{0, (1ULL << 63) | 1},
      inet_addr{0, 0xffff00000000ULL},  // 0.0.0.0
      inet_addr::v4(0x7f000001),        // 127.0.0.1
      inet_addr::v4(0x7fffffff),
      inet_addr::v4(0x80000000),
      inet_addr::v4(0x7e000001),
      inet_addr::v4(0x0a000001),
      inet_addr::v4(0xffffffff),
      inet_addr{0, 0xfffe7f000001ULL},  // not v4-mapped (0xfffe), 127 in the low bits
      inet_addr{0, 0x1ffff00000000ULL}, // ffff one position too high
      inet_addr{0xffff, 0},             // a v4-looking upper half, interned
      inet_addr{0x20010db800000000ULL, 1},
  };
  for (const auto& a : edges) check_same(a);
  std::mt19937_64 rng(18);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t r = rng();
    switch (i % 5) {
      case 0: check_same(inet_addr::v4(uint32_t(r))); break;
      case 1: check_same(inet_addr::v4(uint32_t(r & 0x7f0000ff) | (r & 1 ? 0x7f000000u : 0))); break;  // 127/8 often
      case 2: check_same(inet_addr{0, r & 0xffffffffffULL}); break;  // small upper-half-zero values
      case 3: check_same(inet_addr{0, r}); break;                    // half of them ≥ 2^63
      default: check_same(inet_addr{rng() & 0xff, r & 3}); break;     // interned, :: / ::1 look-alikes
    }
  }
}

TEST_CASE("world::sock_alloc_with sets the caller's fields on a fresh sock and keeps a reused slot's timer_gen", "[sock_addr]") {
  portsim::net::world w;
  w.nets.resize(2);
  w.nets[1].sys.tcp_rto_max_ms = 30000;
  const auto a = w.sock_alloc(1);
  const auto init = [](portsim::net::sock& s) {
    s.uid = 42;
    s.v6 = true;
    s.rcv_saddr = inet_addr{};
  };
  const auto b = w.sock_alloc_with(1, init);
  REQUIRE(a != b);
  CHECK(w.sk(a).alive);
  CHECK(w.sk(a).netns == 1);
  CHECK(w.sk(a).rto_max_ms == 30000);
  CHECK(w.sk(b).uid == 42);
  CHECK(w.sk(b).v6);
  CHECK(w.sk(b).rto_max_ms == 30000);
  CHECK(w.sk(b).timer_gen == 0);
  w.sk(a).timer_gen = 7;
  w.sock_free(a);  // bumps timer_gen to 8: timers armed for the old sock are stale
  w.sk(a).num = 5;  // whatever a freed slot holds, the new sock starts fresh
  const auto c = w.sock_alloc_with(1, init);
  REQUIRE(c == a);
  CHECK(w.sk(c).timer_gen == 8);
  CHECK(w.sk(c).uid == 42);
  CHECK(w.sk(c).alive);
  // The rest is a fresh sock's.
  CHECK(w.sk(c).num == 0);
  CHECK(w.sk(c).tb2 == portsim::net::kNone);
  CHECK(w.sk(c).state == portsim::net::tcp_state::CLOSE);
  CHECK(w.sk(c).rcv_saddr.is_any());
  CHECK(!w.sk(c).hashed);
}
