// Issue 11 edge cases (items 2, 7, 10): the address family of a SYN, IPv6 bind, and connect()
// to the unspecified address. Each value is a live-kernel measurement (6.18.44 via
// tools/kernel-oracle on the scenarios named) or a kernel source line; never portsim's output.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "portsim/net/af_inet.h"
#include "portsim/net/inet_connection_sock.h"
#include "portsim/net/observer.h"
#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"
#include "world_fixture.h"

namespace {

using namespace portsim;
using portsim::test::World;

const char* kHost = R"([{"name":"h","sysctls":{"net.ipv4.ip_local_port_range":"40000 40009"}}])";

net::endpoint ep(const char* s) { return *net::parse_endpoint(s); }

net::sock_id listener(World& t, const char* addr, net::family f, bool v6only = false) {
  const net::sock_id l = t.socket(0, {}, f);
  t.w.sk(l).ipv6only = v6only;
  REQUIRE(net::inet_bind(t.w, l, ep(addr)) == 0);
  REQUIRE(net::inet_listen(t.w, l, 128) == 0);
  return l;
}

int connect_from(World& t, net::family f, const char* to) {
  return t.connect(t.socket(0, {}, f), to).err;
}

}  // namespace

TEST_CASE("listener lookup: an IPv6 SYN never reaches an AF_INET listener", "[edge][lookup]") {
  // Source: net/ipv6/inet6_hashtables.c compute_score() takes sk_family == PF_INET6 only.
  // Live: scenarios/edge-listener-family.json [3] — AF_INET6 connect to [::1]:8080 with only
  // an AF_INET 0.0.0.0:8080 listener: ECONNREFUSED (5/5 kernel runs).
  World t(kHost);
  listener(t, "0.0.0.0:8080", net::family::inet);
  CHECK(connect_from(t, net::family::inet6, "[::1]:8080") == ECONNREFUSED);
  CHECK(connect_from(t, net::family::inet, "127.0.0.1:8080") == 0);
  CHECK(connect_from(t, net::family::inet6, "[::ffff:127.0.0.1]:8080") == 0);  // an IPv4 SYN
}

TEST_CASE("listener lookup: [::ffff:0.0.0.0] serves only IPv4 peers, [::] both", "[edge][lookup]") {
  // Source: inet6 compute_score() compares sk_v6_rcv_saddr with daddr (::ffff:0.0.0.0 is not
  // ::); the IPv4 compute_score() compares inet_rcv_saddr, 0 for both. Live:
  // edge-listener-family.json [10] ECONNREFUSED, [11]/[13] OK, [16]/[17] OK, [20] ECONNREFUSED.
  World t(kHost);
  listener(t, "[::ffff:0.0.0.0]:8081", net::family::inet6);
  CHECK(connect_from(t, net::family::inet6, "[::1]:8081") == ECONNREFUSED);
  CHECK(connect_from(t, net::family::inet, "127.0.0.1:8081") == 0);
  listener(t, "[::]:8082", net::family::inet6);
  CHECK(connect_from(t, net::family::inet6, "[::1]:8082") == 0);
  CHECK(connect_from(t, net::family::inet, "127.0.0.1:8082") == 0);
  listener(t, "[::]:8083", net::family::inet6, /*v6only=*/true);
  CHECK(connect_from(t, net::family::inet, "127.0.0.1:8083") == ECONNREFUSED);
  CHECK(connect_from(t, net::family::inet6, "[::1]:8083") == 0);
}

TEST_CASE("listener lookup: an AF_INET listener beats an AF_INET6 one on the same address", "[edge][lookup]") {
  // Source: net/ipv4/inet_hashtables.c compute_score(): "if (sk->sk_family == PF_INET) score++".
  World t(kHost);
  const net::sock_id l6 = t.socket(0, {}, net::family::inet6);
  const net::sock_id l4 = t.socket(0, {}, net::family::inet);
  t.w.sk(l6).reuseport = t.w.sk(l4).reuseport = true;
  REQUIRE(net::inet_bind(t.w, l6, ep("[::]:8084")) == 0);
  REQUIRE(net::inet_listen(t.w, l6, 128) == 0);
  REQUIRE(net::inet_bind(t.w, l4, ep("0.0.0.0:8084")) == 0);
  REQUIRE(net::inet_listen(t.w, l4, 128) == 0);
  CHECK(net::inet_lookup_listener(t.w, t.w.nets[0], ep("127.0.0.1:8084").addr, 8084) == l4);
  CHECK(net::inet_lookup_listener(t.w, t.w.nets[0], ep("[::1]:8084").addr, 8084) == l6);
}

