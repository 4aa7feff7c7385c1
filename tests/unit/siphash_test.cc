// SipHash-2-4 and the port offset. Expected values: the kernel's vectors (lib/tests/siphash_kunit.c,
// key bytes 00..0f, message bytes 00..n-1) and the worked offsets of KERNEL-MAP §10.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "portsim/base/siphash.h"
#include "portsim/base/time.h"
#include "portsim/net/netns.h"
#include "portsim/net/secure_seq.h"

using namespace portsim;

namespace {
const siphash_key kKunitKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
}

TEST_CASE("siphash: SipHash-2-4 matches lib/tests/siphash_kunit.c vectors", "[siphash]") {
  struct Row { size_t n; uint64_t want; };
  const Row rows[] = {{0, 0x726fdb47dd0e0e31ULL}, {1, 0x74f839c593dc67fdULL}, {2, 0x0d6c8009d9a94f5aULL},
                      {3, 0x85676696d7fb7e2dULL}, {4, 0xcf2794e0277187b7ULL}, {8, 0x93f5f5799a932462ULL},
                      {12, 0x751e8fbc860ee5fbULL}, {15, 0xa129ca6149be45e5ULL}, {16, 0x3f2acc7f57c29bdbULL},
                      {24, 0xb8ad50c6f649af94ULL}, {32, 0x7127512f72f27cceULL}, {63, 0x958a324ceb064572ULL}};
  std::vector<uint8_t> msg(64);
  for (size_t i = 0; i < msg.size(); ++i) msg[i] = uint8_t(i);
  for (const auto& r : rows) {
    INFO("length " << r.n);
    CHECK(siphash(msg.data(), r.n, kKunitKey) == r.want);
  }
}

TEST_CASE("siphash: word helpers equal the byte form (siphash_kunit.c asserts)", "[siphash]") {
  CHECK(siphash_2u64(0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL, kKunitKey) == 0x3f2acc7f57c29bdbULL);
  CHECK(siphash_4u32(0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c, kKunitKey) == 0x3f2acc7f57c29bdbULL);
  CHECK(siphash_3u32(0x03020100, 0x07060504, 0x0b0a0908, kKunitKey) == 0x751e8fbc860ee5fbULL);  // vector 12
}

TEST_CASE("secure_tcp_seq: SipHash of the 4-tuple as stored, plus the 64 ns realtime clock", "[siphash][secure_seq]") {
  // Source: net/core/secure_seq.c secure_tcp_seq(): siphash_3u32(saddr, daddr, sport << 16 |
  // dport) with the __be32 / __be16 values as stored, i.e. the bytes saddr ‖ daddr ‖ dport ‖
  // sport (big-endian each, the u32 read little-endian), low 32 bits; seq_scale() adds
  // ktime_get_real_ns() >> 6.
  const uint8_t bytes[12] = {10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0x9c, 0x40};  // 10.0.0.1:40000 -> 10.0.0.2:80
  const uint32_t hash = uint32_t(siphash(bytes, sizeof bytes, kKunitKey));
  CHECK(net::secure_tcp_seq(0x0a000001, 0x0a000002, 40000, 80, 0, kKunitKey) == hash);
  CHECK(net::secure_tcp_seq(0x0a000001, 0x0a000002, 40000, 80, 64 * 1000, kKunitKey) == hash + 1000);
  CHECK(net::secure_tcp_seq(0x0a000001, 0x0a000002, 40000, 80, 63, kKunitKey) == hash);  // 64 ns resolution
  // The u32 wraps: 2^32 * 64 ns = 274.9 s later the same 4-tuple gets the same ISN.
  CHECK(net::secure_tcp_seq(0x0a000001, 0x0a000002, 40000, 80, (uint64_t(1) << 38), kKunitKey) == hash);
  CHECK(net::secure_tcp_seq(0x0a000001, 0x0a000002, 40001, 80, 0, kKunitKey) != hash);
  // secure_tcpv6_seq(): siphash() over saddr(16) ‖ daddr(16) ‖ sport(2) ‖ dport(2).
  uint8_t b6[36] = {};
  b6[15] = 1;              // ::1
  b6[31] = 1;              // ::1
  b6[32] = 0x9c; b6[33] = 0x40;  // sport 40000
  b6[35] = 80;                   // dport 80
  CHECK(net::secure_tcpv6_seq(net::inet_addr{0, 1}, net::inet_addr{0, 1}, 40000, 80, 640, kKunitKey) ==
        uint32_t(siphash(b6, sizeof b6, kKunitKey)) + 10);
}

TEST_CASE("secure_ipv4_port_ephemeral: worked offsets of KERNEL-MAP §10", "[siphash][secure_seq]") {
  struct Row { uint32_t s, d; uint16_t dport; uint32_t ts; uint64_t want; uint16_t first_port; };
  const Row rows[] = {
      {0x0a000001, 0x0a000002, 80, 0, 0x2e5203c35832b37dULL, 45586},      // 10.0.0.1 -> 10.0.0.2:80
      {0x7f000001, 0x7f000001, 8080, 0, 0x853d6c95b2ecb829ULL, 46460},    // 127.0.0.1 -> 127.0.0.1:8080
      {0xc0000201, 0xc6336407, 443, 429466, 0x62dc6e1ac87e006bULL, 44274}, // 192.0.2.1 -> 198.51.100.7:443
  };
  for (const auto& r : rows) {
    const uint64_t off = net::secure_ipv4_port_ephemeral(r.s, r.d, r.dport, r.ts, kKunitKey);
    CHECK(off == r.want);
    // first port for an all-zero table_perturb, default range: 32768 + ((hi32 % 28232) & ~1)
    CHECK(32768 + ((uint32_t(off >> 32) % 28232) & ~1u) == r.first_port);
  }
}

