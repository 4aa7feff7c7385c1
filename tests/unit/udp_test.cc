// UDP port selection, sharing, delivery and ICMP errors. Expected values come from the live
// kernel (6.18.44, unshare -n, 2026-11-30: tests/live/udp.json, made by
// tools/probes/udp_probe.py; the experiment is named in each test) or from the kernel source
// (net/ipv4/udp.c udp_lib_get_port, cited where used). Never from what portsim prints.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "portsim/net/udp.h"
#include "portsim/scenario/ss.h"
#include <cstdio>
#include "world_fixture.h"

namespace {

using namespace portsim;
using net::sock_id;
using portsim::test::World;

std::string host(const std::string& range = "40000 40009", const std::string& extra = "") {
  return "[{\"name\":\"host\",\"addresses\":[\"10.0.0.1/24\"]" + extra +
         ",\"sysctls\":{\"net.ipv4.ip_local_port_range\":\"" + range + "\"}}]";
}
net::endpoint ep(const std::string& s) {
  auto e = net::parse_endpoint(s);
  REQUIRE(e.has_value());
  return *e;
}
enum : unsigned { A = 1, P = 2 };
sock_id mk(World& W, unsigned opts = 0, bool v6 = false, uint32_t uid = 0) {
  const sock_id s = net::udp_socket(W.w, 0, uid, uid == 0, v6);
  if (opts & A) W.w.sk(s).reuse = net::SK_CAN_REUSE;
  if (opts & P) W.w.sk(s).reuseport = true;
  return s;
}
int bind_(World& W, sock_id s, const std::string& a) { return net::udp_bind(W.w, s, ep(a)); }
int connect_(World& W, sock_id s, const std::string& a) { return net::udp_connect(W.w, s, ep(a)); }
int sendto_(World& W, sock_id s, const std::string& a) { return net::udp_sendmsg(W.w, s, ep(a)); }

TEST_CASE("udp: connect() autobind exhausts the range with EAGAIN, bind(0) with EADDRINUSE", "[udp]") {
  // live: connect_exhaust (10 runs: 10 distinct ports then EAGAIN), bind0_exhaust (20 runs:
  // 10 then EADDRINUSE), sendto_exhaust (5 runs: EAGAIN), bind0_after_connect (3 runs).
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    World W(host(), seed);
    std::set<uint16_t> ports;
    for (int i = 0; i < 10; ++i) {
      const sock_id s = mk(W);
      REQUIRE(connect_(W, s, "127.0.0.1:5000") == 0);
      ports.insert(W.port(s));
    }
    CHECK(ports.size() == 10);
    CHECK(*ports.begin() == 40000);
    CHECK(*ports.rbegin() == 40009);
    CHECK(connect_(W, mk(W), "127.0.0.1:5000") == EAGAIN);
    CHECK(sendto_(W, mk(W), "127.0.0.1:5000") == EAGAIN);
    CHECK(bind_(W, mk(W), "127.0.0.1:0") == EADDRINUSE);
    CHECK(bind_(W, mk(W), "0.0.0.0:0") == EADDRINUSE);
    CHECK(bind_(W, mk(W), "127.0.0.2:0") == 0);  // the connected sockets hold 127.0.0.1 only
  }
  World W(host());
  for (int i = 0; i < 10; ++i) REQUIRE(bind_(W, mk(W), "127.0.0.1:0") == 0);
  CHECK(bind_(W, mk(W), "127.0.0.1:0") == EADDRINUSE);
  World S(host());
  for (int i = 0; i < 10; ++i) REQUIRE(sendto_(S, mk(S), "127.0.0.1:5000") == 0);
  CHECK(sendto_(S, mk(S), "127.0.0.1:5000") == EAGAIN);
}