TEST_CASE("inet6 bind: EACCES comes before EADDRNOTAVAIL; IPv4 the other way round", "[edge][bind]") {
  // Source: net/ipv6/af_inet6.c __inet6_bind() tests inet_port_requires_bind_service() before
  // taking the lock, the address after; net/ipv4/af_inet.c __inet_bind() the reverse.
  // Live: scenarios/edge-inet6-bind.json [4] uid 1000 [2001:db8::99]:80 → EACCES,
  // [5] 192.0.2.99:80 → EADDRNOTAVAIL, [6] root [2001:db8::99]:8000 → EADDRNOTAVAIL,
  // [8] a second bind of a bound socket → EINVAL (before the address check).
  World t(kHost);
  const net::cred user{1000, false};
  CHECK(net::inet_bind(t.w, t.socket(0, user, net::family::inet6), ep("[2001:db8::99]:80")) == EACCES);
  CHECK(net::inet_bind(t.w, t.socket(0, user, net::family::inet), ep("192.0.2.99:80")) == EADDRNOTAVAIL);
  CHECK(net::inet_bind(t.w, t.socket(0, {}, net::family::inet6), ep("[2001:db8::99]:8000")) == EADDRNOTAVAIL);
  const net::sock_id twice = t.socket(0, {}, net::family::inet6);
  REQUIRE(net::inet_bind(t.w, twice, ep("[::1]:0")) == 0);
  CHECK(net::inet_bind(t.w, twice, ep("[2001:db8::99]:8000")) == EINVAL);
}

TEST_CASE("inet6 bind: a specific IPv6 address sets ipv6only, so a v4-mapped peer is unreachable", "[edge][bind]") {
  // Source: __inet6_bind() sets sk_ipv6only for addr_type other than ANY and MAPPED;
  // tcp_v6_connect() returns ENETUNREACH for a mapped daddr on an ipv6only socket.
  // Live: edge-inet6-bind.json [10] ENETUNREACH, [11] OK to [::1]; [13] a socket bound to
  // [::ffff:127.0.0.1] and [15] one bound to [::] connect to ::ffff:127.0.0.1 fine.
  World t(kHost);
  listener(t, "127.0.0.1:5000", net::family::inet);
  listener(t, "[::1]:5001", net::family::inet6);
  const net::sock_id s = t.socket(0, {}, net::family::inet6);
  REQUIRE(net::inet_bind(t.w, s, ep("[::1]:0")) == 0);
  CHECK(t.w.sk(s).ipv6only);
  CHECK(t.connect(s, "[::ffff:127.0.0.1]:5000").err == ENETUNREACH);
  CHECK(t.connect(s, "[::1]:5001").err == 0);
  const net::sock_id w = t.socket(0, {}, net::family::inet6);
  REQUIRE(net::inet_bind(t.w, w, ep("[::]:0")) == 0);
  CHECK_FALSE(t.w.sk(w).ipv6only);
  CHECK(t.connect(w, "[::ffff:127.0.0.1]:5000").err == 0);
}

TEST_CASE("inet6 bind: a failed get_port gives ipv6only back", "[edge][bind]") {
  // Source: __inet6_bind(): on get_port failure "sk->sk_ipv6only = saved_ipv6only".
  World t(R"([{"name":"h","sysctls":{"net.ipv4.ip_local_port_range":"40000 40000"}}])");
  const net::sock_id a = t.socket(0, {}, net::family::inet6);
  REQUIRE(net::inet_bind(t.w, a, ep("[::1]:0")) == 0);
  const net::sock_id b = t.socket(0, {}, net::family::inet6);
  CHECK(net::inet_bind(t.w, b, ep("[::1]:0")) == EADDRINUSE);
  CHECK_FALSE(t.w.sk(b).ipv6only);
}

