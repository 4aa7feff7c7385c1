// bind() and the socket options that steer port choice: one TEST_CASE per kernel rule.
// Expected values come from the live kernel (6.18.44, unshare -n, 2026-11-23; the files in
// tests/live/, made by tools/probes/) or, where no probe covers a rule, from the kernel source
// as paraphrased in /work/shared/KERNEL-MAP.md. Each test's first comment names its source.
// Never from what portsim happens to print.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "portsim/net/af_inet.h"
#include "portsim/net/inet_connection_sock.h"
#include "portsim/net/inet_hashtables.h"
#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"
#include "world_fixture.h"

namespace {

using namespace portsim;
using net::sock_id;
using net::tcp_state;
using portsim::test::World;

// One machine "host" with the probes' ip_local_port_range and optional extra sysctls
// (`extra` is a JSON fragment such as ",\"net.ipv4.ip_autobind_reuse\":\"1\"").
std::string host(const std::string& range = "40000 40011", const std::string& extra = "") {
  return "[{\"name\":\"host\",\"addresses\":[\"10.0.0.1/24\"],\"sysctls\":{\"net.ipv4.ip_local_port_range\":\"" +
         range + "\"" + extra + "}}]";
}

net::endpoint ep(const std::string& s) {
  auto e = net::parse_endpoint(s);
  REQUIRE(e.has_value());
  return *e;
}

enum : unsigned { A = 1, P = 2 };  // SO_REUSEADDR, SO_REUSEPORT (the README's abbreviations)

// socket() + setsockopt() as root (uid 0, CAP_NET_BIND_SERVICE) or as an unprivileged uid.
sock_id mk(World& W, unsigned opts = 0, uint32_t uid = 0) {
  net::cred c;
  c.uid = uid;
  c.cap_net_bind_service = uid == 0;
  const sock_id s = W.socket(0, c);
  if (opts & A) W.w.sk(s).reuse = net::SK_CAN_REUSE;
  if (opts & P) W.w.sk(s).reuseport = true;
  return s;
}
int do_bind(World& W, sock_id s, const std::string& a, net::bind_info* bi = nullptr) {
  return net::inet_bind(W.w, s, ep(a), bi);
}
int do_listen(World& W, sock_id s) { return net::inet_listen(W.w, s, 128); }
sock_id listener(World& W, const std::string& a = "127.0.0.1:5000") {
  const sock_id l = mk(W);
  REQUIRE(do_bind(W, l, a) == 0);
  REQUIRE(do_listen(W, l) == 0);
  return l;
}
void set_range(World& W, sock_id s, uint32_t lo, uint32_t hi) { W.w.set_local_port_range(s, lo | hi << 16); }

// The first half of tcp_v4_connect() without the wire: fix the source address (moving a
// wildcard-bound socket to its (port, saddr) bucket like inet_bhash2_update_saddr), set the
// destination, SYN_SENT, then inet_hash_connect() — the port choice under test. The handshake
// itself does not matter to these rules; the socket keeps its port and 4-tuple in ehash.
net::connect_info hash_connect(World& W, sock_id s, const std::string& to, int& err,
                               const char* saddr = "127.0.0.1") {
  net::sock& k = W.w.sk(s);
  const net::endpoint d = ep(to);
  if (k.rcv_saddr.is_any()) net::inet_bhash2_update_saddr(W.w, s, *net::parse_addr(saddr));
  W.w.sk(s).daddr = d.addr;
  W.w.sk(s).dport = d.port;
  W.w.sk(s).state = tcp_state::SYN_SENT;
  net::connect_info info;
  err = net::inet_hash_connect(W.w, s, info);
  if (err) {  // tcp_v4_connect's failure path
    W.w.sk(s).state = tcp_state::CLOSE;
    W.w.sk(s).daddr = net::inet_addr{};
    W.w.sk(s).dport = 0;
  } else {
    W.w.sk(s).state = tcp_state::ESTABLISHED;
  }
  return info;
}
int hash_connect(World& W, sock_id s, const std::string& to) {
  int err = 0;
  hash_connect(W, s, to, err);
  return err;
}


// --- the bind_matrix probe, replayed on the model ---------------------------------------------
enum class St { bound, listen, connected, time_wait };
constexpr int NA = -2, INUSE = EADDRINUSE;

std::string opts_json(unsigned o) {
  std::string s;
  if (o & A) s += "\"SO_REUSEADDR\":1";
  if (o & P) s += std::string(s.empty() ? "" : ",") + "\"SO_REUSEPORT\":1";
  return s.empty() ? "" : ",\"opts\":{" + s + "}";
}
std::string expect_json(int e) {
  return e == 0 ? ",\"expect\":{\"ret\":0}"
                : ",\"expect\":{\"ret\":-1,\"errno\":\"" + std::string(e == EADDRINUSE ? "EADDRINUSE" : "?") + "\"}";
}

// As tools/probes/bind_matrix.py, as a scenario (the lifecycle runs through scenario::Runner):
// a listener on 127.0.0.1:5000; O (root) binds oa:45000 and is brought to its state
// (connected: connect to the listener and accept; time_wait: then O closes first and the
// accepted socket closes); S binds sa:45000 (expected errno `bind`); if that worked S listens
// (`s_listen`); for O "bound" O then listens (`o_listen`). NA: not attempted.
void check_row(unsigned oo, const char* oa, St st, unsigned so, const char* sa, bool other_uid, int bind,
               int s_listen, int o_listen) {
  INFO("O " << oa << " opts " << oo << " state " << int(st) << "; S " << sa << " opts " << so
            << (other_uid ? " uid 1000" : " same uid"));
  std::string tl = R"({"t":"0ms","host":"host","op":"bind","sock":"lst","addr":"127.0.0.1:5000","expect":{"ret":0}},
    {"t":"0ms","op":"listen","sock":"lst","expect":{"ret":0}},)";
  tl += R"({"t":"1ms","host":"host","op":"bind","sock":"o","addr":")" + std::string(oa) + R"(:45000")" + opts_json(oo) +
        expect_json(0) + "},";
  if (st == St::listen) tl += R"({"t":"2ms","op":"listen","sock":"o","expect":{"ret":0}},)";
  if (st == St::connected || st == St::time_wait)
    tl += R"({"t":"2ms","op":"connect","sock":"o","to":"127.0.0.1:5000","expect":{"ret":0,"port":45000}},
             {"t":"3ms","op":"accept","sock":"lst","as":"c","expect":{"ret":0}},)";
  if (st == St::time_wait)
    tl += R"({"t":"4ms","op":"close","sock":"o"},{"t":"5ms","op":"close","sock":"c"},)";
  tl += R"({"t":"100ms","host":"host","op":"bind","sock":"s","addr":")" + std::string(sa) + R"(:45000")" +
        opts_json(so) + (other_uid ? ",\"uid\":1000" : "") + expect_json(bind) + "}";
  if (s_listen != NA) tl += R"(,{"t":"101ms","op":"listen","sock":"s")" + expect_json(s_listen) + "}";
  if (o_listen != NA) tl += R"(,{"t":"102ms","op":"listen","sock":"o")" + expect_json(o_listen) + "}";
  test::run_scenario_expecting("bind_test", R"({"seed":1,"machines":[{"name":"host","sysctls":{"net.ipv4.ip_local_port_range":"40000 40011"}}],
    "timeline":[)" + tl + "]}");
}