TEST_CASE("udp: a connected socket's port is not shared across destinations", "[udp]") {
  // live: connect_dests — 30 connects over 3 destinations: 10 succeed on 10 distinct ports,
  // the other 20 get EAGAIN (udp_lib_lport_inuse ignores the destination).
  World W(host());
  const char* dests[] = {"127.0.0.1:5000", "127.0.0.2:5001", "127.0.0.1:5002"};
  int ok = 0, eagain = 0;
  std::set<uint16_t> ports;
  for (int i = 0; i < 30; ++i) {
    const sock_id s = mk(W);
    const int r = connect_(W, s, dests[i % 3]);
    if (r == 0) { ++ok; ports.insert(W.port(s)); }
    if (r == EAGAIN) ++eagain;
  }
  CHECK(ok == 10);
  CHECK(eagain == 20);
  CHECK(ports.size() == 10);
}

TEST_CASE("udp: SO_REUSEADDR sockets share ports (silently overshadowing each other)", "[udp]") {
  // live: reuseaddr_connect — 15 SO_REUSEADDR connects in a 10-port range all succeed (7–9
  // distinct ports); reuse_both "A bind0 1-port range": two SO_REUSEADDR bind(0) in a one-port
  // range both get it, a third without the option: EADDRINUSE; SO_REUSEPORT alone: EADDRINUSE.
  World W(host());
  std::set<uint16_t> ports;
  for (int i = 0; i < 15; ++i) {
    const sock_id s = mk(W, A);
    REQUIRE(connect_(W, s, i % 2 ? "127.0.0.2:5001" : "127.0.0.1:5000") == 0);
    ports.insert(W.port(s));
  }
  CHECK(ports.size() < 15);
  World O(host("40000 40000"));
  CHECK(bind_(O, mk(O, A), "127.0.0.1:0") == 0);
  CHECK(bind_(O, mk(O, A), "127.0.0.1:0") == 0);
  CHECK(bind_(O, mk(O), "127.0.0.1:0") == EADDRINUSE);
  CHECK(bind_(O, mk(O, P), "127.0.0.1:0") == EADDRINUSE);
}

TEST_CASE("udp: IP_BIND_ADDRESS_NO_PORT sources share ports; IP_LOCAL_PORT_RANGE narrows the search", "[udp]") {
  // live: noport_connect — 10 connects from 127.0.0.1 and 10 more from 127.0.0.2 (both sets
  // the whole range), then an unbound socket: EAGAIN. sockrange — IP_LOCAL_PORT_RANGE
  // 40002-40005 in a 40000-40011 netns range: bind(0) gets exactly 40002..40005, then
  // EADDRINUSE; a connect from such a socket then gets EAGAIN.
  World W(host());
  for (const char* src : {"127.0.0.1:0", "127.0.0.2:0"}) {
    std::set<uint16_t> ports;
    for (int i = 0; i < 11; ++i) {
      const sock_id s = mk(W);
      W.w.sk(s).bind_address_no_port = true;
      REQUIRE(bind_(W, s, src) == 0);
      CHECK(W.port(s) == 0);
      const int r = connect_(W, s, "127.0.0.1:5000");
      if (i < 10) {
        REQUIRE(r == 0);
        ports.insert(W.port(s));
      } else {
        CHECK(r == EAGAIN);
      }
    }
    CHECK(ports.size() == 10);
  }
  CHECK(connect_(W, mk(W), "127.0.0.1:5000") == EAGAIN);

  World R(host("40000 40011"));
  std::set<uint16_t> got;
  for (int i = 0; i < 5; ++i) {
    const sock_id s = mk(R);
    R.w.set_local_port_range(s, 40002u | (40005u << 16));
    const int r = bind_(R, s, "127.0.0.1:0");
    if (i < 4) got.insert(R.port(s));
    else CHECK(r == EADDRINUSE);
  }
  CHECK(got == std::set<uint16_t>{40002, 40003, 40004, 40005});
  const sock_id c = mk(R);
  R.w.set_local_port_range(c, 40002u | (40005u << 16));
  CHECK(connect_(R, c, "127.0.0.2:5000") == EAGAIN);
}

