// Issue 11's TCP state-machine edges, one test per item. Expected values: the live kernel
// 6.18.44 (tests/live/tcp_edges.json, made by tools/probes/tcp_edges_probe.py, case named in
// each test) or the 6.18 source (file and function named).
#include <catch2/catch.hpp>

#include <cerrno>
#include <vector>

#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"
#include "world_fixture.h"

using namespace portsim;
using portsim::test::World;

namespace {

net::endpoint ep(const char* s) { return *net::parse_endpoint(s); }


net::sock_id listener(World& t, const char* addr) {
  const net::sock_id l = t.socket();
  REQUIRE(net::inet_bind(t.w, l, ep(addr)) == 0);
  REQUIRE(net::inet_listen(t.w, l, 16) == 0);
  return l;
}

}  // namespace

TEST_CASE("item 1: a failed connect() gives back a bind(0) port, not an explicitly bound one", "[tcp][issue11]") {
  // Live (case failed_connect_releases_port): bind0 → b_to_5001 EADDRNOTAVAIL; explicit → OK.
  // Source: tcp_set_state(TCP_CLOSE) calls inet_put_port() unless SOCK_BINDPORT_LOCK.
  World t(R"([{"name":"h","sysctls":{"net.ipv4.ip_local_port_range":"40000 40000","net.ipv4.ip_autobind_reuse":1}}])");
  listener(t, "127.0.0.1:5000");
  listener(t, "127.0.0.1:5001");
  const net::sock_id a = t.socket(), b = t.socket();
  for (auto s : {a, b}) {
    t.w.sk(s).reuse = net::SK_CAN_REUSE;
    REQUIRE(net::inet_bind(t.w, s, ep("127.0.0.1:0")) == 0);
    REQUIRE(t.port(s) == 40000);
  }
  REQUIRE(t.connect(a, "127.0.0.1:5000").err == 0);
  CHECK(t.connect(b, "127.0.0.1:5000").err == EADDRNOTAVAIL);
  CHECK(t.port(b) == 0);                // inet_num: the port went back
  CHECK(t.w.sk(b).sport == 40000);      // inet_sport: getsockname still shows it (live: 127.0.0.1:40000)
  CHECK(t.connect(b, "127.0.0.1:5001").err == EADDRNOTAVAIL);

  World u(R"([{"name":"h","sysctls":{"net.ipv4.ip_local_port_range":"40000 40000"}}])");
  listener(u, "127.0.0.1:5000");
  listener(u, "127.0.0.1:5001");
  const net::sock_id c = u.socket(), d = u.socket();
  for (auto s : {c, d}) {
    u.w.sk(s).reuse = net::SK_CAN_REUSE;
    REQUIRE(net::inet_bind(u.w, s, ep("127.0.0.1:40000")) == 0);
  }
  REQUIRE(u.connect(c, "127.0.0.1:5000").err == 0);
  CHECK(u.connect(d, "127.0.0.1:5000").err == EADDRNOTAVAIL);
  CHECK(u.port(d) == 40000);
  CHECK(u.connect(d, "127.0.0.1:5001").err == 0);
}

TEST_CASE("item 3: a bare SYN in SYN_SENT is a simultaneous open; a socket connects to itself", "[tcp][issue11]") {
  // Live (case self_connect): OK in 0.1 ms, local = peer = 127.0.0.1:40000, ESTABLISHED.
  // Source: tcp_rcv_synsent_state_process() — SYN without ACK: TCP_SYN_RECV, tcp_send_synack().
  World t(R"([{"name":"h","sysctls":{"net.ipv4.ip_local_port_range":"40000 40000"}}])");
  const net::sock_id c = t.socket();
  CHECK(t.connect(c, "127.0.0.1:40000").err == 0);
  CHECK(t.port(c) == 40000);
  CHECK(t.w.sk(c).dport == 40000);
  CHECK(t.w.sk(c).state == net::tcp_state::ESTABLISHED);
  CHECK(t.w.sk(c).ss == net::socket_state::SS_CONNECTED);
}

