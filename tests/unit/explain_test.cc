// --explain: the filter syntax, the block filter, and the model's reasons at the edges the
// goldens in tests/explain/ do not reach. Expected reasons: tcp_twsk_unique() in
// net/ipv4/tcp_ipv4.c (6.18) — reuse needs time_after32(now, tw_entry_stamp + delay), strictly
// more than the delay; inet_bind_conflict() in net/ipv4/inet_connection_sock.c.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "portsim/net/observer.h"
#include "portsim/trace/explain.h"
#include "world_fixture.h"

using namespace portsim;
using portsim::test::World;

namespace {

// Collects the model's explain lines ("function: what").
struct Capture final : net::observer {
  std::vector<std::string> lines;
  void bind_bucket(const net::world&, net::table_op, uint32_t) override {}
  void bind2_bucket(const net::world&, net::table_op, uint32_t) override {}
  void ehash(const net::world&, net::table_op, net::sock_id) override {}
  void state_change(const net::world&, net::sock_id, net::tcp_state, net::tcp_state) override {}
  bool explaining() const override { return true; }
  void explain(std::string_view fn, std::string_view what) override { lines.push_back(std::string(fn) + ": " + std::string(what)); }
  bool has(const std::string& s) const {
    for (const auto& l : lines)
      if (l == s) return true;
    return false;
  }
};

std::string read_all(std::FILE* f) {
  std::rewind(f);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  return out;
}

}  // namespace

TEST_CASE("explain: --explain-filter syntax", "[explain]") {
  std::string err;
  auto f = trace::parse_explain_filter("sock=c7,errno=EADDRNOTAVAIL,from=10s,to=12.5s", err);
  REQUIRE(f);
  CHECK(f->sock == "c7");
  CHECK(f->err == EADDRNOTAVAIL);
  CHECK(f->from == 10 * kNsPerSec);
  CHECK(f->to == 12500 * kNsPerMs);
  CHECK(trace::parse_explain_filter("errno=OK", err)->err == 0);
  CHECK_FALSE(trace::parse_explain_filter("errno=ENOPE", err));
  CHECK(err == "--explain-filter: errno: expected an errno name like EADDRNOTAVAIL (or OK), got 'ENOPE'");
  CHECK_FALSE(trace::parse_explain_filter("from=2s,to=1s", err));
  CHECK(err == "--explain-filter: from is after to");
  CHECK_FALSE(trace::parse_explain_filter("sock", err));
}

TEST_CASE("explain: blocks are kept or dropped whole; nested blocks stand alone", "[explain]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  {
    trace::ExplainFilter flt;
    flt.err = EADDRNOTAVAIL;
    trace::Explainer e(f, flt);
    e.begin(kNsPerMs, "connect a 10.0.0.2:80", "a");
    e.step("__inet_hash_connect", "none free");
    e.end(kNsPerMs, "connect a = -1 EADDRNOTAVAIL", EADDRNOTAVAIL);
    e.begin(2 * kNsPerMs, "connect b 10.0.0.2:80", "b");
    e.step("__inet_hash_connect", "port 40000: no bind bucket: free");
    e.begin(2 * kNsPerMs, "connect c = -1 EADDRNOTAVAIL", "c");  // a completion inside b's block
    e.end(2 * kNsPerMs, {}, EADDRNOTAVAIL);
    e.end(2 * kNsPerMs, "connect b = 0 (local port 40000)", 0);
    e.step("tcp_set_state", "outside any block: dropped under a filter");
  }
  CHECK(read_all(f) ==
        "1ms connect a 10.0.0.2:80\n"
        "  __inet_hash_connect          none free\n"
        "1ms connect a = -1 EADDRNOTAVAIL\n"
        "2ms connect c = -1 EADDRNOTAVAIL\n");
  std::fclose(f);
}

TEST_CASE("explain: a TIME_WAIT exactly tcp_tw_reuse_delay old is not recycled, one ms later it is", "[explain][tcp_twsk_unique]") {
  World t(R"([{"name":"h","sysctls":{"net.ipv4.ip_local_port_range":"40000 40000","net.ipv4.tcp_tw_reuse":1}}])");
  Capture cap;
  const net::sock_id l = t.socket();
  REQUIRE(net::inet_bind(t.w, l, *net::parse_endpoint("127.0.0.1:5000")) == 0);
  REQUIRE(net::inet_listen(t.w, l, 16) == 0);
  const net::sock_id c = t.socket();
  REQUIRE(t.connect(c, "127.0.0.1:5000").err == 0);
  net::sock_id a = net::kNone;
  REQUIRE(net::inet_csk_accept(t.w, l, a) == 0);
  t.w.now = kNsPerSec;
  REQUIRE(net::tcp_close(t.w, c) == 0);
  REQUIRE(net::tcp_close(t.w, a) == 0);
  t.w.obs = &cap;
  t.w.now = 2 * kNsPerSec;
  CHECK(t.connect(t.socket(), "127.0.0.1:5000").err == EADDRNOTAVAIL);
  CHECK(cap.has("tcp_twsk_unique: sk" + std::to_string(c) +
                " not recycled: 1000 ms in TIME_WAIT: exactly tcp_tw_reuse_delay, and reuse needs strictly more (time_after32)"));
  cap.lines.clear();
  t.w.now = 2 * kNsPerSec + kNsPerMs;
  CHECK(t.connect(t.socket(), "127.0.0.1:5000").err == 0);
  CHECK(cap.has("tcp_twsk_unique: sk" + std::to_string(c) +
                " recycled: 1001 ms in TIME_WAIT > tcp_tw_reuse_delay 1000 ms, timestamps on, tcp_tw_reuse = 1"));
  t.w.obs = nullptr;
}

TEST_CASE("explain: explicit bind owners by inet_bind_conflict's rule (SO_REUSEPORT uids, TIME_WAIT)", "[explain][bind]") {
  World t(R"([{"name":"h"}])");
  Capture cap;
  t.w.obs = &cap;
  // Live bind matrix (tests/live/README.md finding 1 and 3): P+P under different uids conflict.
  const net::sock_id o = t.socket(0, {1000, false});
  t.w.sk(o).reuseport = true;
  REQUIRE(net::inet_bind(t.w, o, *net::parse_endpoint("127.0.0.1:45000")) == 0);
  CHECK(cap.has("inet_csk_get_port: port 45000: no bind bucket: free"));
  const net::sock_id s = t.socket(0, {0, true});
  t.w.sk(s).reuseport = true;
  CHECK(net::inet_bind(t.w, s, *net::parse_endpoint("0.0.0.0:45000")) == EADDRINUSE);
  CHECK(cap.has("inet_csk_bind_conflict: port 45000: owner sk" + std::to_string(o) +
                " at 127.0.0.1:45000 in CLOSE: conflict: neither has SO_REUSEADDR; both SO_REUSEPORT, but uid 0 is not the owner's 1000"));
  const net::sock_id s2 = t.socket(0, {1000, false});
  t.w.sk(s2).reuseport = true;
  CHECK(net::inet_bind(t.w, s2, *net::parse_endpoint("127.0.0.1:45000")) == 0);
  CHECK(cap.has("inet_csk_bind_conflict: port 45000: owner sk" + std::to_string(o) +
                " at 127.0.0.1:45000 in CLOSE: shares: both SO_REUSEPORT, same uid 1000"));
  t.w.obs = nullptr;
}
