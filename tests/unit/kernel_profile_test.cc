// Kernel profiles (include/portsim/net/kernel_profile.h): each version-gated behaviour checked
// against the source of the version that has it, the LTS point releases of KERNEL-PROFILES §3,
// and — for 6.18 — every sysctl write against the live kernel (tests/live/sysctl_writes.json).
// Each case names the file and version its expected values come from.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "portsim/base/md5.h"
#include "portsim/net/kernel_profile.h"
#include "portsim/net/secure_seq.h"
#include "portsim/net/sysctl.h"
#include "world_fixture.h"

using namespace portsim;
using portsim::test::World;

namespace portsim::net {
// net/ipv4/tcp_ipv4.c: tcp_twsk_unique() (sim/net/tcp.cc; declared next to its caller).
bool tcp_twsk_unique(world& w, sock_id sk, sock_id tw, bool have_twp);
}  // namespace portsim::net

namespace {

net::kernel_profile profile(const char* v) {
  std::string err;
  auto k = net::find_kernel_profile(v, err);
  INFO(err);
  REQUIRE(k);
  return *k;
}

std::string machine(const char* kernel, const char* range, const char* extra = "") {
  return fmt::format(R"([{{"name":"h","kernel":"{}","sysctls":{{"net.ipv4.ip_local_port_range":"{}"{}}}}}])", kernel,
                     range, extra);
}

void listen_on(World& t, const char* addr) {
  const net::sock_id l = t.socket();
  REQUIRE(net::inet_bind(t.w, l, *net::parse_endpoint(addr)) == 0);
  REQUIRE(net::inet_listen(t.w, l, 4096) == 0);  // room for every connect of a test
}

std::vector<uint16_t> connect_n(World& t, int n, const char* to = "127.0.0.1:5000") {
  std::vector<uint16_t> ports;
  for (int i = 0; i < n; ++i) {
    const net::sock_id s = t.socket();
    REQUIRE(t.connect(s, to).err == 0);
    ports.push_back(t.port(s));
  }
  return ports;
}

}  // namespace

TEST_CASE("profiles: X.Y is the latest point release, X.Y.Z the exact one (LTS backports)", "[kernel_profile]") {
  // KERNEL-PROFILES §3 (stable release announcements / queue listings, grades V/D there).
  using C = net::connect_era;
  CHECK(profile("4.19.0").connect == C::c3_parity_passes);
  CHECK(profile("4.19.0").hash == net::port_hash::siphash32);
  CHECK(profile("4.19.244").hash == net::port_hash::siphash32_timeseed);  // resalt 4dfa9b438ee3 (D)
  CHECK(profile("4.19.245").connect == C::c3_parity_passes);
  CHECK(profile("4.19.246").connect == C::c4_perturb_table);  // 190cc82489f4 + b2d057560b81 (V)
  CHECK(profile("4.19.246").noise == net::perturb_noise::none);  // C4': c579bd1b4021 came with .249
  CHECK(profile("4.19.249").connect == C::c5_dhps);
  CHECK(profile("4.19").connect == C::c5_dhps);
  CHECK(profile("5.10.124").connect == C::c4_perturb_table);
  CHECK(profile("5.10.125").connect == C::c5_dhps);
  CHECK_FALSE(profile("5.10.226").tw_finwait2_excluded);  // 0d9e5df4a257 reached 5.10.227 (V)
  CHECK(profile("5.10.227").tw_finwait2_excluded);
  CHECK(profile("5.15.0").connect == C::c4_perturb_table);  // 5.15 as released: 5.12's DHPS
  CHECK(profile("5.15.0").noise == net::perturb_noise::one_in_16);
  CHECK(profile("5.15.41").connect == C::c5_dhps);
  CHECK(profile("4.9").hash == net::port_hash::siphash64);  // 4.9.320: no resalt in the 4.9 queue
  CHECK(profile("3.10").connect == C::c1_sequential);
  CHECK(profile("4.4").connect == C::c2_even_start);
  CHECK(profile("6.18").connect == C::c5_dhps);
  std::string err;
  CHECK_FALSE(net::find_kernel_profile("4.20", err));
  CHECK(err.find("known: 3.10, 4.4, 4.9, 4.14, 4.18, 4.19, 5.4, 5.10, 5.15, 6.1, 6.6, 6.12, 6.18") != std::string::npos);
  CHECK_FALSE(net::find_kernel_profile("6.18.", err));
  CHECK_FALSE(net::find_kernel_profile("six", err));
  CHECK(net::kernel_profile_names().size() == 13);
}