TEST_CASE("item 4: repeated connect() answers by sock->state (EINPROGRESS, EALREADY, EISCONN, sk_err)", "[tcp][issue11]") {
  // Live (case connect_errnos): refused_nb EINPROGRESS, ECONNREFUSED, EINPROGRESS, ECONNREFUSED;
  // listener_nb EINPROGRESS, OK, EISCONN; established_then_rst OK, EISCONN; refused_blocking
  // ECONNREFUSED ×3; refused_nb_so_error_read: after SO_ERROR was read, ECONNABORTED.
  // Source: net/ipv4/af_inet.c __inet_stream_connect().
  World t(R"([{"name":"h"}])");
  const auto nb = [&](net::sock_id s, const char* to) { return net::inet_stream_connect(t.w, s, ep(to), true).err; };
  const net::sock_id r = t.socket();
  CHECK(nb(r, "127.0.0.1:5999") == EINPROGRESS);
  CHECK(nb(r, "127.0.0.1:5999") == ECONNREFUSED);
  CHECK(nb(r, "127.0.0.1:5999") == EINPROGRESS);
  t.w.sk(r).sk_err = 0;  // what getsockopt(SO_ERROR) does (sock_error consumes it)
  CHECK(nb(r, "127.0.0.1:5999") == ECONNABORTED);

  const net::sock_id l = listener(t, "127.0.0.1:5000");
  const net::sock_id k = t.socket();
  CHECK(nb(k, "127.0.0.1:5000") == EINPROGRESS);
  CHECK(nb(k, "127.0.0.1:5000") == 0);
  CHECK(nb(k, "127.0.0.1:5000") == EISCONN);

  const net::sock_id b = t.socket();
  REQUIRE(t.connect(b, "127.0.0.1:5000").err == 0);
  net::sock_id a = net::kNone;
  REQUIRE(net::inet_csk_accept(t.w, l, a) == 0);  // k's child
  REQUIRE(net::inet_csk_accept(t.w, l, a) == 0);  // b's child
  t.w.sk(a).linger0 = true;
  REQUIRE(net::tcp_close(t.w, a) == 0);  // RST
  REQUIRE(t.w.sk(b).state == net::tcp_state::CLOSE);
  CHECK(t.connect(b, "127.0.0.1:5000").err == EISCONN);

  // inet_shutdown() on a socket still SS_CONNECTING whose sock is CLOSE: SS_DISCONNECTING and
  // ENOTCONN; connect() then falls in __inet_stream_connect's default case: EINVAL (live:
  // case connect_errnos, refused_nb_shutdown).
  const net::sock_id z = t.socket();
  CHECK(nb(z, "127.0.0.1:5999") == EINPROGRESS);
  CHECK(net::tcp_shutdown(t.w, z) == ENOTCONN);
  CHECK(nb(z, "127.0.0.1:5999") == EINVAL);

  const net::sock_id q = t.socket();
  CHECK(t.connect(q, "127.0.0.1:5999").err == ECONNREFUSED);
  CHECK(t.connect(q, "127.0.0.1:5999").err == ECONNREFUSED);
  CHECK(t.w.sk(q).rcv_saddr == net::kAnyV4);  // sock_error → tcp_disconnect: saddr reset (live 0.0.0.0)
}

