// Issue 11 edge cases (items 2, 7, 10): the address family of a SYN, IPv6 bind, and connect()
// to the unspecified address. Each value is a live-kernel measurement (6.18.44 via
// tools/kernel-oracle on the scenarios named) or a kernel source line; never portsim's output.
#include <catch2/catch.hpp>

#include <cerrno>

#include "portsim/net/af_inet.h"
#include "portsim/net/inet_connection_sock.h"
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