// A reference walk written from net/ipv4/udp.c udp_lib_get_port (snum == 0): first =
// reciprocal_scale(rand, remaining) + low; rand = (rand | 1) * (mask + 1); for each of
// mask + 1 values of first: snum = first, first + rand, … (u16) until it wraps to first.
uint16_t reference_walk(uint32_t rand, uint32_t low, uint32_t high, uint32_t entries, const std::set<uint16_t>& used,
                        uint64_t* examined = nullptr) {
  uint64_t ex = 0;
  const uint32_t remaining = high - low + 1;
  uint16_t first = uint16_t(((uint64_t(rand) * remaining) >> 32) + low);
  const uint32_t stride = (rand | 1) * entries;
  const uint16_t last = uint16_t(first + entries);
  do {
    uint16_t snum = first;
    do {
      if (low <= snum && snum <= high) {
        ++ex;
        if (examined) *examined = ex;
        if (!used.count(snum)) return snum;
      }
      snum = uint16_t(snum + stride);
    } while (snum != first);
  } while (++first != last);
  return 0;
}

TEST_CASE("udp: bind(0) visits ports in udp_lib_get_port's exact order, for any table size", "[udp]") {
  // kernel: net/ipv4/udp.c udp_lib_get_port (reference_walk above). Over the default range with
  // a quarter of the ports held, every choice equals the reference walk from the same rand,
  // for the live table (16384) and a small one (256).
  for (uint32_t entries : {16384u, 256u}) {
    World W(host("32768 60999", fmt::format(",\"udp_hash_entries\":{}", entries)));
    REQUIRE(W.w.udp.machines[0].hash_entries == entries);
    std::set<uint16_t> used;
    for (uint32_t p = 32768; p <= 60999; p += 4) {  // every 4th port held
      REQUIRE(bind_(W, mk(W), fmt::format("127.0.0.1:{}", p)) == 0);
      used.insert(uint16_t(p));
    }
    for (int i = 0; i < 500; ++i) {
      net::udp_port_info info;
      const sock_id s = mk(W);
      REQUIRE(net::udp_bind(W.w, s, ep("127.0.0.1:0"), &info) == 0);
      CHECK(W.port(s) == reference_walk(info.rand, 32768, 60999, entries, used));
      used.insert(W.port(s));
    }
  }
}

TEST_CASE("udp: connect() autobind of plain sockets follows the same walk up to exhaustion", "[udp]") {
  // kernel: net/ipv4/udp.c udp_lib_get_port, as reference_walk: the chosen port and the number
  // of in-range candidates examined, from 0 to 100 % of a 2000-port range held by connected
  // (wildcard-autobound) sockets, then failure with every candidate examined.
  for (uint32_t entries : {16384u, 1024u}) {
    World W(host("40000 41999", fmt::format(",\"udp_hash_entries\":{}", entries)));
    std::set<uint16_t> used;
    bool exhausted = false;
    for (int i = 0; i < 4000 && !exhausted; ++i) {
      net::udp_port_info info;
      const sock_id s = mk(W);
      const int r = net::udp_connect(W.w, s, ep("127.0.0.1:5000"), &info);
      uint64_t ex = 0;
      const uint16_t want = reference_walk(info.rand, 40000, 41999, entries, used, &ex);
      if (used.size() < 2000) {
        REQUIRE(r == 0);
        REQUIRE(W.port(s) == want);
        REQUIRE(info.examined == ex);
        used.insert(W.port(s));
        if (i % 3 == 2 && i < 1500) {  // release one now and then: holes appear and refill
          net::udp_close(W.w, s);
          used.erase(want);
        }
      } else {
        CHECK(r == EAGAIN);
        CHECK(want == 0);
        CHECK(info.examined == 2000);
        CHECK(info.slots == entries);
        exhausted = true;
      }
    }
    CHECK(exhausted);
  }
}