const char* const L1 = "127.0.0.1";
const char* const L2 = "127.0.0.2";
const char* const ANY = "0.0.0.0";

// n sockets with the given options bind(addr:0) in turn; returns the ports (0 on failure) and
// the errno of the first failure in `err`.
std::vector<uint16_t> bind_zero_until_failure(World& W, const std::string& addr, unsigned opts, int& err,
                                              size_t max = 100) {
  std::vector<uint16_t> ports;
  err = 0;
  for (size_t i = 0; i < max && !err; ++i) {
    const sock_id s = mk(W, opts);
    err = do_bind(W, s, addr + ":0");
    if (!err) ports.push_back(W.port(s));
  }
  return ports;
}

}  // namespace

// ============================== explicit bind: the conflict matrix ==============================

TEST_CASE("explicit bind: both SO_REUSEADDR and the owner not listening may share", "[bind]") {
  // Live: tests/live/bind_matrix.json rows 5 (bound, same uid), 325 (bound, uid 1000), 21
  // (0.0.0.0 owner), 165 (connected owner), 181 (0.0.0.0 owner after connect); README finding 6:
  // S's listen succeeds and O's later listen fails.
  check_row(A, L1, St::bound, A, L1, false, 0, 0, INUSE);
  check_row(A, L1, St::bound, A, L1, true, 0, 0, INUSE);
  check_row(A, ANY, St::bound, A, L1, false, 0, 0, INUSE);
  check_row(A, L1, St::connected, A, L1, false, 0, 0, NA);
  check_row(A, ANY, St::connected, A, L1, false, 0, 0, NA);
  // SO_REUSEADDR on one side only is not enough: rows 1 (S only) and 4 (O only)
  check_row(0, L1, St::bound, A, L1, false, INUSE, NA, 0);
  check_row(A, L1, St::bound, 0, L1, false, INUSE, NA, 0);
}

TEST_CASE("explicit bind: a listening owner blocks SO_REUSEADDR", "[bind]") {
  // Live: tests/live/bind_matrix.json rows 85 (127.0.0.1 listener) and 101 (0.0.0.0 listener):
  // A+A against a LISTEN owner gives EADDRINUSE (KERNEL-MAP §3.2 step 2, sk2 not LISTEN).
  check_row(A, L1, St::listen, A, L1, false, INUSE, NA, NA);
  check_row(A, ANY, St::listen, A, L1, false, INUSE, NA, NA);
}

TEST_CASE("explicit bind: SO_REUSEPORT shares only within one uid", "[bind]") {
  // Live: tests/live/bind_matrix.json rows 10 (bound, same uid: bind, S listen and O listen
  // OK), 330 (bound, uid 1000: EADDRINUSE), 90 (listening owner, same uid: OK and listen OK),
  // 410 (listening owner, uid 1000: EADDRINUSE), 58 / 378 (0.0.0.0 both, same / other uid).
  check_row(P, L1, St::bound, P, L1, false, 0, 0, 0);
  check_row(P, L1, St::bound, P, L1, true, INUSE, NA, 0);
  check_row(P, L1, St::listen, P, L1, false, 0, 0, NA);
  check_row(P, L1, St::listen, P, L1, true, INUSE, NA, NA);
  check_row(P, ANY, St::bound, P, ANY, false, 0, 0, 0);
  check_row(P, ANY, St::bound, P, ANY, true, INUSE, NA, 0);
}