TEST_CASE("profiles: sysctls exist, default and validate per version", "[kernel_profile][sysctl]") {
  net::sysctls s;
  // 4548b683b781 (4.11): ip_unprivileged_port_start; absent before.
  CHECK(net::sysctl_write(s, profile("4.9"), "net.ipv4.ip_unprivileged_port_start", "0").find("does not exist in Linux 4.9") !=
        std::string::npos);
  CHECK(net::sysctl_write(s, profile("4.14"), "net.ipv4.ip_unprivileged_port_start", "0").empty());
  // 07f4c90062f8 (4.2): default high end 61000 -> 60999.
  CHECK(net::sysctl_read(net::sysctl_defaults(profile("3.10")), "net.ipv4.ip_local_port_range") == "32768 61000");
  CHECK(net::sysctl_read(net::sysctl_defaults(profile("4.4")), "net.ipv4.ip_local_port_range") == "32768 60999");
  // 79e9fed46038 (4.18): tcp_tw_reuse 0/1/2, default 2; before proc_dointvec, default 0.
  CHECK(net::sysctl_defaults(profile("4.14")).tcp_tw_reuse == 0);
  CHECK(net::sysctl_defaults(profile("4.18")).tcp_tw_reuse == 2);
  CHECK(net::sysctl_write(s, profile("4.14"), "net.ipv4.tcp_tw_reuse", "5").empty());  // proc_dointvec
  CHECK_FALSE(net::sysctl_write(s, profile("4.18"), "net.ipv4.tcp_tw_reuse", "3").empty());
  // 4396e46187ca (4.12) removed tcp_tw_recycle.
  CHECK(net::sysctl_write(s, profile("4.9"), "net.ipv4.tcp_tw_recycle", "0").empty());
  CHECK_FALSE(net::sysctl_write(s, profile("4.14"), "net.ipv4.tcp_tw_recycle", "0").empty());
  // ccce324dabfe (6.5): tcp_syn_linear_timeouts; absent means no linear phase.
  CHECK_FALSE(net::sysctl_write(s, profile("6.1"), "net.ipv4.tcp_syn_linear_timeouts", "4").empty());
  CHECK(net::sysctl_defaults(profile("6.1")).tcp_syn_linear_timeouts == 0);
  CHECK(net::sysctl_defaults(profile("6.6")).tcp_syn_linear_timeouts == 4);
  // ca6a6f93867a (6.14): tcp_tw_reuse_delay; 6.15: tcp_rto_max_ms; 4b01a9674231 (5.7): ip_autobind_reuse.
  CHECK_FALSE(net::sysctl_write(s, profile("6.12"), "net.ipv4.tcp_tw_reuse_delay", "1000").empty());
  CHECK_FALSE(net::sysctl_write(s, profile("6.12"), "net.ipv4.tcp_rto_max_ms", "1000").empty());
  CHECK_FALSE(net::sysctl_write(s, profile("5.4"), "net.ipv4.ip_autobind_reuse", "1").empty());
  CHECK(net::sysctl_write(s, profile("5.10"), "net.ipv4.ip_autobind_reuse", "1").empty());
  // 19f92a030ca6 (5.4): SOMAXCONN 4096, 128 before.
  CHECK(net::sysctl_defaults(profile("4.19")).somaxconn == 128);
  CHECK(net::sysctl_defaults(profile("5.4")).somaxconn == 4096);
  // Before 4.11 the port range has no unprivileged-start check: low may be 1.
  CHECK(net::sysctl_write(s, profile("4.9"), "net.ipv4.ip_local_port_range", "1 65535").empty());
}

TEST_CASE("profiles: a scenario sysctl the machine's kernel lacks is bad input naming the version", "[kernel_profile][load]") {
  auto lr = scenario::load_scenario_text(
      R"({"machines":[{"name":"h","kernel":"6.12","sysctls":{"net.ipv4.tcp_tw_reuse_delay":500}}],"timeline":[]})", "t.json");
  REQUIRE(lr.error);
  CHECK(lr.error->message ==
        "t.json: $.machines[0].sysctls.net.ipv4.tcp_tw_reuse_delay: net.ipv4.tcp_tw_reuse_delay does not exist in Linux "
        "6.12 (writing it fails there with ENOENT)");
  lr = scenario::load_scenario_text(R"({"kernel":"4.20","machines":[{"name":"h"}],"timeline":[]})", "t.json");
  REQUIRE(lr.error);
  CHECK(lr.error->message.rfind("t.json: $.kernel: unknown kernel \"4.20\" (known: 3.10, 4.4,", 0) == 0);
  // --kernel overrides the file and every machine.
  lr = scenario::load_scenario_text(R"({"kernel":"6.18","machines":[{"name":"h","kernel":"6.6"}],"timeline":[]})", "t.json",
                                    {}, "3.10");
  REQUIRE_FALSE(lr.error);
  CHECK(lr.scenario->machines[0].kernel.connect == net::connect_era::c1_sequential);
}