TEST_CASE("connect to 0.0.0.0 / [::] goes to this host", "[edge][connect]") {
  // Source: net/ipv4/route.c ip_route_output_key_hash_rcu(): !daddr → daddr = saddr, else
  // 127.0.0.1; net/ipv6/tcp_ipv6.c tcp_v6_connect(): :: → ::1 (::ffff:127.0.0.1 when bound
  // v4-mapped). Live: scenarios/edge-connect-unspecified.json [6] 0.0.0.0:5000 OK, [7]
  // 0.0.0.0:5002 ECONNREFUSED (listener only on 127.0.0.2), [9] bound to 127.0.0.2 → OK,
  // [11] [::]:5001 OK (listener [::1]), [13] bound [::ffff:127.0.0.1] → [::]:5000 OK,
  // [15] [::ffff:0.0.0.0]:5000 OK.
  World t(kHost);
  listener(t, "127.0.0.1:5000", net::family::inet);
  listener(t, "127.0.0.2:5002", net::family::inet);
  listener(t, "[::1]:5001", net::family::inet6);
  const net::sock_id a = t.socket();
  CHECK(t.connect(a, "0.0.0.0:5000").err == 0);
  CHECK(net::to_string(t.w.sk(a).daddr) == "127.0.0.1");
  CHECK(connect_from(t, net::family::inet, "0.0.0.0:5002") == ECONNREFUSED);
  const net::sock_id c = t.socket();
  REQUIRE(net::inet_bind(t.w, c, ep("127.0.0.2:0")) == 0);
  CHECK(t.connect(c, "0.0.0.0:5002").err == 0);
  CHECK(connect_from(t, net::family::inet6, "[::]:5001") == 0);
  const net::sock_id e = t.socket(0, {}, net::family::inet6);
  REQUIRE(net::inet_bind(t.w, e, ep("[::ffff:127.0.0.1]:0")) == 0);
  CHECK(t.connect(e, "[::]:5000").err == 0);
  CHECK(connect_from(t, net::family::inet6, "[::ffff:0.0.0.0]:5000") == 0);
}

namespace {
// Item 17: an observer that remembers the fastreuse state each bhash/bhash2 record announced.
struct TableMirror final : net::observer {
  std::map<uint32_t, std::pair<int, int>> tb, tb2;
  void bind_bucket(const net::world& w, net::table_op op, uint32_t b) override {
    if (op == net::table_op::destroy) tb.erase(b);
    else tb[b] = {w.tbs[b].fastreuse, w.tbs[b].fastreuseport};
  }
  void bind2_bucket(const net::world& w, net::table_op op, uint32_t b) override {
    if (op == net::table_op::destroy) tb2.erase(b);
    else tb2[b] = {w.tb2s[b].fastreuse, w.tb2s[b].fastreuseport};
  }
  void ehash(const net::world&, net::table_op, net::sock_id) override {}
  void state_change(const net::world&, net::sock_id, net::tcp_state, net::tcp_state) override {}
  bool explaining() const override { return false; }
  void explain(std::string_view, std::string_view) override {}
  // Every live bucket's state is the one its last record announced.
  void check(const net::world& w) const {
    for (uint32_t b = 0; b < w.tbs.size(); ++b) {
      if (w.tbs[b].bhash2 == net::kNone) continue;
      INFO("tb " << b << " port " << w.tbs[b].port);
      REQUIRE(tb.count(b));
      CHECK(tb.at(b) == std::make_pair(int(w.tbs[b].fastreuse), int(w.tbs[b].fastreuseport)));
    }
    for (uint32_t b = 0; b < w.tb2s.size(); ++b) {
      if (w.tb2s[b].tb == net::kNone) continue;
      INFO("tb2 " << b);
      REQUIRE(tb2.count(b));
      CHECK(tb2.at(b) == std::make_pair(int(w.tb2s[b].fastreuse), int(w.tb2s[b].fastreuseport)));
    }
  }
};
}  // namespace

