// Workload generators and sweeps. Expected values follow from kernel rules: a client-closed
// connection holds its port in TIME_WAIT for TCP_TIMEWAIT_LEN = 60 s (tcp_time_wait), and a
// default range offers remaining = 28 232 ports (__inet_hash_connect), so the range lasts
// 28 232 connects when they come faster than 28 232 / 60 s ≈ 470 per second.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "portsim/net/secure_seq.h"
#include "portsim/net/tcp.h"
#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"
#include "portsim/scenario/sweep.h"

using namespace portsim;
using namespace portsim::scenario;

namespace {
std::string proxy(double rate, const char* extra = "") {
  return std::string(R"({"seed":1,"machines":[{"name":"p","addresses":["10.0.0.1/24"],"sysctls":{}}],
    "external":["10.0.0.2:8080"],
    "workloads":[{"name":"req","host":"p","stop":"90s","rate":)") + std::to_string(rate) +
         R"(,"to":["10.0.0.2:8080"],"hold":"50ms")" + extra + "}],\"timeline\":[]}";
}
RunReport run_text(const std::string& text) {
  auto lr = load_scenario_text(text, "t.json");
  if (lr.error) FAIL(lr.error->message);
  Runner r(*lr.scenario, {});
  return r.run();
}
}  // namespace

TEST_CASE("workload: below 28232/60 s per second the default range never runs out", "[workload]") {
  const RunReport rep = run_text(proxy(400));
  CHECK(rep.connects == 36000);
  CHECK(rep.connects_ok == 36000);
  CHECK_FALSE(rep.first_eaddrnotavail);
  CHECK(rep.st.time_wait_peak <= 28232);
}

TEST_CASE("workload: above it, EADDRNOTAVAIL starts when the 28233rd port is needed", "[workload]") {
  // 600/s (gap 1 666 667 ns): connect k = 28232 finds every port in TIME_WAIT (none is 60 s old).
  const RunReport rep = run_text(proxy(600));
  REQUIRE(rep.first_eaddrnotavail);
  CHECK(*rep.first_eaddrnotavail == 28232ull * 1666667ull);
  CHECK(rep.connect_errors.at("EADDRNOTAVAIL") > 0);
  CHECK(rep.st.time_wait_peak == 28232);
}

TEST_CASE("workload: a pool of kept-alive connections carries the same requests without failing", "[workload][pool]") {
  const RunReport rep = run_text(proxy(600, R"(,"pool":4)"));
  CHECK(rep.connects == 4);
  CHECK(rep.connects_ok == 4);
  CHECK(rep.requests > 50000);
  CHECK(rep.requests_failed == 0);
}

TEST_CASE("workload: tcp_tw_reuse=1 recycles TIME_WAIT toward a non-loopback peer; 2 does not", "[workload][tcp_twsk_unique]") {
  // tcp_twsk_unique(): reuse 2 is loopback-only, so toward 10.0.0.2 it acts as 0.
  auto with = [](int reuse) {
    std::string t = proxy(600);
    t.replace(t.find("\"sysctls\":{}"), 12, "\"sysctls\":{\"net.ipv4.tcp_tw_reuse\":" + std::to_string(reuse) + "}");
    return run_text(t);
  };
  const RunReport r1 = with(1), r2 = with(2);
  CHECK(r1.connect_errors.empty());
  CHECK(r1.st.tw_recycled > 0);
  CHECK(r2.st.tw_recycled == 0);
  CHECK(r2.first_eaddrnotavail);
}

TEST_CASE("sweep: rows are deterministic and in (variant, seed) order", "[sweep]") {
  const std::string path = "sweep_test_scenario.json";
  { std::ofstream(path) << proxy(500); }
  std::string err;
  SweepSpec spec;
  spec.file = path;
  spec.vary.push_back(*parse_vary("/workloads/0/rate=300,600", err));
  spec.seeds = 2;
  spec.jobs = 2;
  auto a = run_sweep(spec, err);
  auto b = run_sweep(spec, err);
  std::remove(path.c_str());
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(a->size() == 4);
  CHECK((*a)[0].values[0] == "300");
  CHECK((*a)[3].values[0] == "600");
  CHECK((*a)[1].seed == 2);
  for (size_t i = 0; i < 4; ++i) {
    CHECK((*a)[i].rep.connects_ok == (*b)[i].rep.connects_ok);
    CHECK((*a)[i].rep.examined == (*b)[i].rep.examined);
  }
  CHECK((*a)[0].rep.connect_errors.empty());
  CHECK_FALSE((*a)[2].rep.connect_errors.empty());
}

TEST_CASE("sweep: --vary syntax errors are one line", "[sweep]") {
  std::string err;
  CHECK_FALSE(parse_vary("workloads/0/rate=1", err));
  CHECK(err == "--vary 'workloads/0/rate=1': expected POINTER=v1,v2,… with a JSON pointer such as /workloads/0/rate");
  CHECK_FALSE(parse_vary("/a=1,,2", err));
}

TEST_CASE("workload: N addresses x M ports; one client holds 4 x 28232 connections", "[workload]") {
  // __inet_check_established(): only the 4-tuple must be unique, so every destination can use
  // all 28 232 ports of the default range: 2 addresses × 2 ports = 4 destinations hold
  // 112 928 connections (more than 65 535), and each destination's 28 233rd connect fails.
  const RunReport rep = run_text(R"({"seed":3,"machines":[{"name":"c","addresses":["10.0.0.1/16"]}],
    "external":["10.0.1.1:*","10.0.1.2:*"],
    "workloads":[{"name":"w","host":"c","stop":"112932us","rate":1000000,
                  "to":{"addrs":["10.0.1.1","10.0.1.2"],"ports":[80,8080]},"hold":"1h"}],"timeline":[]})");
  CHECK(rep.connects == 112932);
  CHECK(rep.connects_ok == 112928);
  CHECK(rep.connect_errors.at("EADDRNOTAVAIL") == 4);
  CHECK(rep.st.established_peak == 112928);
}

namespace {
// 200 generated connections over a 50 ms link through a listener with backlog 16
// (scenarios/workload-delayed-link.json without its timeline checks).
std::string delayed(const char* extra_timeline = "") {
  return std::string(R"({"seed":1,"machines":[{"name":"client","addresses":["10.0.0.1/24"]},
    {"name":"server","addresses":["10.0.0.2/24"],"sysctls":{"net.core.somaxconn":"16"}}],
    "links":[{"between":["client","server"],"delay":"50ms"}],
    "workloads":[{"name":"req","host":"client","stop":"2s","rate":100,"to":["10.0.0.2:443"],"hold":"10ms"}],
    "timeline":[{"t":"0s","host":"server","op":"bind","sock":"l","addr":"10.0.0.2:443"},
                {"t":"0s","op":"listen","sock":"l","backlog":16})") + extra_timeline + "]}";
}
std::vector<std::string> trace_lines(const std::string& text, uint64_t sample) {
  auto lr = load_scenario_text(text, "t.json");
  if (lr.error) FAIL(lr.error->message);
  const std::string path = "workload_test_trace.jsonl";
  RunOptions o;
  o.trace_path = path;
  o.trace_sample = sample;
  o.trace_calls_only = true;
  Runner r(*lr.scenario, o);
  REQUIRE(r.run().runtime_error.empty());
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (line.find("\"workload\"") != std::string::npos) out.push_back(line);
  std::remove(path.c_str());
  return out;
}
}  // namespace