TEST_CASE("item 5: tcp_tw_reuse recycles only TIME_WAITs that got the peer's timestamps", "[tcp][issue11]") {
  // Source: tcp_twsk_unique() needs tw_ts_recent_stamp; the server echoes timestamps only with
  // its own tcp_timestamps on (tcp_conn_request/tcp_parse_options). Live oracle run:
  // scenarios/tw-reuse-needs-peer-timestamps.json agrees (tests/oracle/RESULTS.md).
  for (const int server_ts : {0, 1}) {
    World t(R"([{"name":"c","addresses":["10.0.0.1/24"],"sysctls":{"net.ipv4.ip_local_port_range":"40000 40000","net.ipv4.tcp_tw_reuse":1}},
               {"name":"s","addresses":["10.0.0.2/24"],"sysctls":{"net.ipv4.tcp_timestamps":)" +
            std::to_string(server_ts) + "}}]");
    const net::sock_id l = t.socket(1);
    REQUIRE(net::inet_bind(t.w, l, ep("10.0.0.2:80")) == 0);
    REQUIRE(net::inet_listen(t.w, l, 16) == 0);
    const net::sock_id c = t.socket(0);
    REQUIRE(t.connect(c, "10.0.0.2:80").err == 0);
    CHECK(t.w.sk(c).ts_recent == (server_ts != 0));
    net::sock_id a = net::kNone;
    REQUIRE(net::inet_csk_accept(t.w, l, a) == 0);
    REQUIRE(net::tcp_close(t.w, c) == 0);
    REQUIRE(net::tcp_close(t.w, a) == 0);
    REQUIRE(t.w.sk(c).state == net::tcp_state::TIME_WAIT);
    t.w.now = 3 * kNsPerSec;
    CHECK(t.connect(t.socket(0), "10.0.0.2:80").err == (server_ts ? 0 : EADDRNOTAVAIL));
  }
}

TEST_CASE("item 6: the FIN that turns a FIN_WAIT2 TW sock into TIME_WAIT renews tw_entry_stamp", "[tcp][issue11]") {
  // Source: 6.18 tcp_timewait_state_process(), FIN_WAIT2 substate: with saw_tstamp,
  // tw_entry_stamp = tcp_clock_ms(). tcp_tw_reuse_delay 1000 ms counts from it. Live oracle:
  // scenarios/tw-entry-stamp-renewed.json agrees.
  test::run_scenario_expecting("tcp_edges_test", R"({"machines":[{"name":"h","sysctls":{"net.ipv4.ip_local_port_range":"40000 40000"}}],"timeline":[
    {"t":"0s","host":"h","op":"bind","sock":"l","addr":"127.0.0.1:5000"},{"t":"0s","op":"listen","sock":"l"},
    {"t":"0s","host":"h","op":"connect","sock":"c","to":"127.0.0.1:5000"},
    {"t":"10ms","op":"accept","sock":"l","as":"a"},
    {"t":"100ms","op":"close","sock":"c"},
    {"t":"5s","op":"close","sock":"a"},
    {"t":"5.9s","host":"h","op":"connect","sock":"d","to":"127.0.0.1:5000","expect":{"errno":"EADDRNOTAVAIL"}},
    {"t":"6.1s","host":"h","op":"connect","sock":"e","to":"127.0.0.1:5000","expect":{"ret":0,"port":40000}}]})");
  // Without timestamps the stamp stays at the FIN_WAIT2 entry (0.1 s) — but then nothing is
  // recycled at all (item 5).
}

TEST_CASE("item 8: a socket still held keeps its explicitly bound port after its TIME_WAIT", "[tcp][issue11]") {
  // Source: tcp_time_wait() ends in tcp_done(sk): the full socket is CLOSE and, with
  // SOCK_BINDPORT_LOCK, keeps its port until close(). Live oracle:
  // scenarios/held-socket-keeps-bound-port.json agrees.
  World t(R"([{"name":"h"}])");
  listener(t, "127.0.0.1:5000");
  const net::sock_id l = listener(t, "127.0.0.1:5001");
  (void)l;
  const net::sock_id c = t.socket();
  REQUIRE(net::inet_bind(t.w, c, ep("127.0.0.1:46000")) == 0);
  REQUIRE(t.connect(c, "127.0.0.1:5000").err == 0);
  net::sock_id a = net::kNone;
  // accept from the 5000 listener (the first one made)
  for (net::sock_id i = 0; i < t.w.socks.size(); ++i)
    if (t.w.sk(i).alive && t.w.sk(i).listener != net::kNone && t.w.sk(i).dport == 46000) a = i;
  REQUIRE(a != net::kNone);
  REQUIRE(net::tcp_shutdown(t.w, c) == 0);
  REQUIRE(t.w.sk(c).state == net::tcp_state::FIN_WAIT2);
  REQUIRE(net::tcp_close(t.w, a) == 0);  // the peer's FIN
  CHECK(t.w.sk(c).state == net::tcp_state::CLOSE);  // the application's socket
  CHECK(t.w.sk(c).num == 46000);                    // still bound
  net::sock_id tw = net::kNone;
  for (net::sock_id i = 0; i < t.w.socks.size(); ++i)
    if (t.w.sk(i).alive && t.w.sk(i).state == net::tcp_state::TIME_WAIT) tw = i;
  REQUIRE(tw != net::kNone);
  CHECK(tw != c);
  CHECK(t.w.sk(tw).num == 46000);
  net::inet_twsk_kill(t.w, tw);  // the TIME_WAIT is over
  const net::sock_id d = t.socket();
  CHECK(net::inet_bind(t.w, d, ep("127.0.0.1:46000")) == EADDRINUSE);
  REQUIRE(net::tcp_close(t.w, c) == 0);
  CHECK(net::inet_bind(t.w, d, ep("127.0.0.1:46000")) == 0);
}