TEST_CASE("explicit bind: a TIME_WAIT owner yields only to SO_REUSEADDR on both sides", "[bind]") {
  // Live: tests/live/bind_matrix.json rows 240 (no options: EADDRINUSE), 241 (S with
  // SO_REUSEADDR, TW without: EADDRINUSE), 244 (TW with, S without: EADDRINUSE), 245 (both:
  // OK, and S may listen, README finding 7).
  check_row(0, L1, St::time_wait, 0, L1, false, INUSE, NA, NA);
  check_row(0, L1, St::time_wait, A, L1, false, INUSE, NA, NA);
  check_row(A, L1, St::time_wait, 0, L1, false, INUSE, NA, NA);
  check_row(A, L1, St::time_wait, A, L1, false, 0, 0, NA);
}

TEST_CASE("explicit bind: a TIME_WAIT owner with SO_REUSEPORT yields to any uid", "[bind]") {
  // Live: tests/live/bind_matrix.json rows 250 (same uid) and 570 (S as uid 1000, TW from root):
  // both bind and listen OK — the uid test is skipped for TIME_WAIT (README finding 5).
  check_row(P, L1, St::time_wait, P, L1, false, 0, 0, NA);
  check_row(P, L1, St::time_wait, P, L1, true, 0, 0, NA);
}

TEST_CASE("explicit bind: the wildcard overlaps every specific address", "[bind]") {
  // Live: tests/live/bind_matrix.json rows 0 (127.0.0.1 twice), 16 (0.0.0.0 then 127.0.0.1),
  // 32 (127.0.0.1 then 0.0.0.0), 48 (0.0.0.0 twice), 160 (connected owner): no options →
  // EADDRINUSE.
  check_row(0, L1, St::bound, 0, L1, false, INUSE, NA, 0);
  check_row(0, ANY, St::bound, 0, L1, false, INUSE, NA, 0);
  check_row(0, L1, St::bound, 0, ANY, false, INUSE, NA, 0);
  check_row(0, ANY, St::bound, 0, ANY, false, INUSE, NA, 0);
  check_row(0, L1, St::connected, 0, L1, false, INUSE, NA, NA);
}

TEST_CASE("explicit bind: 127.0.0.1 and 127.0.0.2 never conflict", "[bind]") {
  // Live: tests/live/bind_matrix.json rows 64 (bound), 464 (listening owner, uid 1000), 304
  // (TIME_WAIT owner); README finding 2: OK in every state with any options and either uid.
  check_row(0, L1, St::bound, 0, L2, false, 0, 0, 0);
  check_row(0, L1, St::listen, 0, L2, true, 0, 0, NA);
  check_row(0, L1, St::time_wait, 0, L2, false, 0, 0, NA);
}

// ================================= __inet_bind's own checks ==================================

TEST_CASE("bind: EACCES below ip_unprivileged_port_start without CAP_NET_BIND_SERVICE", "[bind]") {
  // Live: tests/live/bind_errors.json group "priv" (uid 1000, no capabilities): 443 and 1023
  // EACCES, 1024 OK, port 0 OK; root 443 OK; start=1000: 999 EACCES, 1000 OK; start=0: 443 OK;
  // EACCES comes before EINVAL (already bound) and before EADDRINUSE (root listening on 443).
  World W(host());
  CHECK(do_bind(W, mk(W, 0, 1000), "127.0.0.1:443") == EACCES);
  CHECK(do_bind(W, mk(W, 0, 1000), "127.0.0.1:1023") == EACCES);
  CHECK(do_bind(W, mk(W, 0, 1000), "127.0.0.1:1024") == 0);
  CHECK(do_bind(W, mk(W, 0, 1000), "127.0.0.1:0") == 0);
  const sock_id root = mk(W);
  CHECK(do_bind(W, root, "127.0.0.1:443") == 0);
  CHECK(do_listen(W, root) == 0);
  CHECK(do_bind(W, mk(W, 0, 1000), "127.0.0.1:443") == EACCES);
  const sock_id bound = mk(W, 0, 1000);
  REQUIRE(do_bind(W, bound, "127.0.0.1:45000") == 0);
  CHECK(do_bind(W, bound, "127.0.0.1:443") == EACCES);

  World W1000(host("40000 40011", ",\"net.ipv4.ip_unprivileged_port_start\":\"1000\""));
  CHECK(do_bind(W1000, mk(W1000, 0, 1000), "127.0.0.1:999") == EACCES);
  CHECK(do_bind(W1000, mk(W1000, 0, 1000), "127.0.0.1:1000") == 0);
  World W0(host("40000 40011", ",\"net.ipv4.ip_unprivileged_port_start\":\"0\""));
  CHECK(do_bind(W0, mk(W0, 0, 1000), "127.0.0.1:443") == 0);
}