TEST_CASE("udp: in a small range the choice is the first free port after a uniform start", "[udp]") {
  // live: order_gap1 — range 40000-40009, all ports held but 40003 and 40007: bind(0) took
  // 40003 in 237/400 and 249/400 trials (6 of the 10 starts lead to it), 40007 otherwise.
  int n3 = 0, n7 = 0;
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    World W(host(), seed);
    for (int p = 40000; p <= 40009; ++p)
      if (p != 40003 && p != 40007) REQUIRE(bind_(W, mk(W), fmt::format("127.0.0.1:{}", p)) == 0);
    const sock_id s = mk(W);
    REQUIRE(bind_(W, s, "127.0.0.1:0") == 0);
    (W.port(s) == 40003 ? n3 : n7)++;
  }
  CHECK(n3 + n7 == 400);
  CHECK(n3 >= 210);  // binomial(400, 0.6): mean 240, sd 9.8
  CHECK(n3 <= 270);
}

TEST_CASE("udp: no parity preference; ports spread over the whole range", "[udp]") {
  // live: full_range_parity — 300 bind(0) in 32768-60999: 163 odd (KERNEL-MAP §6: 152), lowest
  // 32768, highest 60862.
  World W(host("32768 60999"));
  int odd = 0;
  uint16_t lo = 65535, hi = 0;
  for (int i = 0; i < 300; ++i) {
    const sock_id s = mk(W);
    REQUIRE(bind_(W, s, "127.0.0.1:0") == 0);
    odd += W.port(s) & 1;
    lo = std::min(lo, W.port(s));
    hi = std::max(hi, W.port(s));
  }
  CHECK(odd >= 120);
  CHECK(odd <= 180);
  CHECK(lo < 33500);
  CHECK(hi > 60000);
}

TEST_CASE("udp: explicit bind conflicts: SO_REUSEADDR on both, SO_REUSEPORT with the same uid", "[udp]") {
  // live: reuse_both — first socket on 127.0.0.1:P, second on the same (then a third, with the
  // second's options, on 0.0.0.0:P). OK exactly when both have A, or both have P.
  const char* names[] = {"-", "A", "P", "AP"};
  const unsigned opts[] = {0, A, P, A | P};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      World W(host());
      REQUIRE(bind_(W, mk(W, opts[i]), "127.0.0.1:7300") == 0);
      const bool share = ((opts[i] & A) && (opts[j] & A)) || ((opts[i] & P) && (opts[j] & P));
      INFO(names[i] << "/" << names[j]);
      const sock_id b = mk(W, opts[j]);
      CHECK(bind_(W, b, "127.0.0.1:7300") == (share ? 0 : EADDRINUSE));
      CHECK(bind_(W, mk(W, opts[j]), "0.0.0.0:7300") == (share ? 0 : EADDRINUSE));
    }
  World U(host());  // live: "P/P other uid": EADDRINUSE
  REQUIRE(bind_(U, mk(U, P, false, 0), "127.0.0.1:7400") == 0);
  CHECK(bind_(U, mk(U, P, false, 1000), "127.0.0.1:7400") == EADDRINUSE);
}