TEST_CASE("bind buckets: every change of fastreuse state has its trace record", "[edge][trace][bhash2]") {
  // Source (6.18, d57f4b874946): inet_bind2_bucket_init() sets a new tb2 to 0 / 0; then
  // inet_csk_update_fastreuse() copies tb's state into it (bind, listen), __inet_hash_connect()
  // sets -1 / -1, __inet_bhash2_update_saddr() -1 / -1 for a connect()-bound socket, and
  // inet_bind2_bucket_destroy() / inet_bind_bucket_destroy() reset to -1 / -1 when only
  // connect()-bound owners remain. Each is a change the trace must announce.
  World t(kHost);
  TableMirror m;
  t.w.obs = &m;
  const net::sock_id l = t.socket();
  t.w.sk(l).reuse = net::SK_CAN_REUSE;
  t.w.sk(l).reuseport = true;
  // The first owner already finds its tb2 linked, so inet_csk_update_fastreuse() takes the
  // "not empty" branch (KERNEL-MAP §3.4): fastreuse stays 0, fastreuseport becomes STRICT (2).
  REQUIRE(net::inet_bind(t.w, l, ep("0.0.0.0:5000")) == 0);
  CHECK(m.tb2.begin()->second == std::make_pair(0, 2));
  m.check(t.w);
  REQUIRE(net::inet_listen(t.w, l, 16) == 0);
  m.check(t.w);
  const net::sock_id c = t.socket();
  REQUIRE(t.connect(c, "127.0.0.1:5000").err == 0);  // autobind tb2 -1/-1; the child's tb2 0/0
  m.check(t.w);
  const net::sock_id b = t.socket();
  REQUIRE(net::inet_bind(t.w, b, ep("0.0.0.0:0")) == 0);
  REQUIRE(t.connect(b, "127.0.0.1:5000").err == 0);  // moved to the 127.0.0.1 tb2
  m.check(t.w);
  REQUIRE(net::tcp_close(t.w, b) == 0);
  m.check(t.w);
  t.w.obs = nullptr;
}

TEST_CASE("trace: socket ids stay unique for the whole run, also when slots are reused", "[edge][trace]") {
  // Not a kernel value: the trace's "sk" names one socket. A socket closed and another created
  // in the same instant reuse the model's slot; their records must still differ.
  auto lr = scenario::load_scenario_text(R"({"machines":[{"name":"h"}],"timeline":[
    {"t":"0s","host":"h","op":"socket","sock":"a"},{"t":"0s","op":"close","sock":"a"},
    {"t":"0s","host":"h","op":"socket","sock":"b"},{"t":"0s","op":"close","sock":"b"},
    {"t":"0s","host":"h","op":"bind","sock":"c","addr":"127.0.0.1:5000"}]})", "t.json");
  REQUIRE(!lr.error);
  scenario::RunOptions o;
  o.trace_path = "edge_test_trace.jsonl";
  scenario::Runner r(*lr.scenario, o);
  REQUIRE(r.run().runtime_error.empty());
  std::ifstream in(o.trace_path);
  std::map<std::string, std::set<std::string>> ids_of;  // sock name -> "sk" values
  std::set<std::string> all;
  for (std::string line; std::getline(in, line);) {
    const auto s = line.find("\"sock\":\""), k = line.find("\"sk\":");
    if (s == std::string::npos || k == std::string::npos || line.find("\"ev\":\"call\"") == std::string::npos) continue;
    const std::string name = line.substr(s + 8, line.find('"', s + 8) - s - 8);
    const std::string id = line.substr(k + 5, line.find_first_of(",}", k + 5) - k - 5);
    ids_of[name].insert(id);
  }
  std::remove(o.trace_path.c_str());
  REQUIRE(ids_of.size() == 3);
  for (const auto& [name, ids] : ids_of) {
    CHECK(ids.size() == 1);
    for (const auto& id : ids) CHECK(all.insert(id).second);
  }
}

TEST_CASE("source address: IPv4 takes its own address, the longest-prefix subnet, else the first", "[edge][connect][route]") {
  // Live, 6.18 host, 2026-12-01: namespaces whose addresses sit on one veth (default route
  // through it); getsockname() after a UDP connect() to each destination. net/ipv4/route.c:
  // an RTN_LOCAL destination is its own source; else the longest-prefix connected route's
  // prefsrc (the subnet's primary, first added address); else the device's first primary.
  World t(R"([{"name":"h","addresses":["10.0.0.1/24","192.168.1.5/16","fd00::1/64"]}])");
  auto saddr = [](const World& h, const char* d) {
    return net::to_string(net::inet_select_saddr(h.w.nets[0], *net::parse_addr(d)));
  };
  CHECK(saddr(t, "10.0.0.7") == "10.0.0.1");
  CHECK(saddr(t, "192.168.9.9") == "192.168.1.5");
  CHECK(saddr(t, "8.8.8.8") == "10.0.0.1");
  CHECK(saddr(t, "192.168.1.5") == "192.168.1.5");
  CHECK(saddr(t, "127.0.0.5") == "127.0.0.1");
  World nested(R"([{"name":"h","addresses":["10.0.0.1/8","10.0.0.2/24"]}])");
  CHECK(saddr(nested, "10.0.0.2") == "10.0.0.2");
  CHECK(saddr(nested, "10.0.0.9") == "10.0.0.2");  // the /24 route, though 10.0.0.1/8 came first
  CHECK(saddr(nested, "10.5.0.1") == "10.0.0.1");
  World same(R"([{"name":"h","addresses":["10.0.0.1/24","10.0.0.2/24","10.0.0.3/16"]}])");
  CHECK(saddr(same, "10.0.0.9") == "10.0.0.1");  // 10.0.0.2 is a secondary of the same subnet
  CHECK(saddr(same, "10.0.5.9") == "10.0.0.3");
  // A host without an address of the family has no route: connect() fails ENETUNREACH.
  World v6only(R"([{"name":"h","addresses":["fd00::1/64"]}])");
  CHECK(net::inet_select_saddr(v6only.w.nets[0], *net::parse_addr("10.0.0.9")).is_any());
}