TEST_CASE("bind: a socket that has a port cannot bind again (EINVAL)", "[bind]") {
  // Live: tests/live/bind_errors.json group "rebind": EINVAL after an explicit bind (same or
  // another port, or 0.0.0.0:0), after bind(0), when listening, when connected (autobound),
  // after a listen() autobind; after bind(addr, 0) with IP_BIND_ADDRESS_NO_PORT (port still 0)
  // a second bind succeeds, also to another address.
  World W(host());
  listener(W);
  const sock_id b = mk(W);
  REQUIRE(do_bind(W, b, "127.0.0.1:45001") == 0);
  CHECK(do_bind(W, b, "127.0.0.1:45001") == EINVAL);
  CHECK(do_bind(W, b, "127.0.0.1:45002") == EINVAL);
  CHECK(do_bind(W, b, "0.0.0.0:0") == EINVAL);
  const sock_id z = mk(W);
  REQUIRE(do_bind(W, z, "127.0.0.1:0") == 0);
  CHECK(do_bind(W, z, "127.0.0.1:0") == EINVAL);
  const sock_id l = mk(W);
  REQUIRE(do_bind(W, l, "127.0.0.1:45003") == 0);
  REQUIRE(do_listen(W, l) == 0);
  CHECK(do_bind(W, l, "127.0.0.1:45003") == EINVAL);
  const sock_id c = mk(W);
  REQUIRE(hash_connect(W, c, "127.0.0.1:5000") == 0);
  CHECK(do_bind(W, c, "127.0.0.1:45004") == EINVAL);
  const sock_id la = mk(W);
  REQUIRE(do_listen(W, la) == 0);
  CHECK(do_bind(W, la, "127.0.0.1:45005") == EINVAL);
  const sock_id np = mk(W);
  W.w.sk(np).bind_address_no_port = true;
  REQUIRE(do_bind(W, np, "127.0.0.1:0") == 0);
  CHECK(W.port(np) == 0);
  CHECK(do_bind(W, np, "127.0.0.2:45007") == 0);
  CHECK(W.port(np) == 45007);
}

TEST_CASE("bind: a non-local address gives EADDRNOTAVAIL unless ip_nonlocal_bind", "[bind]") {
  // Live: tests/live/bind_errors.json group "nonlocal": 192.0.2.1:45010 and 192.0.2.1:0
  // EADDRNOTAVAIL; 127.0.0.2, 127.255.255.254 and 0.0.0.0 OK; ip_nonlocal_bind=1: bind and
  // listen OK, port 0 gets a range port. Group "priv": the address check comes before EACCES.
  World W(host());
  CHECK(do_bind(W, mk(W), "192.0.2.1:45010") == EADDRNOTAVAIL);
  CHECK(do_bind(W, mk(W), "192.0.2.1:0") == EADDRNOTAVAIL);
  CHECK(do_bind(W, mk(W, 0, 1000), "192.0.2.1:443") == EADDRNOTAVAIL);
  CHECK(do_bind(W, mk(W), "127.0.0.2:45010") == 0);
  CHECK(do_bind(W, mk(W), "127.255.255.254:45010") == 0);
  CHECK(do_bind(W, mk(W), "0.0.0.0:45011") == 0);
  World N(host("40000 40011", ",\"net.ipv4.ip_nonlocal_bind\":\"1\""));
  const sock_id s = mk(N);
  CHECK(do_bind(N, s, "192.0.2.1:45012") == 0);
  CHECK(do_listen(N, s) == 0);
  const sock_id z = mk(N);
  CHECK(do_bind(N, z, "192.0.2.1:0") == 0);
  CHECK(N.port(z) >= 40000);
  CHECK(N.port(z) <= 40011);
}

// ==================================== bind(0): the search =====================================

TEST_CASE("bind(0): the six odd ports, then the six even ones, then EADDRINUSE", "[bind]") {
  // Live: tests/live/bind_zero_order.json bind0_plain, 20 runs of bind(127.0.0.1:0) with range
  // 40000-40011: always 6 odd ports (random order) then 6 even, then EADDRINUSE (finding 14).
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    World W(host(), seed);
    int err = 0;
    const auto ports = bind_zero_until_failure(W, "127.0.0.1", 0, err);
    INFO("seed " << seed);
    REQUIRE(ports.size() == 12);
    CHECK(err == EADDRINUSE);
    CHECK(std::set<uint16_t>(ports.begin(), ports.end()).size() == 12);
    for (size_t i = 0; i < 12; ++i) {
      CHECK(ports[i] >= 40000);
      CHECK(ports[i] <= 40011);
      CHECK((ports[i] & 1) == (i < 6 ? 1 : 0));
    }
  }
}

TEST_CASE("bind(0) with SO_REUSEADDR: the lower half first, odd before even in each half", "[bind]") {
  // Live: tests/live/bind_zero_order.json bind0_reuseaddr, 20 runs, range 40000-40011: all of
  // 40000-40005 (odd first) before 40006-40011 (odd first), then EADDRINUSE (finding 15).
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    World W(host(), seed);
    int err = 0;
    const auto ports = bind_zero_until_failure(W, "127.0.0.1", A, err);
    INFO("seed " << seed);
    REQUIRE(ports.size() == 12);
    CHECK(err == EADDRINUSE);
    for (size_t i = 0; i < 12; ++i) {
      const bool lower = i < 6;
      CHECK((ports[i] <= 40005) == lower);
      CHECK((ports[i] & 1) == ((i % 6) < 3 ? 1 : 0));
    }
  }
}