TEST_CASE("workload over a delayed link: server children are accepted once established, the queue never fills",
          "[workload][accept]") {
  // Source: the child joins the accept queue only when the client's ACK arrives
  // (tcp_check_req → inet_csk_complete_hashdance → inet_csk_reqsk_queue_add), one ACK after the
  // client's connect() returned; tcp_conn_request drops SYNs while sk_acceptq_is_full()
  // (ack_backlog > backlog 16). Every generated connection must get through: 200 of 200, and
  // a non-generated connect afterwards still finds room (accept at 3.2 s gets it).
  auto lr = load_scenario_text(delayed(R"(,{"t":"3s","host":"client","op":"connect","sock":"late","to":"10.0.0.2:443",
      "expect":{"ret":0,"at":"3.1s"}},{"t":"3.2s","op":"accept","sock":"l","as":"a","expect":{"ret":0}})"), "t.json");
  if (lr.error) FAIL(lr.error->message);
  Runner r(*lr.scenario, {});
  const RunReport rep = r.run();
  CHECK(rep.connects == 201);
  CHECK(rep.connects_ok == 201);
  CHECK(rep.expectation_failures == 0);
}

TEST_CASE("workload over a delayed link: each connect is traced as its own arrival, with its autobind", "[workload][trace]") {
  // Arrival k is "req#k" with "rep":k whenever its handshake ends; its record carries the
  // __inet_hash_connect fields of the connect() that started it, and --trace-sample N keeps
  // arrivals k ≡ 0 (mod N).
  const auto all = trace_lines(delayed(), 1);
  REQUIRE(all.size() == 200);
  for (size_t k = 0; k < all.size(); ++k) {
    INFO(all[k]);
    CHECK(all[k].find("\"rep\":" + std::to_string(k) + ",") != std::string::npos);
    CHECK(all[k].find("\"sock\":\"req#" + std::to_string(k) + "\"") != std::string::npos);
    CHECK(all[k].find("\"port_offset\":") != std::string::npos);
    CHECK(all[k].find("\"t_start\":" + std::to_string(k * 10000000)) != std::string::npos);
  }
  const auto sampled = trace_lines(delayed(), 4);
  REQUIRE(sampled.size() == 50);
  CHECK(sampled[1].find("\"rep\":4,") != std::string::npos);
}