TEST_CASE("source address: IPv6 takes the longest common prefix, newest among equals", "[edge][connect][route]") {
  // Live, 6.18 host, 2026-12-01, as above (addresses added in the order listed; `ip -6 addr`
  // lists them newest first). net/ipv6/addrconf.c ipv6_dev_get_saddr(): RFC 6724 rule 8, the
  // common prefix counted up to the candidate's prefix length; the first best in list order.
  auto saddr = [](const World& h, const char* d) {
    return net::to_string(net::inet_select_saddr(h.w.nets[0], *net::parse_addr(d)));
  };
  World a(R"([{"name":"h","addresses":["10.0.0.1/24","fd00::1/64"]}])");
  CHECK(saddr(a, "fd00::9") == "fd00::1");
  CHECK(saddr(a, "2001:db8::1") == "fd00::1");
  CHECK(saddr(a, "::1") == "::1");
  World b(R"([{"name":"h","addresses":["fd00::1/48","fd00::2/64"]}])");
  CHECK(saddr(b, "fd00::9") == "fd00::2");
  CHECK(saddr(b, "fd00:0:0:1::9") == "fd00::2");  // 63 common bits, capped at 48 for fd00::1
  World c(R"([{"name":"h","addresses":["fd00::1/64","fd00::2/64","fd01::5/64"]}])");
  CHECK(saddr(c, "fd00::9") == "fd00::2");
  CHECK(saddr(c, "fd00::3") == "fd00::2");
  CHECK(saddr(c, "fd00:1::1") == "fd00::2");
  CHECK(saddr(c, "fd01:1::1") == "fd01::5");
  CHECK(saddr(c, "2001:db8::1") == "fd01::5");
  CHECK(saddr(c, "fd00::1") == "fd00::1");
  World v4only(R"([{"name":"h","addresses":["10.0.0.1/24"]}])");
  CHECK(net::inet_select_saddr(v4only.w.nets[0], *net::parse_addr("2001:db8::1")).is_any());
}

TEST_CASE("bind: getsockname() shows inet_num, 0 with IP_BIND_ADDRESS_NO_PORT after a refused connect", "[edge][bind]") {
  // Source: __inet_bind() / __inet6_bind() end with inet_sport = htons(inet_num). Live 6.18.44:
  // scenarios/edge-bind-no-port-after-refused.json (the refused connect's port 40000 stays in
  // getsockname() until the bind; after it, port 0), found by tools/oracle-fuzz.
  for (const net::family f : {net::family::inet, net::family::inet6}) {
    World t(R"([{"name":"h","sysctls":{"net.ipv4.ip_local_port_range":"40000 40000"}}])");
    const net::sock_id s = t.socket(0, {}, f);
    t.w.sk(s).bind_address_no_port = true;
    CHECK(t.connect(s, f == net::family::inet ? "127.0.0.1:5001" : "[::ffff:127.0.0.1]:5001").err == ECONNREFUSED);
    CHECK(t.w.sk(s).num == 0);
    CHECK(t.w.sk(s).sport == 40000);  // inet_put_port() leaves inet_sport
    REQUIRE(net::inet_bind(t.w, s, ep(f == net::family::inet ? "127.0.0.2:0" : "[::ffff:127.0.0.2]:0")) == 0);
    CHECK(t.w.sk(s).sport == 0);
  }
}