TEST_CASE("bind(0) with ip_autobind_reuse: a relaxed pass shares a SO_REUSEADDR port", "[bind]") {
  // Live: tests/live/bind_zero_order.json autobind_reuse (range 40000-40000): with 0 the second
  // SO_REUSEADDR bind(0) gives EADDRINUSE; with 1 both get 40000, the first listen succeeds and
  // the second gives EADDRINUSE (also when the first is on 0.0.0.0); even with 1 the second bind
  // fails when the first listens, when both also have SO_REUSEPORT, or when either lacks A.
  struct V { const char* what; unsigned o1, o2; const char* a1; bool listen_first; int with1; };
  const V variants[] = {
      {"both SO_REUSEADDR", A, A, "127.0.0.1", false, 0},
      {"both SO_REUSEADDR, first listening", A, A, "127.0.0.1", true, EADDRINUSE},
      {"both SO_REUSEADDR+SO_REUSEPORT", A | P, A | P, "127.0.0.1", false, EADDRINUSE},
      {"first SO_REUSEADDR, second none", A, 0, "127.0.0.1", false, EADDRINUSE},
      {"first none, second SO_REUSEADDR", 0, A, "127.0.0.1", false, EADDRINUSE},
      {"both SO_REUSEADDR, first on 0.0.0.0", A, A, "0.0.0.0", false, 0},
  };
  for (int reuse = 0; reuse <= 1; ++reuse) {
    for (const V& v : variants) {
      INFO("ip_autobind_reuse=" << reuse << ", " << v.what);
      World W(host("40000 40000", ",\"net.ipv4.ip_autobind_reuse\":\"" + std::to_string(reuse) + "\""));
      const sock_id s1 = mk(W, v.o1), s2 = mk(W, v.o2);
      REQUIRE(do_bind(W, s1, std::string(v.a1) + ":0") == 0);
      CHECK(W.port(s1) == 40000);
      if (v.listen_first) REQUIRE(do_listen(W, s1) == 0);
      net::bind_info bi;
      const int err = do_bind(W, s2, "127.0.0.1:0", &bi);
      CHECK(err == (reuse ? v.with1 : EADDRINUSE));
      if (err == 0) {
        CHECK(W.port(s2) == 40000);
        CHECK(bi.relax);  // found only by the relaxed rescan (KERNEL-MAP §3.3 step 7)
        CHECK(do_listen(W, s1) == 0);
        CHECK(do_listen(W, s2) == EADDRINUSE);
      }
    }
  }
}

TEST_CASE("bind(0) never picks a port of ip_local_reserved_ports; explicit bind may", "[bind]") {
  // Kernel source: inet_csk_find_open_port() skips inet_is_local_reserved_port() (KERNEL-MAP
  // §3.3 step 4); Documentation/networking/ip-sysctl.rst ip_local_reserved_ports: not used by
  // automatic port assignment, explicit port allocation unchanged. Parity order as bind0_plain.
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    World W(host("40000 40011", ",\"net.ipv4.ip_local_reserved_ports\":\"40001,40003-40005\""), seed);
    int err = 0;
    const auto ports = bind_zero_until_failure(W, "127.0.0.1", 0, err);
    INFO("seed " << seed);
    REQUIRE(ports.size() == 8);
    CHECK(err == EADDRINUSE);
    for (size_t i = 0; i < ports.size(); ++i) {
      CHECK((ports[i] == 40001 || (ports[i] >= 40003 && ports[i] <= 40005)) == false);
      CHECK((ports[i] & 1) == (i < 3 ? 1 : 0));  // 40007, 40009, 40011 first
    }
    CHECK(do_bind(W, mk(W), "127.0.0.1:40003") == 0);
  }
}

TEST_CASE("listen() on an unbound socket autobinds like bind(0): odd first", "[bind]") {
  // Live: KERNEL-MAP §3.2 ("listen() on an unbound socket autobinds with the bind(0) algorithm
  // (odd ports first; verified live)"); tests/live/bind_errors.json "socket autobound by
  // listen()" got 40007. Kernel source: inet_csk_listen_start → get_port(sk, 0).
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    World W(host(), seed);
    const sock_id l = mk(W);
    REQUIRE(do_listen(W, l) == 0);
    CHECK(W.port(l) % 2 == 1);
    CHECK(W.port(l) >= 40000);
    CHECK(W.port(l) <= 40011);
  }
}

TEST_CASE("bind(0) reports its search: offset, half, pass, examined", "[bind]") {
  // Kernel source: inet_csk_find_open_port() (KERNEL-MAP §3.3): the offset is odd, the first
  // pass scans odd offsets, the second the other parity; SO_REUSEADDR scans half 1 then half 2,
  // half = low + 2*floor((high-low)/4) = 40006 for 40000-40011.
  World W(host());
  net::bind_info bi;
  REQUIRE(do_bind(W, mk(W), "127.0.0.1:0", &bi) == 0);
  CHECK(bi.offset % 2 == 1);
  CHECK(bi.half == 0);
  CHECK(bi.pass == 1);
  CHECK(bi.examined == 1);
  CHECK(bi.low == 40000);
  CHECK(bi.high == 40012);
  World R(host());
  int err = 0;
  bind_zero_until_failure(R, "127.0.0.1", A, err, 6);  // fills the lower half
  net::bind_info br;
  const sock_id s = mk(R, A);
  REQUIRE(do_bind(R, s, "127.0.0.1:0", &br) == 0);
  CHECK(br.half == 2);
  CHECK(br.low == 40006);
  CHECK(br.high == 40012);
  CHECK(br.pass == 1);
  CHECK(R.port(s) % 2 == 1);
  CHECK(br.examined >= 7);  // the six full lower-half candidates, then the upper half
}