TEST_CASE("item 9: tcp_fin_time() = max(tcp_fin_timeout, 3.5 RTO) and the > 60 s keepalive split", "[tcp][issue11]") {
  // Source: include/net/tcp.h tcp_fin_time(); tcp_rcv_state_process (FIN_WAIT1) and
  // tcp_keepalive_timer(): tmo > 60 s → keepalive tmo-60 s, then a FIN_WAIT2 TW sock for
  // tmo-60 s. Live (cases fin_timeout_90 / _61 / _0): port free at 61.2 s, 2.2 s, 0.84 s.
  World t(R"([{"name":"h","sysctls":{"net.ipv4.tcp_fin_timeout":0}}])");
  const net::sock_id c = t.socket();
  listener(t, "127.0.0.1:5000");
  REQUIRE(t.connect(c, "127.0.0.1:5000").err == 0);
  CHECK(t.w.sk(c).rto_ms == 200);       // RTT ~0: m + max(2m, 200 ms)
  CHECK(net::tcp_fin_time(t.w, c) == 175);  // (50 << 2) - (50 >> 1) jiffies at HZ=250 = 700 ms
  t.w.nets[0].sys.tcp_fin_timeout = 90;
  CHECK(net::tcp_fin_time(t.w, c) == 90 * 250);
  test::run_scenario_expecting("tcp_edges_test", R"({"machines":[
      {"name":"a","sysctls":{"net.ipv4.ip_local_port_range":"40000 40000","net.ipv4.tcp_fin_timeout":90}},
      {"name":"b","sysctls":{"net.ipv4.ip_local_port_range":"40000 40000","net.ipv4.tcp_fin_timeout":0}}],"timeline":[
    {"t":"0s","host":"a","op":"bind","sock":"la","addr":"127.0.0.1:5000"},{"t":"0s","op":"listen","sock":"la"},
    {"t":"0s","host":"a","op":"connect","sock":"ca","to":"127.0.0.1:5000"},
    {"t":"0s","host":"b","op":"bind","sock":"lb","addr":"127.0.0.1:5000"},{"t":"0s","op":"listen","sock":"lb"},
    {"t":"0s","host":"b","op":"connect","sock":"cb","to":"127.0.0.1:5000"},
    {"t":"10ms","op":"close","sock":"ca"},{"t":"10ms","op":"close","sock":"cb"},
    {"t":"500ms","host":"b","op":"bind","sock":"x1","addr":"127.0.0.1:40000","expect":{"errno":"EADDRINUSE"}},
    {"t":"1s","host":"b","op":"bind","sock":"x2","addr":"127.0.0.1:40000","expect":{"ret":0}},
    {"t":"29s","host":"a","op":"bind","sock":"y1","addr":"127.0.0.1:40000","expect":{"errno":"EADDRINUSE"}},
    {"t":"59s","host":"a","op":"bind","sock":"y2","addr":"127.0.0.1:40000","expect":{"errno":"EADDRINUSE"}},
    {"t":"63s","host":"a","op":"bind","sock":"y3","addr":"127.0.0.1:40000","expect":{"ret":0}}]})");
}