TEST_CASE("sysctl audit: every 6.18 write answers as the live 6.18.44 kernel", "[kernel_profile][sysctl][live]") {
  // tests/live/sysctl_writes.json (tools/probes/sysctl_writes.py: one write(2) per value, each
  // in a fresh `unshare -n`): the answer (ok / EINVAL) and what reads back, per sysctl.
  std::ifstream in(PORTSIM_SOURCE_DIR "/tests/live/sysctl_writes.json");
  REQUIRE(in);
  const auto live = nlohmann::json::parse(in);
  const net::kernel_profile& k = net::default_kernel_profile();
  size_t rows = 0;
  for (const auto& [name, probes] : live["sysctls"].items()) {
    for (const auto& p : probes) {
      net::sysctls s = net::sysctl_defaults(k);
      const std::string value = p["value"];
      const std::string err = net::sysctl_write(s, k, name, value, 250);  // live CONFIG_HZ=250
      INFO(name << " <- '" << value << "': portsim says '" << err << "'");
      CHECK(net::sysctl_read(net::sysctl_defaults(k), name) == p["default"].get<std::string>());
      if (p["result"] == "ok") {
        CHECK(err.empty());
        CHECK(net::sysctl_read(s, name) == p["reads_back"].get<std::string>());
      } else {
        CHECK(p["result"] == "EINVAL");
        CHECK(err.find("EINVAL") != std::string::npos);
      }
      ++rows;
    }
  }
  CHECK(rows == 15 * 41);
}