// ============================ connect() and ports chosen by bind() ============================

TEST_CASE("connect() on a bound socket only checks the 4-tuple", "[bind]") {
  // Live: tests/live/bind_errors.json group "tuple": A and B SO_REUSEADDR on 127.0.0.1:46000;
  // A → :5000 OK; B → :5000 EADDRNOTAVAIL; B → :5001 OK on 46000; C (same endpoint) → :5001
  // EADDRNOTAVAIL; D on 0.0.0.0:46000 picks 127.0.0.1 and collides with A. Kernel source:
  // __inet_hash_connect with inet_num != 0 runs check_established only (KERNEL-MAP §1.3 step 1).
  World W(host());
  listener(W, "127.0.0.1:5000");
  listener(W, "127.0.0.1:5001");
  const sock_id a = mk(W, A), b = mk(W, A), c = mk(W, A), d = mk(W, A);
  REQUIRE(do_bind(W, a, "127.0.0.1:46000") == 0);
  REQUIRE(do_bind(W, b, "127.0.0.1:46000") == 0);
  int ra_err = 0;
  const net::connect_info ra_info = hash_connect(W, a, "127.0.0.1:5000", ra_err);
  CHECK(ra_err == 0);
  CHECK_FALSE(ra_info.autobind);
  CHECK(ra_info.examined == 0);
  CHECK(hash_connect(W, b, "127.0.0.1:5000") == EADDRNOTAVAIL);
  CHECK(hash_connect(W, b, "127.0.0.1:5001") == 0);
  CHECK(W.port(b) == 46000);
  REQUIRE(do_bind(W, c, "127.0.0.1:46000") == 0);
  CHECK(hash_connect(W, c, "127.0.0.1:5001") == EADDRNOTAVAIL);
  REQUIRE(do_bind(W, d, "0.0.0.0:46000") == 0);
  CHECK(hash_connect(W, d, "127.0.0.1:5000") == EADDRNOTAVAIL);
}

TEST_CASE("IP_BIND_ADDRESS_NO_PORT: port 0 until connect, then connect's even-first choice", "[bind]") {
  // Live: tests/live/bind_zero_order.json no_port_connect (range 40000-40009, 10 runs):
  // getsockname port 0 after bind(127.0.0.1:0); connects: 5 even ports first, 10 in all, then
  // EADDRNOTAVAIL (finding 20). KERNEL-MAP §1.4: with a non-zero port the option is ignored.
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    World W(host("40000 40009"), seed);
    listener(W);
    INFO("seed " << seed);
    std::vector<uint16_t> ports;
    int last = 0;
    for (int i = 0; i < 11 && !last; ++i) {
      const sock_id s = mk(W);
      W.w.sk(s).bind_address_no_port = true;
      REQUIRE(do_bind(W, s, "127.0.0.1:0") == 0);
      CHECK(W.port(s) == 0);
      int r_err = 0;
      const net::connect_info r_info = hash_connect(W, s, "127.0.0.1:5000", r_err);
      last = r_err;
      if (!r_err) {
        CHECK(r_info.autobind);
        ports.push_back(W.port(s));
      }
    }
    CHECK(last == EADDRNOTAVAIL);
    REQUIRE(ports.size() == 10);
    for (size_t i = 0; i < 10; ++i) CHECK((ports[i] & 1) == (i < 5 ? 0 : 1));
  }
  World W(host());
  const sock_id s = mk(W);
  W.w.sk(s).bind_address_no_port = true;
  REQUIRE(do_bind(W, s, "127.0.0.1:45000") == 0);
  CHECK(W.port(s) == 45000);
}

TEST_CASE("ports held by bind() are never shared by connect()", "[bind]") {
  // Live: tests/live/bind_zero_order.json bind3_connect and bind3_connect_127.0.0.2 (range
  // 40000-40009, 5 runs each): three bind(0) sockets kept (odd ports), then connects to
  // 127.0.0.1:5000: exactly 7 succeed — the 5 even ports, then the 2 free odd ones — also
  // when the bind(0) sockets sit on 127.0.0.2 (finding 18). KERNEL-MAP §1.3 step 5.
  for (const char* baddr : {"127.0.0.1", "127.0.0.2"}) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      World W(host("40000 40009"), seed);
      listener(W);
      INFO(baddr << " seed " << seed);
      std::set<uint16_t> bound;
      for (int i = 0; i < 3; ++i) {
        const sock_id b = mk(W);
        REQUIRE(do_bind(W, b, std::string(baddr) + ":0") == 0);
        bound.insert(W.port(b));
      }
      std::vector<uint16_t> ports;
      int last = 0;
      while (!last && ports.size() < 20) {
        const sock_id c = mk(W);
        last = hash_connect(W, c, "127.0.0.1:5000");
        if (!last) ports.push_back(W.port(c));
      }
      CHECK(last == EADDRNOTAVAIL);
      REQUIRE(ports.size() == 7);
      for (size_t i = 0; i < ports.size(); ++i) {
        CHECK(bound.count(ports[i]) == 0);
        CHECK((ports[i] & 1) == (i < 5 ? 0 : 1));
      }
    }
  }
}