TEST_CASE("item 11: TIME_WAIT meets a SYN without listener, and RSTs", "[tcp][issue11]") {
  // Source: 6.18 tcp_v4_rcv(): TCP_TW_SYN without a listener falls through to
  // tcp_v4_timewait_ack (the TW stays); tcp_timewait_state_process(): FIN_WAIT2 substate — RST
  // kills, SYN → TCP_TW_RST (RST sent, TW killed); TIME_WAIT substate — an in-window RST kills
  // (tcp_rfc1337 0). Live (case tw_syn_no_listener): ECONNREFUSED after 28–75 ms, TW gone.
  World t(R"([{"name":"h"}])");
  const net::sock_id l = listener(t, "127.0.0.1:8080");
  const net::sock_id c = t.socket();
  t.w.sk(c).reuse = net::SK_CAN_REUSE;
  REQUIRE(net::inet_bind(t.w, c, ep("127.0.0.1:41000")) == 0);
  REQUIRE(t.connect(c, "127.0.0.1:8080").err == 0);
  net::sock_id a = net::kNone;
  REQUIRE(net::inet_csk_accept(t.w, l, a) == 0);
  REQUIRE(net::tcp_close(t.w, a) == 0);  // server first: a → FIN_WAIT2 TW sock
  REQUIRE(t.w.sk(a).state == net::tcp_state::TIME_WAIT);
  REQUIRE(t.w.sk(a).tw_substate == net::tcp_state::FIN_WAIT2);
  // A SYN on the same 4-tuple into the FIN_WAIT2 TW: RST back, the TW goes.
  net::segment syn;
  syn.saddr = syn.daddr = ep("127.0.0.1:1").addr;
  syn.sport = 41000;
  syn.dport = 8080;
  syn.flags = net::TCPHDR_SYN;
  net::tcp_v4_rcv(t.w, 0, syn);
  CHECK(!t.w.sk(a).alive);
  // c is CLOSE_WAIT; a new pair: the server's FIN turned into TIME_WAIT, listener closed.
  REQUIRE(net::tcp_close(t.w, c) == 0);
  const net::sock_id c2 = t.socket();
  t.w.sk(c2).reuse = net::SK_CAN_REUSE;
  REQUIRE(net::inet_bind(t.w, c2, ep("127.0.0.1:41001")) == 0);
  REQUIRE(t.connect(c2, "127.0.0.1:8080").err == 0);
  net::sock_id a2 = net::kNone;
  REQUIRE(net::inet_csk_accept(t.w, l, a2) == 0);
  REQUIRE(net::tcp_close(t.w, a2) == 0);
  REQUIRE(net::tcp_close(t.w, c2) == 0);
  REQUIRE(t.w.sk(a2).state == net::tcp_state::TIME_WAIT);
  REQUIRE(t.w.sk(a2).tw_substate == net::tcp_state::TIME_WAIT);
  REQUIRE(net::tcp_close(t.w, l) == 0);
  syn.sport = 41001;
  struct Capture final : net::wire {
    std::vector<uint8_t> flags;
    void xmit(const net::segment& s) override { flags.push_back(s.flags); }
  } cap;
  t.w.net_wire = &cap;  // the TW's answer is not delivered (with no socket there, its RST would kill the TW)
  net::tcp_v4_rcv(t.w, 0, syn);  // no listener: the TW answers with an ACK and stays
  CHECK(t.w.sk(a2).alive);
  CHECK(t.w.sk(a2).state == net::tcp_state::TIME_WAIT);
  CHECK(cap.flags == std::vector<uint8_t>{net::TCPHDR_ACK});
  net::segment rst = syn;
  rst.flags = net::TCPHDR_RST;
  rst.seq = t.w.sk(a2).rcv_nxt;  // in window
  net::tcp_v4_rcv(t.w, 0, rst);
  CHECK(!t.w.sk(a2).alive);
  // The whole exchange with a real client: ECONNREFUSED a few ms later, TW gone.
  test::run_scenario_expecting("tcp_edges_test", R"({"machines":[{"name":"h"}],"timeline":[
    {"t":"0s","host":"h","op":"bind","sock":"l","addr":"127.0.0.1:8080"},{"t":"0s","op":"listen","sock":"l"},
    {"t":"0s","host":"h","op":"bind","sock":"c","addr":"127.0.0.1:41000","opts":{"SO_REUSEADDR":1}},
    {"t":"0s","op":"connect","sock":"c","to":"127.0.0.1:8080"},{"t":"1ms","op":"accept","sock":"l","as":"a"},
    {"t":"2ms","op":"close","sock":"a"},{"t":"3ms","op":"close","sock":"c"},{"t":"4ms","op":"close","sock":"l"},
    {"t":"10ms","host":"h","op":"bind","sock":"c2","addr":"127.0.0.1:41000","opts":{"SO_REUSEADDR":1}},
    {"t":"10ms","op":"connect","sock":"c2","to":"127.0.0.1:8080","expect":{"errno":"ECONNREFUSED","at":["15ms","40ms"]}},
    {"t":"100ms","host":"h","op":"bind","sock":"q","addr":"127.0.0.1:8080","expect":{"ret":0}}]})");
}

TEST_CASE("item 12: shutdown(SHUT_WR) on LISTEN is a no-op, on SYN_SENT an abort that frees the port", "[tcp][issue11]") {
  // Live (case shutdown): listen_shut_wr OK and still accepting; syn_sent_shut_wr OK, port
  // gone from /proc, SO_ERROR ECONNRESET, bind(0) gets 40000; unconnected ENOTCONN.
  // Source: net/ipv4/af_inet.c inet_shutdown(), net/ipv4/tcp.c tcp_disconnect().
  World t(R"([{"name":"h","addresses":["10.0.0.1/24"],"sysctls":{"net.ipv4.ip_local_port_range":"40000 40000"}}])");
  const net::sock_id l = listener(t, "127.0.0.1:5000");
  CHECK(net::tcp_shutdown(t.w, l) == 0);
  CHECK(t.w.sk(l).state == net::tcp_state::LISTEN);
  const net::sock_id q = t.socket();
  REQUIRE(net::inet_stream_connect(t.w, q, ep("10.0.0.99:80"), true).err == EINPROGRESS);
  REQUIRE(t.w.sk(q).state == net::tcp_state::SYN_SENT);
  CHECK(net::tcp_shutdown(t.w, q) == 0);
  CHECK(t.w.sk(q).state == net::tcp_state::CLOSE);
  CHECK(t.w.sk(q).num == 0);
  CHECK(t.w.sk(q).sk_err == ECONNRESET);
  CHECK(t.w.sk(q).ss == net::socket_state::SS_UNCONNECTED);
  const net::sock_id b = t.socket();
  CHECK(net::inet_bind(t.w, b, ep("0.0.0.0:0")) == 0);
  CHECK(t.port(b) == 40000);
  CHECK(net::tcp_shutdown(t.w, t.socket()) == ENOTCONN);
}