TEST_CASE("md5_transform: the RFC 1321 compression function", "[kernel_profile][secure_seq]") {
  // RFC 1321 A.5: MD5("") = d41d8cd98f00b204e9800998ecf8427e — one block: 0x80, zeros, length 0.
  std::array<uint32_t, 4> h{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  std::array<uint32_t, 16> block{};
  block[0] = 0x80;
  md5_transform(h, block);
  CHECK(h[0] == 0xd98c1dd4);
  CHECK(h[1] == 0x04b2008f);
  CHECK(h[2] == 0x980980e9);
  CHECK(h[3] == 0x7e42f8ec);
  // ≤ 4.10 secure_ipv4_port_ephemeral(): hash[2] = dport ^ secret[14]; changing the port
  // changes the offset, and the secret matters.
  std::array<uint32_t, 16> secret{};
  for (uint32_t i = 0; i < 16; ++i) secret[i] = i * 0x01010101u;
  const uint32_t a = net::secure_ipv4_port_ephemeral_md5(0x7f000001, 0x7f000001, 5000, secret);
  CHECK(a != net::secure_ipv4_port_ephemeral_md5(0x7f000001, 0x7f000001, 5001, secret));
  secret[15] ^= 1;
  CHECK(a != net::secure_ipv4_port_ephemeral_md5(0x7f000001, 0x7f000001, 5000, secret));
}

TEST_CASE("C1 (3.10): +1 per connect, the whole inclusive range, one global hint", "[kernel_profile][connect]") {
  // 3.10 net/ipv4/inet_hashtables.c __inet_hash_connect(): port = low + (i + offset) % remaining,
  // remaining = high - low + 1, i from 1; hint += i (static u32 hint: all destinations).
  World t(machine("3.10", "40000 40004"));
  listen_on(t, "127.0.0.1:5000");
  listen_on(t, "127.0.0.1:5001");
  const auto a = connect_n(t, 1);
  const auto b = connect_n(t, 1, "127.0.0.1:5001");  // another destination moves the shared hint
  const auto a2 = connect_n(t, 1);
  // a2 = low + (hint + 2 + po_A + 1) % 5: two places after a (hint advanced by 1 twice).
  CHECK(a2[0] == 40000 + (a[0] - 40000 + 2) % 5);
  const auto rest = connect_n(t, 3);
  std::set<uint16_t> ports{a[0], a2[0], rest[0], rest[1], rest[2]};
  CHECK(ports.size() == 5);  // all 5 ports of the odd-sized range (from 4.6 only 4 per call)
  CHECK(t.connect(t.socket(), "127.0.0.1:5000").err == EADDRNOTAVAIL);
  (void)b;
}

TEST_CASE("C2 (4.4): even offsets, +2 per connect, step 1 past a taken even port", "[kernel_profile][connect]") {
  // 4.2 __inet_hash_connect() (07f4c90062f8): offset = (hint + po) & ~1; port = low + (i +
  // offset) % remaining for i = 0..; hint += (i + 2) & ~1.
  World t(machine("4.4", "40000 40009"));
  listen_on(t, "127.0.0.1:5000");
  const auto p = connect_n(t, 10);
  for (int i = 0; i < 5; ++i) CHECK(p[size_t(i)] % 2 == 0);
  for (int i = 1; i < 5; ++i) CHECK(p[size_t(i)] == 40000 + (p[size_t(i) - 1] - 40000 + 2) % 10);
  for (int i = 5; i < 10; ++i) CHECK(p[size_t(i)] % 2 == 1);
  CHECK(p[5] == 40000 + (p[4] - 40000 + 3) % 10);  // even start taken, i = 1: the next (odd) port
}

TEST_CASE("C3 (4.9.0): two parity passes, +2 per connect from one global hint", "[kernel_profile][connect]") {
  // 4.6 __inet_hash_connect() (1580ab63fc9a): offset = ((hint + po) % remaining) & ~1, step 2,
  // then the other parity; hint += i + 2.
  World t(machine("4.9.0", "40000 40009"));
  listen_on(t, "127.0.0.1:5000");
  const auto p = connect_n(t, 10);
  for (int i = 0; i < 5; ++i) CHECK(p[size_t(i)] % 2 == 0);
  for (int i = 1; i < 5; ++i) CHECK(p[size_t(i)] == 40000 + (p[size_t(i) - 1] - 40000 + 2) % 10);
  for (int i = 5; i < 10; ++i) CHECK(p[size_t(i)] % 2 == 1);
  CHECK(t.connect(t.socket(), "127.0.0.1:5000").err == EADDRNOTAVAIL);
}

TEST_CASE("C4 (5.15.0): +2, and +4 one time in 16; C4' (5.10.119) always +2", "[kernel_profile][connect]") {
  // 5.12 __inet_hash_connect(): table_perturb[hash_32(po, 8)] += i + 2, and c579bd1b4021: when
  // the first candidate was free (i == 0), i = 2 with probability 1/16. The LTS interim releases
  // (190cc82489f4 without c579bd1b4021, KERNEL-PROFILES §3) have no noise.
  for (const char* k : {"5.15.0", "5.10.119"}) {
    World t(machine(k, "32768 60999"), 7);
    listen_on(t, "127.0.0.1:5000");
    const auto p = connect_n(t, 800);
    std::map<int, int> gaps;
    for (size_t i = 1; i < p.size(); ++i) ++gaps[int(p[i]) - int(p[i - 1])];
    INFO(k);
    CHECK(gaps.size() <= 2);
    CHECK(gaps[2] + gaps[4] == 799);
    if (std::string(k) == "5.10.119") {
      CHECK(gaps[4] == 0);
    } else {  // binomial(799, 1/16): mean 50, sd 6.8
      CHECK(gaps[4] >= 25);
      CHECK(gaps[4] <= 75);
    }
  }
}

TEST_CASE("C5 (6.18): +2..+16 and a new start every 10 s (time seed)", "[kernel_profile][connect]") {
  // 5.18 ca7af0402550: perturb += max(i, 2 * U{0..7}) + 2; 4dfa9b438ee3: jiffies / (10 HZ) in
  // the SipHash, so the per-destination start jumps when the 10-s window changes.
  World t(machine("6.18", "32768 60999"), 3);
  listen_on(t, "127.0.0.1:5000");
  const auto p = connect_n(t, 400);
  std::set<int> gaps;
  for (size_t i = 1; i < p.size(); ++i) gaps.insert(int(p[i]) - int(p[i - 1]));
  CHECK(*gaps.begin() == 2);
  CHECK(*gaps.rbegin() == 16);
  CHECK(gaps.size() == 8);
}

TEST_CASE("C5 (5.18+): port_offset is fixed inside a 10-s window and changes at its boundary", "[kernel_profile][connect]") {
  // net/core/secure_seq.c secure_ipv4_port_ephemeral() (5.18+, 4dfa9b438ee3): the 4th SipHash
  // word is jiffies / EPHEMERAL_PORT_SHUFFLE_PERIOD (10 * HZ, include/net/secure_seq.h), so
  // port_offset, hence the table_perturb index and the start, stays within a 10-s window and
  // changes when jiffies crosses a multiple of 10 * HZ. HZ 250, uptime 5 s: jiffies at t=0 is
  // INITIAL_JIFFIES (2^32 - 300 HZ) + 1250 = 4294893546; the next multiple of 2500 is 4294895000,
  // 1454 jiffies = 5.816 s later.
  World t(R"([{"name":"h","kernel":"6.18","uptime":"5s","sysctls":{"net.ipv4.ip_local_port_range":"32768 60999"}}])", 3);
  listen_on(t, "127.0.0.1:5000");
  const auto& m = t.w.machine_of(t.w.nets[0]);
  REQUIRE(m.hz == 250);
  REQUIRE(m.jiffies0 == 4294893546ull);
  const Nanos boundary = Nanos(5816) * 1000000;  // 1454 jiffies at 4 ms
  REQUIRE(net::ephemeral_timeseed(m.jiffies(boundary - 1), m.hz) + 1 == net::ephemeral_timeseed(m.jiffies(boundary), m.hz));
  auto at = [&](Nanos when) {
    t.w.now = when;
    const net::sock_id s = t.socket();
    const auto r = t.connect(s, "127.0.0.1:5000");
    REQUIRE(r.err == 0);
    return std::pair{r.info, t.port(s)};
  };
  const auto [a, pa] = at(5000 * Nanos(1000000));    // 5.0 s, window 1717957
  const auto [b, pb] = at(5700 * Nanos(1000000));    // 5.7 s, same window
  const auto [c, pc] = at(boundary);                 // 5.816 s, window 1717958
  const auto [d, pd] = at(boundary + 4 * kNsPerSec); // 9.816 s, still that window
  CHECK(a.timeseed == 1717957);
  CHECK(b.timeseed == a.timeseed);
  CHECK(c.timeseed == a.timeseed + 1);
  CHECK(d.timeseed == c.timeseed);
  // The model's port_offset is the kernel's SipHash of (saddr, daddr, dport, timeseed).
  const uint32_t lo = 0x7f000001;
  CHECK(a.port_offset == net::secure_ipv4_port_ephemeral(lo, lo, 5000, a.timeseed, m.net_secret));
  CHECK(c.port_offset == net::secure_ipv4_port_ephemeral(lo, lo, 5000, c.timeseed, m.net_secret));
  CHECK(b.port_offset == a.port_offset);
  CHECK(d.port_offset == c.port_offset);
  CHECK(c.port_offset != a.port_offset);
  CHECK(c.index != a.index);  // another table_perturb cell (hash of the new port_offset)
  // Same window: the next port is the cell's advance, +2..+16 (even); across: unrelated start.
  CHECK(pb > pa);
  CHECK((pb - pa) % 2 == 0);
  CHECK(pb - pa >= 2);
  CHECK(pb - pa <= 16);
  CHECK(pd > pc);
  CHECK(pd - pc <= 16);
  CHECK(std::abs(int(pc) - int(pb)) > 16);  // this seed: the jump lands far from the old walk
}

TEST_CASE("B1 (3.10) bind(0): every port of an odd-sized range", "[kernel_profile][bind]") {
  // 3.10 net/ipv4/inet_connection_sock.c inet_csk_get_port(): rover over [low, high] inclusive.
  World t(machine("3.10", "40000 40004"));
  std::set<uint16_t> ports;
  for (int i = 0; i < 5; ++i) {
    const net::sock_id s = t.socket();
    REQUIRE(net::inet_bind(t.w, s, *net::parse_endpoint("127.0.0.1:0")) == 0);
    ports.insert(t.port(s));
  }
  CHECK(ports.size() == 5);
  CHECK(net::inet_bind(t.w, t.socket(), *net::parse_endpoint("127.0.0.1:0")) == EADDRINUSE);
}

TEST_CASE("B3 (4.9) shares the least-used SO_REUSEADDR port; B4 (4.14) does not", "[kernel_profile][bind]") {
  // 4.6 inet_csk_get_port(): after a parity pass with no free port, smallest_port (fewest owners,
  // tb->fastreuse > 0 && reuse) under the relaxed test; b9470c27607b (4.11) removed it.
  for (const char* k : {"4.9", "4.14"}) {
    World t(machine(k, "40000 40003"));
    std::vector<uint16_t> ports;
    int fails = 0;
    for (int i = 0; i < 5; ++i) {
      const net::sock_id s = t.socket();
      t.w.sk(s).reuse = net::SK_CAN_REUSE;
      if (net::inet_bind(t.w, s, *net::parse_endpoint("127.0.0.1:0")) == 0) ports.push_back(t.port(s));
      else ++fails;
    }
    INFO(k);
    if (std::string(k) == "4.9") {
      CHECK(fails == 0);
      CHECK(std::set<uint16_t>(ports.begin(), ports.end()) == std::set<uint16_t>{40001});  // lower half, odd first
    } else {
      CHECK(fails == 1);
      CHECK(std::set<uint16_t>(ports.begin(), ports.end()).size() == 4);
    }
  }
}

TEST_CASE("bind(0) joins a same-uid SO_REUSEPORT port before 4.10, not after", "[kernel_profile][bind]") {
  // 0643ee4fd1b7 (4.10): the bind(0) scan passes reuseport_ok = false. Range 40000-40001: the
  // scan's first candidate is always 40001 (offset | 1).
  for (const char* k : {"4.9", "4.14"}) {
    World t(machine(k, "40000 40001"));
    uint16_t ports[2] = {};
    for (int i = 0; i < 2; ++i) {
      const net::sock_id s = t.socket();
      t.w.sk(s).reuseport = true;
      REQUIRE(net::inet_bind(t.w, s, *net::parse_endpoint("127.0.0.1:0")) == 0);
      ports[i] = t.port(s);
    }
    INFO(k);
    CHECK(ports[0] == 40001);
    CHECK(ports[1] == (std::string(k) == "4.9" ? 40001 : 40000));
  }
}

TEST_CASE("TIME_WAIT reuse: whole seconds since the last timestamp (< 6.14) vs ms since entry", "[kernel_profile][tcp]") {
  // tcp_twsk_unique(): ≤ 4.18 get_seconds() - tw_ts_recent_stamp > 1; 4.19-6.13 (cca9bab1b72c)
  // time_after32(ktime_get_seconds(), tw_ts_recent_stamp): a new second is enough (the Debian
  // 6.1.192 guest reused a TIME_WAIT 0.5 s after its stamp, tests/live/vm/exact-6.1.json);
  // 6.14 (19ce8cd30465): now_ms > tw_entry_stamp + tcp_tw_reuse_delay. uptime 0: the seconds
  // clock ticks at whole virtual seconds. TIME_WAIT entered at 0.5 s.
  for (const char* k : {"4.18", "6.12", "6.18"}) {
    World t(fmt::format(R"([{{"name":"h","kernel":"{}","uptime":"0s","sysctls":{{"net.ipv4.ip_local_port_range":"40000 40000"}}}}])", k));
    listen_on(t, "127.0.0.1:5000");
    const net::sock_id c = t.socket();
    REQUIRE(t.connect(c, "127.0.0.1:5000").err == 0);
    net::sock_id a = net::kNone;
    REQUIRE(net::inet_csk_accept(t.w, t.w.listening.begin()->first, a) == 0);
    t.w.now = kNsPerSec / 2;
    REQUIRE(net::tcp_close(t.w, c) == 0);
    REQUIRE(net::tcp_close(t.w, a) == 0);
    REQUIRE(t.w.sk(c).state == net::tcp_state::TIME_WAIT);
    INFO(k);
    const std::string v = k;
    t.w.now = 999 * kNsPerMs;  // 499 ms later, still second 0: no kernel reuses
    CHECK(t.connect(t.socket(), "127.0.0.1:5000").err == EADDRNOTAVAIL);
    t.w.now = 1001 * kNsPerMs;  // 501 ms later, second 1: 4.19-6.13 reuse (1 > 0)
    CHECK(t.connect(t.socket(), "127.0.0.1:5000").err == (v == "6.12" ? 0 : EADDRNOTAVAIL));
    if (v == "6.12") continue;
    t.w.now = 1700 * kNsPerMs;  // 1200 ms later: 6.14+ reuse (> 1000 ms), 4.18 not (1 - 0 = 1)
    CHECK(t.connect(t.socket(), "127.0.0.1:5000").err == (v == "6.18" ? 0 : EADDRNOTAVAIL));
    if (v == "6.18") continue;
    t.w.now = 2000 * kNsPerMs + kNsPerMs;  // 4.18: second 2 - second 0 = 2 > 1
    CHECK(t.connect(t.socket(), "127.0.0.1:5000").err == 0);
  }
}

TEST_CASE("tcp_tw_reuse = 2 before 4.18 enables reuse everywhere, from 4.18 loopback only", "[kernel_profile][tcp]") {
  // 79e9fed46038 (4.18): reuse == 2 → loopback only; before, proc_dointvec and `if (reuse && …)`.
  for (const char* k : {"4.14", "4.19"}) {
    World t(fmt::format(R"([{{"name":"h","kernel":"{}","addresses":["10.0.0.1/24"],"sysctls":{{"net.ipv4.ip_local_port_range":"40000 40000","net.ipv4.tcp_tw_reuse":2}}}},
                           {{"name":"s","kernel":"6.18","addresses":["10.0.0.2/24"]}}])", k));
    const net::sock_id l = t.socket(1);
    REQUIRE(net::inet_bind(t.w, l, *net::parse_endpoint("10.0.0.2:5000")) == 0);
    REQUIRE(net::inet_listen(t.w, l, 16) == 0);
    const net::sock_id c = t.socket();
    REQUIRE(t.connect(c, "10.0.0.2:5000").err == 0);
    net::sock_id a = net::kNone;
    REQUIRE(net::inet_csk_accept(t.w, l, a) == 0);
    t.w.now = kNsPerSec;
    REQUIRE(net::tcp_close(t.w, c) == 0);
    REQUIRE(net::tcp_close(t.w, a) == 0);
    REQUIRE(t.w.sk(c).state == net::tcp_state::TIME_WAIT);
    t.w.now = 5 * kNsPerSec;
    INFO(k);
    CHECK(t.connect(t.socket(), "10.0.0.2:5000").err == (std::string(k) == "4.14" ? 0 : EADDRNOTAVAIL));
  }
}

TEST_CASE("3.10: ip_local_port_range is global, one per machine", "[kernel_profile][sysctl]") {
  // 3.10 net/ipv4/inet_connection_sock.c: sysctl_local_ports is a global, read by
  // inet_get_local_port_range(&low, &high) without a netns (per netns from 3.13?, U).
  const char* m = R"([{"name":"m","kernel":"%s","netns":[{"name":"a","sysctls":{"net.ipv4.ip_local_port_range":"40000 40009"}},{"name":"b"}]}])";
  for (const char* k : {"3.10", "4.4"}) {
    char buf[512];
    std::snprintf(buf, sizeof buf, m, k);
    World t(buf);
    INFO(k);
    CHECK(t.w.nets[1].sys.ip_local_port_range_lo == (std::string(k) == "3.10" ? 40000 : 32768));
  }
}

TEST_CASE("6.18 bucket release: bind-made ports become connect-shareable; not before", "[kernel_profile][inet_hashtables]") {
  // d57f4b874946 (6.18) "tcp: Update bind bucket state on port release": when only connect()-bound
  // owners remain, tb->fastreuse/fastreuseport go back to -1. Before 6.18 the bucket keeps its
  // bind() state until it is empty, so connect() autobind skips the port.
  for (const char* k : {"6.12", "6.18"}) {
    World t(machine(k, "40000 40001"));
    listen_on(t, "127.0.0.1:5000");
    listen_on(t, "127.0.0.1:5001");
    // A connect-bound owner of 40000 (toward :5000), then an explicit bind() of 127.0.0.2:40000
    // (no overlap with 127.0.0.1) joins the bucket — fastreuse 0: bind-made — and leaves again.
    net::sock_id first = net::kNone;
    for (int i = 0; i < 2 && first == net::kNone; ++i) {
      const net::sock_id s = t.socket();
      REQUIRE(t.connect(s, "127.0.0.1:5000").err == 0);
      if (t.port(s) == 40000) first = s;
    }
    REQUIRE(first != net::kNone);
    const net::sock_id b = t.socket();
    REQUIRE(net::inet_bind(t.w, b, *net::parse_endpoint("127.0.0.2:40000")) == 0);
    REQUIRE(net::tcp_close(t.w, b) == 0);
    const uint32_t tb = t.w.nets[0].bhash[40000];
    REQUIRE(tb != net::kNone);
    INFO(k);
    CHECK(int(t.w.tbs[tb].fastreuse) == (std::string(k) == "6.18" ? -1 : 0));
    // …so a connect() toward :5001 may take 40000 on 6.18; on 6.12 it must skip it.
    std::set<uint16_t> got;
    for (int i = 0; i < 2; ++i) {
      const net::sock_id s = t.socket();
      if (t.connect(s, "127.0.0.1:5001").err == 0) got.insert(t.port(s));
    }
    CHECK(got.count(40000) == (std::string(k) == "6.18" ? 1u : 0u));
  }
}

TEST_CASE("IP_LOCAL_PORT_RANGE keeps the parity passes on 6.6, walks step 1 from 6.8", "[kernel_profile][connect]") {
  // 91d0b78c5177 (6.3): the socket's range narrows [low, high], __inet_hash_connect unchanged
  // (even first); 207184853dbd (6.8): a socket with its own range: no even rounding, step 1.
  for (const char* k : {"6.6", "6.12"}) {
    World t(machine(k, "32768 60999"), 5);
    listen_on(t, "127.0.0.1:5000");
    int odd = 0;
    for (int i = 0; i < 5; ++i) {
      const net::sock_id s = t.socket();
      t.w.set_local_port_range(s, 40000u | (40009u << 16));
      REQUIRE(t.connect(s, "127.0.0.1:5000").err == 0);
      CHECK((t.port(s) >= 40000 && t.port(s) <= 40009));
      odd += t.port(s) % 2;
    }
    INFO(k);
    if (std::string(k) == "6.6") CHECK(odd == 0);  // five even ports first
  }
  // 6.12 over many seeds: step 1 reaches odd ports among the first five (never on 6.6).
  int odd_total = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    World t(machine("6.12", "32768 60999"), seed);
    listen_on(t, "127.0.0.1:5000");
    for (int i = 0; i < 5; ++i) {
      const net::sock_id s = t.socket();
      t.w.set_local_port_range(s, 40000u | (40009u << 16));
      REQUIRE(t.connect(s, "127.0.0.1:5000").err == 0);
      odd_total += t.port(s) % 2;
    }
  }
  CHECK(odd_total > 0);
}