TEST_CASE("a range held by connects leaves bind(0) EADDRINUSE on overlapping addresses", "[bind]") {
  // Live: tests/live/bind_zero_order.json connects_hold (range 40000-40009, 5 runs): 10 connects,
  // the 11th EADDRNOTAVAIL; then bind(127.0.0.1:0) EADDRINUSE, also with SO_REUSEADDR, and
  // bind(0.0.0.0:0) EADDRINUSE; bind(127.0.0.2:0) OK (finding 17).
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    World W(host("40000 40009"), seed);
    listener(W);
    INFO("seed " << seed);
    for (int i = 0; i < 10; ++i) REQUIRE(hash_connect(W, mk(W), "127.0.0.1:5000") == 0);
    CHECK(hash_connect(W, mk(W), "127.0.0.1:5000") == EADDRNOTAVAIL);
    CHECK(do_bind(W, mk(W), "127.0.0.1:0") == EADDRINUSE);
    CHECK(do_bind(W, mk(W, A), "127.0.0.1:0") == EADDRINUSE);
    CHECK(do_bind(W, mk(W), "0.0.0.0:0") == EADDRINUSE);
    const sock_id s = mk(W);
    CHECK(do_bind(W, s, "127.0.0.2:0") == 0);
    CHECK(W.port(s) >= 40000);
    CHECK(W.port(s) <= 40009);
  }
}

TEST_CASE("listen() re-checks the port: the second SO_REUSEADDR listener fails", "[bind]") {
  // Live: KERNEL-MAP §3.2 table (✓ "A,B both SO_REUSEADDR same addr | listen(A) then listen(B)
  // | A OK, B EADDRINUSE"); tests/live/bind_matrix.json row 5 (S listens, then O's listen
  // EADDRINUSE). Kernel source: inet_csk_listen_start re-runs get_port in TCP_LISTEN.
  World W(host());
  const sock_id a = mk(W, A), b = mk(W, A);
  REQUIRE(do_bind(W, a, "127.0.0.1:45000") == 0);
  REQUIRE(do_bind(W, b, "127.0.0.1:45000") == 0);
  CHECK(do_listen(W, a) == 0);
  CHECK(do_listen(W, b) == EADDRINUSE);
  CHECK(W.w.sk(b).state == tcp_state::CLOSE);
  CHECK(W.port(b) == 45000);  // the failed listen leaves the bind in place
}

// ===================================== IP_LOCAL_PORT_RANGE ====================================

TEST_CASE("IP_LOCAL_PORT_RANGE: how the socket range combines with the netns range", "[bind]") {
  // Kernel source: inet_sk_get_local_port_range() (KERNEL-MAP §1.3 step 2): sk_lo replaces low
  // only inside [netns_lo, netns_hi]; sk_hi replaces high only inside [low-as-now, netns_hi];
  // true whenever the socket has a range. Cases from selftest ip_local_port_range.c (§9), netns
  // range 40000-49999.
  World W(host("40000 49999"));
  auto range = [&](uint32_t lo, uint32_t hi) {
    const sock_id s = mk(W);
    set_range(W, s, lo, hi);
    int low = 0, high = 0;
    const bool own = net::inet_sk_get_local_port_range(W.w, W.w.sk(s), low, high);
    return std::tuple<bool, int, int>{own, low, high};
  };
  CHECK(range(0, 0) == std::tuple<bool, int, int>{false, 40000, 49999});
  CHECK(range(30000, 39999) == std::tuple<bool, int, int>{true, 40000, 49999});  // wholly below: ignored
  CHECK(range(50000, 59999) == std::tuple<bool, int, int>{true, 40000, 49999});  // wholly above: ignored
  CHECK(range(45000, 45000) == std::tuple<bool, int, int>{true, 45000, 45000});
  CHECK(range(0, 40000) == std::tuple<bool, int, int>{true, 40000, 40000});
  CHECK(range(49999, 0) == std::tuple<bool, int, int>{true, 49999, 49999});
  CHECK(range(45000, 44000) == std::tuple<bool, int, int>{true, 45000, 49999});  // hi below the new low
  CHECK(range(30000, 45000) == std::tuple<bool, int, int>{true, 40000, 45000});
  CHECK(range(45000, 60000) == std::tuple<bool, int, int>{true, 45000, 49999});
}