TEST_CASE("udp: dual-stack and v6-only sockets in the bind rules", "[udp]") {
  // live: v6_dualstack and v6_unicast.
  World W(host());
  REQUIRE(bind_(W, mk(W, 0, true), "[::]:7200") == 0);
  CHECK(bind_(W, mk(W), "0.0.0.0:7200") == EADDRINUSE);
  CHECK(bind_(W, mk(W), "127.0.0.1:7200") == EADDRINUSE);
  const sock_id v6only = mk(W, 0, true);
  W.w.sk(v6only).ipv6only = true;
  REQUIRE(bind_(W, v6only, "[::]:7201") == 0);
  CHECK(bind_(W, mk(W), "0.0.0.0:7201") == 0);
  REQUIRE(bind_(W, mk(W), "0.0.0.0:7202") == 0);
  CHECK(bind_(W, mk(W, 0, true), "[::]:7202") == EADDRINUSE);
  REQUIRE(bind_(W, mk(W, 0, true), "[::1]:7500") == 0);
  CHECK(bind_(W, mk(W), "0.0.0.0:7500") == 0);
  REQUIRE(bind_(W, mk(W, 0, true), "[::1]:7502") == 0);
  CHECK(bind_(W, mk(W), "127.0.0.1:7502") == 0);
  REQUIRE(bind_(W, mk(W, 0, true), "[::1]:7503") == 0);
  CHECK(bind_(W, mk(W, 0, true), "[::]:7503") == EADDRINUSE);
  REQUIRE(bind_(W, mk(W), "0.0.0.0:7501") == 0);
  CHECK(bind_(W, mk(W, 0, true), "[::1]:7501") == 0);
  // IPv6 connects exhaust the range with EAGAIN; then IPv4 and v4-mapped connects fail too.
  World X(host());
  for (int i = 0; i < 10; ++i) REQUIRE(connect_(X, mk(X, 0, true), "[::1]:5000") == 0);
  CHECK(connect_(X, mk(X, 0, true), "[::1]:5000") == EAGAIN);
  CHECK(connect_(X, mk(X), "127.0.0.1:5000") == EAGAIN);
  CHECK(connect_(X, mk(X, 0, true), "[::ffff:127.0.0.1]:5000") == EAGAIN);
}

TEST_CASE("udp: the hash2 wildcard bind check comes from the kernel profile (CVE-2026-31503)", "[udp][kernel]") {
  // live: hash2_wildcard — 10, 11, 12 sockets on 127.0.0.{1..n}:P, then 0.0.0.0:P and [::]:P:
  // EADDRINUSE every time on 6.18.44. "udp: Fix wildcard bind conflict check when using hash2"
  // (CVE-2026-31503; mainline 7.0, stable 6.18.21 / 6.12.80 / 6.6.131 / 6.1.168 per the NVD
  // ranges, KERNEL-PROFILES §1.3): before it, udp_lib_get_port sends a wildcard bind to the
  // hash2 chains once the primary slot holds > 10 sockets, and the bind succeeds.
  for (const char* k : {"6.18", "6.18.21", "6.18.20", "6.1", "6.1.168", "6.1.167", "6.6.130", "6.12.80", "5.15"}) {
    const std::string ks = k;
    const bool fixed = ks == "6.18" || ks == "6.18.21" || ks == "6.1" || ks == "6.1.168" || ks == "6.12.80";
    for (int n : {10, 11, 12})
      for (bool v6 : {false, true}) {
        World W(host("40000 40009", ",\"kernel\":\"" + ks + "\""));
        REQUIRE(W.w.machines[0].kp.udp_hash2_wildcard_check == fixed);
        const uint16_t port = uint16_t(7100 + n);
        for (int i = 0; i < n; ++i) REQUIRE(bind_(W, mk(W), fmt::format("127.0.0.{}:{}", i + 1, port)) == 0);
        const int want = fixed || n <= 10 ? EADDRINUSE : 0;
        INFO("kernel " << k << ", " << n << " specific sockets, " << (v6 ? "[::]" : "0.0.0.0"));
        CHECK(bind_(W, mk(W, 0, v6), (v6 ? "[::]:" : "0.0.0.0:") + std::to_string(port)) == want);
      }
  }
}