TEST_CASE("FIN_WAIT2-substate TIME_WAIT: reused by connect() on 6.6, never from 6.12", "[kernel_profile][tcp]") {
  // 0d9e5df4a257 (6.12): tcp_twsk_unique() sets reuse = 0 for tw_substate == TCP_FIN_WAIT2.
  for (const char* k : {"6.6", "6.12"}) {
    World t(machine(k, "40000 40000"));
    listen_on(t, "127.0.0.1:5000");
    const net::sock_id c = t.socket();
    REQUIRE(t.connect(c, "127.0.0.1:5000").err == 0);
    net::sock_id a = net::kNone;
    REQUIRE(net::inet_csk_accept(t.w, t.w.listening.begin()->first, a) == 0);
    REQUIRE(net::tcp_close(t.w, c) == 0);
    REQUIRE(net::tcp_close(t.w, a) == 0);
    REQUIRE(t.w.sk(c).state == net::tcp_state::TIME_WAIT);
    t.w.sk(c).tw_substate = net::tcp_state::FIN_WAIT2;  // the orphaned FIN_WAIT2 case, as tcp_twsk_unique sees it
    t.w.now = 5 * kNsPerSec;
    const net::sock_id n = t.socket();
    t.w.sk(n).daddr = t.w.sk(c).daddr;
    t.w.sk(n).dport = t.w.sk(c).dport;
    t.w.sk(n).rcv_saddr = t.w.sk(c).rcv_saddr;
    INFO(k);
    CHECK(net::tcp_twsk_unique(t.w, n, c, true) == (std::string(k) == "6.6"));
  }
}