TEST_CASE("IP_LOCAL_PORT_RANGE: bind(0) stays inside it, ignored when outside the netns range", "[bind]") {
  // Selftest ip_local_port_range.c (KERNEL-MAP §9), netns range 40000-49999: {45000,45000} →
  // 45000; {0,40000} → 40000; {49999,0} → 49999; [30000,39999] and [50000,59999] ignored (two
  // bind(0) land in 40000-49999); 40000-40007: 8 binds cover all 8 ports, the 9th EADDRINUSE.
  World W(host("40000 49999"));
  auto one = [&](uint32_t lo, uint32_t hi) {
    const sock_id s = mk(W);
    set_range(W, s, lo, hi);
    REQUIRE(do_bind(W, s, "127.0.0.1:0") == 0);
    return W.port(s);
  };
  CHECK(one(45000, 45000) == 45000);
  CHECK(one(0, 40000) == 40000);
  CHECK(one(49999, 0) == 49999);
  for (auto [lo, hi] : {std::pair<uint32_t, uint32_t>{30000, 39999}, {50000, 59999}})
    for (int i = 0; i < 2; ++i) {
      const uint16_t p = one(lo, hi);
      CHECK(p >= 40000);
      CHECK(p <= 49999);
    }
  World R(host("40000 49999"));
  std::set<uint16_t> got;
  for (int i = 0; i < 8; ++i) {
    const sock_id s = mk(R);
    set_range(R, s, 40000, 40007);
    REQUIRE(do_bind(R, s, "127.0.0.1:0") == 0);
    got.insert(R.port(s));
  }
  CHECK(got.size() == 8);
  CHECK(*got.begin() == 40000);
  CHECK(*got.rbegin() == 40007);
  const sock_id s = mk(R);
  set_range(R, s, 40000, 40007);
  CHECK(do_bind(R, s, "127.0.0.1:0") == EADDRINUSE);
}

TEST_CASE("IP_LOCAL_PORT_RANGE: bind(0) keeps parity and halves", "[bind]") {
  // Live: tests/live/bind_zero_order.json sockrange_bind0_plain / _reuseaddr (socket range
  // 40002-40005 in netns range 40000-40011, 20 runs each): plain → 40003 and 40005 first (any
  // order), then the evens; SO_REUSEADDR → always exactly 40003, 40002, 40005, 40004 (finding 22).
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    INFO("seed " << seed);
    for (unsigned opts : {0u, unsigned(A)}) {
      World W(host(), seed);
      std::vector<uint16_t> ports;
      int err = 0;
      while (!err && ports.size() < 10) {
        const sock_id s = mk(W, opts);
        set_range(W, s, 40002, 40005);
        err = do_bind(W, s, "127.0.0.1:0");
        if (!err) ports.push_back(W.port(s));
      }
      CHECK(err == EADDRINUSE);
      REQUIRE(ports.size() == 4);
      if (opts == A) {
        CHECK(ports == std::vector<uint16_t>{40003, 40002, 40005, 40004});
      } else {
        CHECK(std::set<uint16_t>(ports.begin(), ports.begin() + 2) == std::set<uint16_t>{40003, 40005});
        CHECK(std::set<uint16_t>(ports.begin() + 2, ports.end()) == std::set<uint16_t>{40002, 40004});
      }
    }
  }
}

TEST_CASE("IP_LOCAL_PORT_RANGE: connect() makes one pass with step 1, no parity split", "[bind]") {
  // Live: tests/live/bind_zero_order.json sockrange_connect (socket range 40002-40005, netns
  // 40000-40011, 10 runs): all 4 ports and no others, then EADDRNOTAVAIL; the first half was
  // even, odd or mixed (finding 21). Kernel source: __inet_hash_connect, step 1 when the socket
  // has a range (KERNEL-MAP §1.3 steps 3 and 6).
  bool mixed_seen = false;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    World W(host(), seed);
    listener(W);
    INFO("seed " << seed);
    std::vector<uint16_t> ports;
    int last = 0;
    while (!last && ports.size() < 10) {
      const sock_id s = mk(W);
      set_range(W, s, 40002, 40005);
      int r_err = 0;
      const net::connect_info r_info = hash_connect(W, s, "127.0.0.1:5000", r_err);
      last = r_err;
      CHECK(r_info.step == 1);
      if (!r_err) {
        CHECK(r_info.pass == 1);
        ports.push_back(W.port(s));
      }
    }
    CHECK(last == EADDRNOTAVAIL);
    REQUIRE(ports.size() == 4);
    CHECK(std::set<uint16_t>(ports.begin(), ports.end()) == std::set<uint16_t>{40002, 40003, 40004, 40005});
    mixed_seen = mixed_seen || (ports[0] & 1) != (ports[1] & 1);
  }
  CHECK(mixed_seen);
}

TEST_CASE("IP_LOCAL_PORT_RANGE: lo > hi is refused with EINVAL", "[bind]") {
  // Selftest ip_local_port_range.c (KERNEL-MAP §9): setsockopt with lo 40222 > hi 40111 → EINVAL;
  // kernel source do_ip_setsockopt(IP_LOCAL_PORT_RANGE) rejects lo > hi when both are set.
  test::run_scenario_expecting("bind_test", R"({"machines":[{"name":"host"}],"timeline":[
    {"t":"0s","host":"host","op":"socket","sock":"s"},
    {"t":"0s","op":"setsockopt","sock":"s","opt":"IP_LOCAL_PORT_RANGE","value":"40222-40111",
     "expect":{"ret":-1,"errno":"EINVAL"}},
    {"t":"0s","op":"setsockopt","sock":"s","opt":"IP_LOCAL_PORT_RANGE","value":"40111-40222","expect":{"ret":0}},
    {"t":"0s","op":"bind","sock":"s","addr":"127.0.0.1:0","expect":{"ret":0,"port_in":[40111,40222]}}]})");
}