TEST_CASE("udp: IP_LOCAL_PORT_RANGE exists from 6.3 (kernel profile)", "[udp][kernel]") {
  // 91d0b78c5177 "inet: Add IP_LOCAL_PORT_RANGE socket option" (6.3; man-pages ip(7) "since
  // Linux 6.3", KERNEL-PROFILES §1.3): before it ip_setsockopt does not know option 51 and
  // returns ENOPROTOOPT, also on a UDP socket, and udp_lib_get_port walks the netns range
  // (inet_get_local_port_range); from 6.3 it uses inet_sk_get_local_port_range. 6.1.0 as
  // released: not yet (6.1.y took it in 6.1.32, kernel_profile.cc kBackports).
  const std::string sc = R"({"machines":[{"name":"h","kernel":"KERNEL",
      "sysctls":{"net.ipv4.ip_local_port_range":"40000 40011"}}],"timeline":[
    {"t":"0s","host":"h","op":"socket","sock":"u","type":"udp"},
    {"t":"1ms","op":"setsockopt","sock":"u","opt":"IP_LOCAL_PORT_RANGE","value":"40002-40005","expect":EXPECT}]})";
  auto text = [&](const std::string& k, const std::string& expect) {
    std::string t = sc;
    t.replace(t.find("KERNEL"), 6, k);
    t.replace(t.find("EXPECT"), 6, expect);
    return t;
  };
  test::run_scenario_expecting("udp_test", text("6.1.0", R"({"errno":"ENOPROTOOPT"})"));
  test::run_scenario_expecting("udp_test", text("6.6", R"({"ret":0})"));
  // The walk itself: under 6.6, bind(0) gets exactly 40002..40005 then EADDRINUSE (live
  // sockrange on 6.18.44, same code since 6.3); under 6.1.0 the socket's field is not consulted.
  for (const char* k : {"6.6", "6.1.0"}) {
    World R(host("40000 40011", std::string(",\"kernel\":\"") + k + "\""));
    const bool honoured = std::string(k) == "6.6";
    std::set<uint16_t> got;
    int fails = 0;
    for (int i = 0; i < 12; ++i) {
      const sock_id s = mk(R);
      R.w.set_local_port_range(s, 40002u | (40005u << 16));
      if (bind_(R, s, "127.0.0.1:0") == 0) got.insert(R.port(s));
      else ++fails;
    }
    INFO("kernel " << k);
    if (honoured) {
      CHECK(got == std::set<uint16_t>{40002, 40003, 40004, 40005});
      CHECK(fails == 8);
    } else {
      CHECK(got.size() == 12);  // the whole netns range 40000..40011
      CHECK(*got.begin() == 40000);
      CHECK(*got.rbegin() == 40011);
    }
  }
}

TEST_CASE("udp: portsim ss (ss -tan) lists TCP sockets only", "[udp][ss]") {
  // iproute2 ss -t dumps the TCP inet_diag table only: a connected UDP socket (state
  // ESTABLISHED in the model, TCP_ESTABLISHED in the kernel) must not appear as a TCP ESTAB row,
  // nor count in `ss -s`'s TCP line. Live (6.18.44, unshare -n): `python3 -c` a UDP socket
  // connected to 127.0.0.1:53 → `ss -tan` prints only its header line, `ss -s` "estab 0",
  // `ss -uan` the ESTAB row.
  World W(host());
  const sock_id u = mk(W);
  REQUIRE(connect_(W, u, "127.0.0.1:5000") == 0);
  REQUIRE(W.port(u) != 0);
  auto print = [&](bool summary) {
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* f = open_memstream(&buf, &len);
    scenario::SsOptions o;
    o.summary = summary;
    scenario::print_ss(f, W.w, o, 0);
    std::fclose(f);
    std::string out(buf, len);
    std::free(buf);
    return out;
  };
  const std::string table = print(false);
  INFO(table);
  CHECK(table.find("ESTAB") == std::string::npos);
  CHECK(table.find(std::to_string(W.port(u))) == std::string::npos);
  const std::string sum = print(true);
  INFO(sum);
  CHECK(sum.find("(estab 0,") != std::string::npos);  // live: "TCP:   1 (estab 0, closed 1, …)" (U: the 1)
}

// Which of `socks` a datagram from `from` (a bound sender) to `to` lands on: -1 = none.
int receiver(World& W, sock_id from, const std::string& to, const std::vector<sock_id>& socks) {
  std::vector<uint32_t> before;
  for (sock_id s : socks) before.push_back(W.w.udp.socks[s].rx);
  REQUIRE(sendto_(W, from, to) == 0);
  for (size_t i = 0; i < socks.size(); ++i)
    if (W.w.udp.socks[socks[i]].rx != before[i]) return int(i);
  return -1;
}

