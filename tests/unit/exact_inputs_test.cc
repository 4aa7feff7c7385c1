// Exact inputs (issue 13, scenarios/README.md "Exact inputs"): a real kernel's net_secret,
// jiffies, table_perturb cells and random draws given to the model. The expected values follow
// from the 6.1 source, net/ipv4/inet_hashtables.c __inet_hash_connect():
//   index = port_offset & (INET_TABLE_PERTURB_SIZE - 1);
//   offset = (table_perturb[index] + (port_offset >> 32)) % remaining, & ~1 (remaining even);
//   on success table_perturb[index] += max(i, get_random_u32_below(8) * 2) + 2;
// and net/core/secure_seq.c secure_ipv4_port_ephemeral(): SipHash of saddr, daddr, dport and
// jiffies / (10 * HZ). tests/live/vm/exact-*.json check the same against real 5.10/6.1/6.12.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "portsim/net/secure_seq.h"
#include "world_fixture.h"

using namespace portsim;
using portsim::test::World;

namespace {

constexpr uint32_t kLo = 0x7f000001;  // 127.0.0.1
constexpr uint64_t kJiffies = 4294893466ull;  // a 6.1 guest's jiffies_64 ~4.7 s after boot (HZ 250)
const char* kSecret = "e630c18f8e96c2c4c39ee01a8270c8ac";

siphash_key key_of(const char* hex) {
  siphash_key k;
  for (int i = 7; i >= 0; --i) k.k0 = k.k0 << 8 | std::stoul(std::string(hex + 2 * i, 2), nullptr, 16);
  for (int i = 15; i >= 8; --i) k.k1 = k.k1 << 8 | std::stoul(std::string(hex + 2 * i, 2), nullptr, 16);
  return k;
}

uint64_t port_offset(uint64_t jiffies, uint16_t dport = 5000) {
  return net::secure_ipv4_port_ephemeral(kLo, kLo, dport, net::ephemeral_timeseed(jiffies, 250), key_of(kSecret));
}

void listen_on(World& t, const char* addr) {
  const net::sock_id l = t.socket();
  REQUIRE(net::inet_bind(t.w, l, *net::parse_endpoint(addr)) == 0);
  REQUIRE(net::inet_listen(t.w, l, 128) == 0);
}

}  // namespace

TEST_CASE("exact inputs: net_secret, jiffies and a table_perturb cell place the first port",
          "[exact][inet_hash_connect]") {
  const uint64_t po = port_offset(kJiffies);
  const uint32_t index = uint32_t(po & 0xffff);
  for (uint32_t cell : {0u, 1u, 2u, 7u, 180050309u, 4294967295u}) {
    World t(fmt::format(R"([{{"name":"h","kernel":"6.1","jiffies":{},"net_secret":"{}","table_perturb":{{"{}":{}}},
                           "sysctls":{{"net.ipv4.ip_local_port_range":"40000 40009"}}}}])",
                        kJiffies, kSecret, index, cell));
    listen_on(t, "127.0.0.1:5000");
    const net::sock_id s = t.socket();
    const auto r = t.connect(s, "127.0.0.1:5000");
    REQUIRE(r.err == 0);
    INFO("cell " << cell);
    CHECK(r.info.index == index);
    CHECK(r.info.perturb == cell);
    CHECK(t.port(s) == 40000 + ((cell + uint32_t(po >> 32)) % 10 & ~1u));
  }
}

TEST_CASE("exact inputs: perturb_draws are the increments' random draws, in order", "[exact][inet_hash_connect]") {
  // draws 5, 0, 7 then the seeded stream: increments max(i, 2*draw) + 2 with i = 0 while the
  // first candidate is free: 12, 2, 16.
  const uint64_t po = port_offset(kJiffies);
  const uint32_t index = uint32_t(po & 0xffff);
  World t(fmt::format(R"([{{"name":"h","kernel":"6.1","jiffies":{},"net_secret":"{}","table_perturb":{{"{}":1000}},
                         "perturb_draws":[5,0,7],"sysctls":{{"net.ipv4.ip_local_port_range":"32768 60999"}}}}])",
                      kJiffies, kSecret, index));
  listen_on(t, "127.0.0.1:5000");
  uint32_t expect_cell = 1000;
  for (uint32_t inc : {12u, 2u, 16u}) {
    const auto r = t.connect(t.socket(), "127.0.0.1:5000");
    REQUIRE(r.err == 0);
    CHECK(r.info.index == index);
    CHECK(r.info.perturb == expect_cell);
    CHECK(r.info.i == 0);
    CHECK(r.info.perturb_inc == inc);
    expect_cell += inc;
  }
  CHECK(t.w.machine_of(t.w.nets[0]).table_perturb[index] == expect_cell);
}