TEST_CASE("AF_INET6 from a v4-mapped source to a native IPv6 address: EAFNOSUPPORT from 4.10", "[kernel_profile][connect]") {
  // net/ipv6/ip6_output.c ip6_dst_lookup_tail(), ec5e3b0a1d41 (4.10): a v4-mapped fl6->saddr
  // with a daddr neither v4-mapped nor [::] is refused; 4.9's lookup has no such check (the
  // connect goes on). The live 6.18.44 kernel and Debian's 5.10/6.12 in VMs agree for 4.10+
  // (scenarios/edge-v4mapped-source.json).
  for (const char* k : {"4.9", "4.14", "6.18"}) {
    INFO(k);
    World t(machine(k, "40000 40009"));
    const net::sock_id s = t.socket(0, {}, net::family::inet6);
    REQUIRE(net::inet_bind(t.w, s, *net::parse_endpoint("[::ffff:127.0.0.1]:0")) == 0);
    const int err = t.connect(s, "[::1]:5000").err;
    if (std::string(k) == "4.9") CHECK(err != EAFNOSUPPORT);
    else CHECK(err == EAFNOSUPPORT);
    const net::sock_id here = t.socket(0, {}, net::family::inet6);  // [::]: this host, v4-mapped
    REQUIRE(net::inet_bind(t.w, here, *net::parse_endpoint("[::ffff:127.0.0.1]:0")) == 0);
    CHECK(t.connect(here, "[::]:5000").err != EAFNOSUPPORT);
  }
}