TEST_CASE("udp: delivery prefers a specific address, then a connected socket, then the newest", "[udp]") {
  // live: score_specific (the 127.0.0.1 socket gets all, whichever was bound first),
  // score_connected (the connected one, older or newer), score_newest (two equal sockets:
  // the newer receives — hash2 chains add at the head).
  World W(host());
  const sock_id c = mk(W);
  REQUIRE(bind_(W, c, "127.0.0.1:6999") == 0);
  const sock_id wild = mk(W, A), spec = mk(W, A);
  REQUIRE(bind_(W, wild, "0.0.0.0:7000") == 0);
  REQUIRE(bind_(W, spec, "127.0.0.1:7000") == 0);
  CHECK(receiver(W, c, "127.0.0.1:7000", {wild, spec}) == 1);
  const sock_id spec2 = mk(W, A), wild2 = mk(W, A);
  REQUIRE(bind_(W, spec2, "127.0.0.1:7001") == 0);
  REQUIRE(bind_(W, wild2, "0.0.0.0:7001") == 0);
  CHECK(receiver(W, c, "127.0.0.1:7001", {wild2, spec2}) == 1);
  for (bool older : {true, false}) {
    const uint16_t port = older ? 7010 : 7011;
    const sock_id a = mk(W, A), b = mk(W, A);
    REQUIRE(bind_(W, a, fmt::format("127.0.0.1:{}", port)) == 0);
    REQUIRE(bind_(W, b, fmt::format("127.0.0.1:{}", port)) == 0);
    REQUIRE(connect_(W, older ? a : b, "127.0.0.1:6999") == 0);
    CHECK(receiver(W, c, fmt::format("127.0.0.1:{}", port), {a, b}) == (older ? 0 : 1));
  }
  const sock_id o = mk(W, A), n = mk(W, A);
  REQUIRE(bind_(W, o, "127.0.0.1:7020") == 0);
  REQUIRE(bind_(W, n, "127.0.0.1:7020") == 0);
  for (int i = 0; i < 5; ++i) CHECK(receiver(W, c, "127.0.0.1:7020", {o, n}) == 1);
}

TEST_CASE("udp: SO_REUSEPORT groups spread senders by hash; a connected member takes its peer", "[udp]") {
  // live: reuseport_spread — 4 members, 400 senders: 89/103/98/110; one sender 20 times: one
  // receiver. reuseport_connected — a member connected to a sender gets all of that sender's
  // datagrams; another sender never reaches the connected member.
  World W(host("32768 60999"));
  std::vector<sock_id> grp;
  for (int i = 0; i < 4; ++i) {
    grp.push_back(mk(W, P));
    REQUIRE(bind_(W, grp.back(), "127.0.0.1:6000") == 0);
  }
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 400; ++i) {
    const sock_id c = mk(W);
    const int r = receiver(W, c, "127.0.0.1:6000", grp);
    REQUIRE(r >= 0);
    ++counts[size_t(r)];
    net::udp_close(W.w, c);
  }
  for (int n : counts) {
    CHECK(n >= 60);  // binomial(400, 1/4): mean 100, sd 8.7
    CHECK(n <= 140);
  }
  const sock_id one = mk(W);
  const int first = receiver(W, one, "127.0.0.1:6000", grp);
  for (int i = 0; i < 20; ++i) CHECK(receiver(W, one, "127.0.0.1:6000", grp) == first);

  World C(host());
  std::vector<sock_id> g;
  for (int i = 0; i < 3; ++i) {
    g.push_back(mk(C, P));
    REQUIRE(bind_(C, g.back(), "127.0.0.1:6001") == 0);
  }
  const sock_id peer = mk(C), other = mk(C);
  REQUIRE(bind_(C, peer, "127.0.0.1:6100") == 0);
  REQUIRE(bind_(C, other, "127.0.0.1:6101") == 0);
  REQUIRE(connect_(C, g[1], "127.0.0.1:6100") == 0);
  for (int i = 0; i < 20; ++i) CHECK(receiver(C, peer, "127.0.0.1:6001", g) == 1);
  for (int i = 0; i < 20; ++i) CHECK(receiver(C, other, "127.0.0.1:6001", g) != 1);
}