TEST_CASE("item 14: the suspicions, checked", "[tcp][issue11]") {
  // (a) SO_LINGER {1,0} close in CLOSING/LAST_ACK: tcp_disconnect() sends RST there only with
  //     unsent data (tp->snd_nxt != tp->write_seq) — true in the source; no data is modelled,
  //     so no RST. (b) tcp_rto_max_ms is per socket: live (case item14) a socket made before
  //     the sysctl write keeps 120000, one made after gets 5000 (tcp_init_sock). (c) A listener's
  //     TCP_SYNCNT overrides tcp_synack_retries (reqsk_timer_handler: icsk_syn_retries ?:
  //     sysctl) — source. (d) IPv4 bind to 224.0.0.1, 239.1.2.3, 255.255.255.255,
  //     127.255.255.255: OK, and listen OK (live). (e) IPV6_V6ONLY after bind: EINVAL; on
  //     AF_INET: ENOPROTOOPT (live).
  World t(R"([{"name":"h"}])");
  const net::sock_id s1 = t.socket();
  t.w.nets[0].sys.tcp_rto_max_ms = 5000;
  const net::sock_id s2 = t.socket();
  CHECK(t.w.sk(s1).rto_max_ms == 120000);
  CHECK(t.w.sk(s2).rto_max_ms == 5000);
  for (const char* a : {"224.0.0.1:5000", "239.1.2.3:5000", "255.255.255.255:5000", "127.255.255.255:5000"}) {
    const net::sock_id s = t.socket();
    INFO(a);
    CHECK(net::inet_bind(t.w, s, ep(a)) == 0);
    CHECK(net::inet_listen(t.w, s, 1) == 0);
  }
  CHECK(net::inet_bind(t.w, t.socket(), ep("192.0.2.1:5000")) == EADDRNOTAVAIL);
  test::run_scenario_expecting("tcp_edges_test", R"({"machines":[{"name":"h"}],"timeline":[
    {"t":"0s","host":"h","op":"bind","sock":"v","addr":"[::1]:0"},
    {"t":"1ms","op":"setsockopt","sock":"v","opt":"IPV6_V6ONLY","value":1,"expect":{"errno":"EINVAL"}},
    {"t":"2ms","host":"h","op":"socket","sock":"x"},
    {"t":"3ms","op":"setsockopt","sock":"x","opt":"IPV6_V6ONLY","value":1,"expect":{"errno":"ENOPROTOOPT"}}]})");
  // (a): an orphan in LAST_ACK with SO_LINGER 0 closes without RST.
  listener(t, "127.0.0.1:5000");
  const net::sock_id c = t.socket();
  REQUIRE(t.connect(c, "127.0.0.1:5000").err == 0);
  net::sock_id a = net::kNone;
  for (net::sock_id i = 0; i < t.w.socks.size(); ++i)
    if (t.w.sk(i).alive && t.w.sk(i).listener != net::kNone && t.w.sk(i).state == net::tcp_state::ESTABLISHED) a = i;
  REQUIRE(a != net::kNone);
  t.w.sk(c).state = net::tcp_state::LAST_ACK;  // as if the peer's ACK of our FIN were still under way
  t.w.sk(c).linger0 = true;
  struct Count final : net::wire {
    int rst = 0;
    void xmit(const net::segment& s) override { rst += (s.flags & net::TCPHDR_RST) != 0; }
  } count;
  t.w.net_wire = &count;
  REQUIRE(net::tcp_close(t.w, c) == 0);
  CHECK(count.rst == 0);
  t.w.sk(a).linger0 = true;  // ESTABLISHED: tcp_need_reset() → RST
  REQUIRE(net::tcp_close(t.w, a) == 0);
  CHECK(count.rst == 1);
}