TEST_CASE("listen() on a socket once in ehash: EINVAL on 6.18.44, a listener on 6.18.0 and 6.12", "[kernel_profile][tcp]") {
  // Measured: the live 6.18.44 kernel (scenarios/edge-listen-after-connect.json, unshare -n) and
  // Debian's 6.12.118 in a VM (tools/kernel-oracle --kernel 6.12: listen() = 0). A refused
  // connect() disconnects the socket (SS_UNCONNECTED): on 6.18.44 its listen() gets a port,
  // keeps it and fails. A connection reset by the peer stays SS_CONNECTED: inet_listen()
  // refuses it on every kernel (5.10.262, 6.1.192, 6.12.118 in VMs, live 6.18.44).
  for (const char* k : {"6.12", "6.18.0", "6.18.44"}) {
    INFO(k);
    const bool refuses = std::string(k) == "6.18.44";
    test::run_scenario_expecting(k, fmt::format(R"({{"kernel": "{}",
      "machines": [{{"name": "h", "sysctls": {{"net.ipv4.ip_local_port_range": "40000 40000"}}}}],
      "timeline": [
        {{"t": "0ms", "host": "h", "op": "connect", "sock": "a", "to": "127.0.0.2:5001", "expect": {{"ret": -1, "errno": "ECONNREFUSED"}}}},
        {{"t": "1ms", "op": "listen", "sock": "a", "expect": {}}},
        {{"t": "2ms", "host": "h", "op": "bind", "sock": "b", "addr": "0.0.0.0:40000", "expect": {{"ret": -1, "errno": "EADDRINUSE"}}}},
        {{"t": "3ms", "op": "close", "sock": "a"}},
        {{"t": "4ms", "host": "h", "op": "bind", "sock": "l", "addr": "127.0.0.1:7000", "expect": {{"ret": 0}}}},
        {{"t": "5ms", "op": "listen", "sock": "l", "expect": {{"ret": 0}}}},
        {{"t": "6ms", "host": "h", "op": "connect", "sock": "d", "to": "127.0.0.1:7000", "expect": {{"ret": 0}}}},
        {{"t": "7ms", "op": "accept", "sock": "l", "as": "c", "expect": {{"ret": 0}}}},
        {{"t": "8ms", "op": "setsockopt", "sock": "c", "opt": "SO_LINGER", "value": 0}},
        {{"t": "9ms", "op": "close", "sock": "c"}},
        {{"t": "10ms", "op": "listen", "sock": "d", "expect": {{"ret": -1, "errno": "EINVAL"}}}}
      ]}})",
      k, refuses ? R"({"ret": -1, "errno": "EINVAL"})" : R"({"ret": 0, "port": 40000})"));
  }
}