TEST_CASE("udp: ICMP port unreachable fails a connected socket's next call with ECONNREFUSED", "[udp]") {
  // live: icmp_connected — send OK, send ECONNREFUSED, recv EAGAIN, send OK, recv ECONNREFUSED,
  // recv EAGAIN. icmp_unconnected — sendto OK, sendto OK, recv EAGAIN. icmp_burst — 200
  // connected sockets each send once to a closed port: all 200 see ECONNREFUSED.
  World W(host("40000 49999"));
  const sock_id s = mk(W);
  REQUIRE(connect_(W, s, "127.0.0.1:5999") == 0);
  CHECK(net::udp_sendmsg(W.w, s, std::nullopt) == 0);
  CHECK(net::udp_sendmsg(W.w, s, std::nullopt) == ECONNREFUSED);
  CHECK(net::udp_recvmsg(W.w, s) == EAGAIN);
  CHECK(net::udp_sendmsg(W.w, s, std::nullopt) == 0);
  CHECK(net::udp_recvmsg(W.w, s) == ECONNREFUSED);
  CHECK(net::udp_recvmsg(W.w, s) == EAGAIN);
  const sock_id u = mk(W);
  CHECK(sendto_(W, u, "127.0.0.1:5999") == 0);
  CHECK(sendto_(W, u, "127.0.0.1:5999") == 0);
  CHECK(net::udp_recvmsg(W.w, u) == EAGAIN);
  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    const sock_id b = mk(W);
    REQUIRE(connect_(W, b, "127.0.0.1:5999") == 0);
    REQUIRE(net::udp_sendmsg(W.w, b, std::nullopt) == 0);
    refused += net::udp_recvmsg(W.w, b) == ECONNREFUSED;
  }
  CHECK(refused == 200);
}

TEST_CASE("udp: scenario calls, trace records and a DNS-style workload", "[udp]") {
  // Scenario-level: EAGAIN at exhaustion (live connect_exhaust) and the workload knee: with
  // a silent resolver every query's socket lives `hold` = 1 s, so a 10-port range carries
  // 10 queries/s; at 20/s about half fail with EAGAIN (KERNEL-MAP §6: the limit is per host).
  const std::string sc = R"({"seed": 3,
    "machines": [{"name": "h", "addresses": ["10.0.0.1/24"], "sysctls": {"net.ipv4.ip_local_port_range": "40000 40009"}}],
    "external": [{"endpoint": "192.0.2.53:53", "answer": "silent"}],
    "workloads": [{"name": "dns", "type": "udp", "host": "h", "start": "0s", "stop": "RATE_STOP",
                   "rate": RATE, "to": ["192.0.2.53:53"], "hold": "1s"}],
    "timeline": []})";
  auto run = [&](int rate) {
    std::string t = sc;
    t.replace(t.find("RATE_STOP"), 9, "10s");
    t.replace(t.find("RATE"), 4, std::to_string(rate));
    auto lr = scenario::load_scenario_text(t, "dns.json");
    REQUIRE(!lr.error);
    scenario::Runner r(*lr.scenario, {});
    return r.run();
  };
  const auto slow = run(9);  // arrivals k * 111111111 ns < 10 s: k = 0..90
  CHECK(slow.connects == 91);
  CHECK(slow.connects_ok == 91);
  const auto fast = run(20);
  CHECK(fast.connects == 200);
  CHECK(fast.connect_errors.at("EAGAIN") >= 90);
  CHECK(fast.connect_errors.at("EAGAIN") <= 110);
  CHECK(fast.udp.queries_timeout == fast.connects_ok);
}

}  // namespace