TEST_CASE("exact inputs: connect_jiffies is the jiffies of each timeline connect() call", "[exact][scenario]") {
  // Two connects 1 ms apart in virtual time, but the kernel read jiffies 2500 apart (a new 10-s
  // time seed): the second port follows the second window's port offset. table_perturb zero:
  // port = 40000 + ((port_offset >> 32) % 10 & ~1), unless taken (then the next even one).
  // Draws 0: the first connect adds 2 to its cell, so in the same window the second start is
  // the first port + 2.
  const uint64_t j1 = 4294895000ull, j2 = j1 + 2500;  // a multiple of 2500 and the next window
  const uint32_t p1 = 40000 + (uint32_t(port_offset(j1) >> 32) % 10 & ~1u);
  uint32_t p2 = 40000 + (uint32_t(port_offset(j2) >> 32) % 10 & ~1u);
  if (p2 == p1) p2 = p2 + 2 > 40008 ? 40000 : p2 + 2;
  // Without connect_jiffies both calls fall in j1's window: the second start is p1 again, so
  // it would take p1 + 2. The inputs must make a difference for the test to mean anything.
  const uint32_t p2_clock = p1 + 2 > 40008 ? 40000 : p1 + 2;
  REQUIRE(p2 != p2_clock);
  auto scenario = [&](const std::string& extra, uint32_t second) {
    return fmt::format(R"({{"machines":[{{"name":"h","kernel":"6.1","jiffies":{},"net_secret":"{}","table_perturb":"zero","perturb_draws":[0,0],{}
        "sysctls":{{"net.ipv4.ip_local_port_range":"40000 40009"}}}}],"timeline":[
        {{"t":"0s","host":"h","op":"bind","sock":"l","addr":"127.0.0.1:5000"}},{{"t":"0s","op":"listen","sock":"l"}},
        {{"t":"1ms","host":"h","op":"connect","sock":"a","to":"127.0.0.1:5000","expect":{{"port":{}}}}},
        {{"t":"2ms","host":"h","op":"connect","sock":"b","to":"127.0.0.1:5000","expect":{{"port":{}}}}}]}})",
                       j1, kSecret, extra, p1, second);
  };
  portsim::test::run_scenario_expecting("with-connect-jiffies",
                                        scenario(fmt::format(R"("connect_jiffies":[{},{}],)", j1, j2), p2));
  portsim::test::run_scenario_expecting("clock", scenario("", p2_clock));
}

TEST_CASE("exact inputs: call_monotonic_ns puts the TIME_WAIT reuse second on the guest's clock", "[exact][scenario]") {
  // 4.19-6.13 tcp_twsk_unique() (net/ipv4/tcp_ipv4.c, 6.1): a TIME_WAIT is recycled once
  // time_after32(ktime_get_seconds(), tw_ts_recent_stamp), and tcp_timewait_state_process()
  // (tcp_minisocks.c) sets tw_ts_recent_stamp = ktime_get_seconds() when the peer's FIN arrives
  // — on loopback within the close() that sent it. ktime_get_seconds() is CLOCK_MONOTONIC
  // seconds (kernel/time/timekeeping.c, tk->ktime_sec). Seven calls; the server's close (6th)
  // stamps the client's TIME_WAIT, the 7th connect asks for its port 0.5 s later in virtual time.
  auto scenario = [](const std::string& clock, bool reused) {
    return fmt::format(R"({{"machines":[{{"name":"h","kernel":"6.1",{}
        "sysctls":{{"net.ipv4.ip_local_port_range":"40000 40000","net.ipv4.tcp_tw_reuse":2}}}}],"timeline":[
        {{"t":"0s","host":"h","op":"bind","sock":"l","addr":"127.0.0.1:5000"}},{{"t":"0s","op":"listen","sock":"l"}},
        {{"t":"1ms","host":"h","op":"connect","sock":"c","to":"127.0.0.1:5000","expect":{{"port":40000}}}},
        {{"t":"10ms","op":"accept","sock":"l","as":"a","expect":{{"ret":0}}}},
        {{"t":"100ms","op":"close","sock":"c"}},{{"t":"200ms","op":"close","sock":"a"}},
        {{"t":"700ms","host":"h","op":"connect","sock":"d","to":"127.0.0.1:5000","expect":{}}}]}})",
                       clock, reused ? R"({"ret":0,"port":40000})" : R"({"ret":-1,"errno":"EADDRNOTAVAIL"})");
  };
  // The virtual clock alone: uptime 10 s puts the stamp (10.2 s) and the connect (10.7 s) in one
  // second — not recycled; uptime 10.5 s puts them in 10 and 11 — recycled.
  portsim::test::run_scenario_expecting("uptime-10", scenario(R"("uptime":"10s",)", false));
  portsim::test::run_scenario_expecting("uptime-10.5", scenario(R"("uptime":"10500ms",)", true));
  // The guest's clock overrides both: the close ran at 5.990 s and the connect at 6.010 s (a new
  // second, recycled, although uptime 10 s says not), or at 6.100 / 6.600 s (same second, not
  // recycled, although uptime 10.5 s says it would be).
  portsim::test::run_scenario_expecting(
      "guest-new-second",
      scenario(R"("uptime":"10s","call_monotonic_ns":[5000000000,5000000100,5001000000,5010000000,5890000000,5990000000,6010000000],)", true));
  portsim::test::run_scenario_expecting(
      "guest-same-second",
      scenario(R"("uptime":"10500ms","call_monotonic_ns":[5000000000,5000000100,5001000000,5010000000,6000000000,6100000000,6600000000],)", false));
  // Only the call in which the FIN arrived stamps: the guest's clock at the client's close (the
  // 5th call, 5.990 s) does not matter, the server's close (6th) does.
  portsim::test::run_scenario_expecting(
      "guest-stamp-at-fin",
      scenario(R"("uptime":"10s","call_monotonic_ns":[5000000000,5000000100,5001000000,5010000000,5990000000,6005000000,6500000000],)", false));
}