TEST_CASE("timeseed: jiffies / (10*HZ) moves 0.816 s after boot at HZ=250, then every 10 s",
          "[secure_seq][jiffies]") {
  // KERNEL-MAP §1.1: INITIAL_JIFFIES = (unsigned int)(-300*HZ); first boundary 0.816 s (HZ=250),
  // 2.704 s (HZ=1000).
  const uint64_t j0 = initial_jiffies(250);
  CHECK(j0 == 4294892296ULL);
  const uint32_t ts0 = net::ephemeral_timeseed(j0, 250);
  CHECK(net::ephemeral_timeseed(j0 + 203, 250) == ts0);
  CHECK(net::ephemeral_timeseed(j0 + 204, 250) == ts0 + 1);
  CHECK(net::ephemeral_timeseed(j0 + 204 + 2499, 250) == ts0 + 1);
  CHECK(net::ephemeral_timeseed(j0 + 204 + 2500, 250) == ts0 + 2);
  const uint64_t j1000 = initial_jiffies(1000);
  CHECK(net::ephemeral_timeseed(j1000 + 2703, 1000) == net::ephemeral_timeseed(j1000, 1000));
  CHECK(net::ephemeral_timeseed(j1000 + 2704, 1000) == net::ephemeral_timeseed(j1000, 1000) + 1);
}

TEST_CASE("timeseed: machine::port_offset_timeseed's 10-s window memo gives jiffies / (10*HZ) at every instant",
          "[secure_seq][jiffies][timeseed]") {
  // Source: the formula above (include/net/secure_seq.h, EPHEMERAL_PORT_SHUFFLE_PERIOD = 10*HZ)
  // applied to machine::jiffies(now); the memo must give the same value at every instant,
  // in particular one nanosecond either side of each window boundary, and follow jumps back in
  // time, a changed jiffies0 and an exact-replay jiffies value.
  uint64_t x = 12345;
  auto rnd = [&x]() { return x = x * 6364136223846793005ULL + 1442695040888963407ULL, x >> 11; };
  for (const uint32_t hz : {100u, 250u, 300u, 1000u}) {
    net::machine m("m", hz, 1);
    m.jiffies0 = initial_jiffies(hz) + rnd() % 100000;
    Nanos now = 0;
    size_t checked_edges = 0;
    for (int step = 0; step < 20000; ++step) {
      switch (rnd() % 4) {
        case 0: now += rnd() % 3'000'000'000ULL; break;  // forward within or across windows
        case 1: now = rnd() % 100'000'000'000ULL; break;  // anywhere, also backwards
        case 2: {  // exactly at a window boundary, or one ns before it
          const uint64_t period = 10ull * hz, j = m.jiffies(now);
          const Nanos edge = m.first_at(j / period * period + period);
          REQUIRE(m.jiffies(edge) % period == 0);
          REQUIRE(m.jiffies(edge - 1) % period == period - 1);
          now = edge - (rnd() & 1);
          ++checked_edges;
          break;
        }
        default: if (rnd() % 50 == 0) m.jiffies0 += rnd() % 5000; break;  // a changed clock
      }
      REQUIRE(m.port_offset_timeseed(now) == net::ephemeral_timeseed(m.jiffies(now), hz));
    }
    CHECK(checked_edges > 1000);
    m.call_jiffies = m.jiffies0 + 123456;  // exact replay: the call's jiffies win over the memo
    CHECK(m.port_offset_timeseed(now) == net::ephemeral_timeseed(*m.call_jiffies, hz));
  }
}

TEST_CASE("secure_ipv6_port_ephemeral: SipHash over the kernel's 38-byte struct", "[siphash][secure_seq]") {
  // Source: net/core/secure_seq.c secure_ipv6_port_ephemeral(): struct { in6_addr saddr;
  // in6_addr daddr; unsigned int timeseed; __be16 dport; }, hashed up to and including dport
  // (offsetofend = 38 bytes), on a little-endian CPU.
  const auto s = *net::parse_addr("2001:db8::1"), d = *net::parse_addr("2001:db8::2");
  const uint32_t ts = 0x01020304;
  const uint8_t bytes[38] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                             0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
                             0x04, 0x03, 0x02, 0x01,  // timeseed, host (little-endian) order
                             0x01, 0xbb};             // dport 443, network order
  CHECK(net::secure_ipv6_port_ephemeral(s, d, 443, ts, kKunitKey) == siphash(bytes, sizeof bytes, kKunitKey));
  CHECK(net::secure_ipv6_port_ephemeral(s, d, 443, ts + 1, kKunitKey) != siphash(bytes, sizeof bytes, kKunitKey));
}