namespace {
// Client-closed connections recycled through TIME_WAIT (tcp_tw_reuse, a 100-port range), resets,
// a refused and a timed-out connect whose sockets connect again, and connections held to the
// end — all toward external endpoints on instant paths.
const char* kLazyIsnScenario = R"({"name": "lazy-isn", "seed": 5,
  "machines": [{"name": "client", "addresses": ["10.0.0.1/24"],
    "sysctls": {"net.ipv4.ip_local_port_range": "40000 40099", "net.ipv4.tcp_tw_reuse": "1",
                "net.ipv4.tcp_syn_retries": "1"}}],
  "external": ["10.0.9.1:80", "10.0.9.2:*", {"endpoint": "10.0.9.3:25", "answer": "refuse"},
               {"endpoint": "10.0.9.4:25", "answer": "silent"}],
  "workloads": [
    {"name": "fin", "host": "client", "start": "0s", "stop": "3s", "rate": 150, "arrival": "poisson",
     "to": ["10.0.9.1:80"], "hold": {"exp": "20ms"}, "close": "client"},
    {"name": "rst", "host": "client", "start": "0s", "stop": "3s", "rate": 100, "arrival": "poisson",
     "to": ["10.0.9.2:81"], "hold": {"exp": "50ms"}, "close": "rst"}],
  "timeline": [
    {"t": "0s", "host": "client", "op": "connect", "sock": "late", "to": "10.0.9.4:25", "expect": {"errno": "ETIMEDOUT"}},
    {"t": "1s", "host": "client", "op": "connect", "sock": "held", "to": "10.0.9.2:82", "expect": {"ret": 0}},
    {"t": "1s", "host": "client", "op": "connect", "sock": "again", "to": "10.0.9.3:25", "expect": {"errno": "ECONNREFUSED"}},
    {"t": "2s", "host": "client", "op": "connect", "sock": "again", "to": "10.0.9.2:83", "expect": {"ret": 0}},
    {"t": "3.5s", "host": "client", "op": "connect", "sock": "late", "to": "10.0.9.2:84", "expect": {"ret": 0}}]})";
}  // namespace

TEST_CASE("workload: ISNs toward unwatched external endpoints are the kernel's, however late portsim computes them",
          "[workload][secure_seq]") {
  // Source: net/core/secure_seq.c secure_tcp_seq() (tcp_v4_connect's write_seq, and an external
  // Linux server's SYN-ACK), net/ipv4/tcp_ipv4.c tcp_twsk_unique() (tw_snd_nxt + 65535 + 2);
  // tcp_test.cc checks those numbers on a watched wire. Unwatched, portsim adds the hash only
  // when a number is needed (sock::snd_lazy): every socket must end with the same numbers.
  auto lr = load_scenario_text(kLazyIsnScenario, "t.json");
  if (lr.error) FAIL(lr.error->message);
  RunOptions unwatched, watched;
  unwatched.stop_at = watched.stop_at = 4 * kNsPerSec;  // the TIME_WAITs are still there
  watched.pcap_path = "/dev/null";  // a watched wire: every ISN whole from the start
  Runner lazy(*lr.scenario, unwatched), eager(*lr.scenario, watched);
  const RunReport a = lazy.run(), b = eager.run();
  REQUIRE(a.expectation_failures == 0);
  CHECK(a.st.tw_recycled > 0);
  CHECK(a.st.tw_recycled == b.st.tw_recycled);
  const net::world& lw = lazy.world();
  const net::world& ew = eager.world();
  REQUIRE(lw.socks.size() == ew.socks.size());
  size_t still_lazy = 0, alive = 0;
  for (net::sock_id id = 0; id < lw.socks.size(); ++id) {
    net::sock s = lw.sk(id);
    const net::sock& e = ew.sk(id);
    REQUIRE(s.alive == e.alive);
    if (!s.alive) continue;
    ++alive;
    still_lazy += s.snd_lazy || s.rcv_lazy;
    CHECK_FALSE((e.snd_lazy || e.rcv_lazy));
    net::tcp_seq_resolve(lw, s);
    INFO("sock " << id << " state " << net::tcp_state_name(s.state));
    CHECK(s.state == e.state);
    CHECK(s.snd_nxt == e.snd_nxt);
    CHECK(s.rcv_nxt == e.rcv_nxt);
  }
  CHECK(alive > 50);
  CHECK(still_lazy > 0);  // the held connections: neither hash was ever needed
  // The held connection (made at 1 s) against secure_tcp_seq itself: the SYN and the SYN-ACK
  // each took one.
  for (net::sock_id id = 0; id < lw.socks.size(); ++id) {
    net::sock s = lw.sk(id);
    if (!s.alive || s.dport != 82) continue;
    net::tcp_seq_resolve(lw, s);
    const net::machine& m = lw.machines[0];
    const Nanos at = kNsPerSec;
    CHECK(s.snd_nxt == net::secure_tcp_seq(0x0a000001, 0x0a000902, s.num, 82, m.realtime_ns(at), m.net_secret) + 1);
    CHECK(s.rcv_nxt ==
          net::secure_tcp_seq(0x0a000902, 0x0a000001, 82, s.num, lw.external_realtime0 + uint64_t(at), lw.external_secret) + 1);
  }
}
