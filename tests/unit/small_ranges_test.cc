// Issue 11 item 19: small and odd-sized ranges (2..13 ports) as distributions. For bind(0),
// bind(0) with SO_REUSEADDR, listen() autobind and connect(), the live kernel's histogram of
// outcomes — how many of n+1 calls got a port, which ports stayed free — over 200 trials, each
// in a fresh netns (tests/live/small_ranges.json, tools/probes/small_ranges_probe.py; fixture
// small_ranges_live.inc by tools/probes/small_ranges_hist.py), against the model's over 400
// trials: Pearson chi-square homogeneity, cells with an expected count under 5 pooled, p > 0.001.
// Source of the shapes: inet_csk_find_open_port() and __inet_hash_connect() round `remaining`
// down to even and wrap once by subtracting it, so in an odd range one end port is reachable
// only from some offsets (bind: 40000 only from offset 1; connect: 40000 only from offset 0),
// and a 3-port range never hands out its last port.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "portsim/net/af_inet.h"
#include "portsim/net/inet_connection_sock.h"
#include "portsim/net/tcp.h"
#include "world_fixture.h"

namespace {

using namespace portsim;
using portsim::test::World;

struct LiveRow {
  const char* kind;
  int n;
  std::vector<std::pair<std::string, int>> hist;
};

const std::vector<LiveRow> kLive = {
#include "small_ranges_live.inc"
};

constexpr int kLow = 40000;

// Regularized upper incomplete gamma Q(a, x) (series below a+1, continued fraction above).
double gamma_q(double a, double x) {
  if (x <= 0) return 1.0;
  const double lg = std::lgamma(a);
  if (x < a + 1) {
    double ap = a, sum = 1 / a, del = sum;
    for (int i = 0; i < 1000 && std::fabs(del) > std::fabs(sum) * 1e-15; ++i) sum += del *= x / ++ap;
    return 1 - sum * std::exp(-x + a * std::log(x) - lg);
  }
  double b = x + 1 - a, c = 1e300, d = 1 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (std::fabs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-15) break;
  }
  return std::exp(-x + a * std::log(x) - lg) * h;
}

// Chi-square homogeneity of two histograms (the same pooling as tools/oracle/stats.py).
// Returns the p-value, or 1 when fewer than two cells remain.
double chi2_p(const std::map<std::string, int>& a, const std::map<std::string, int>& b) {
  std::map<std::string, std::pair<double, double>> all;
  double na = 0, nb = 0;
  for (const auto& [k, v] : a) { all[k].first += v; na += v; }
  for (const auto& [k, v] : b) { all[k].second += v; nb += v; }
  const double n = na + nb;
  std::vector<std::pair<double, double>> cells;
  std::pair<double, double> other{0, 0};
  for (const auto& [k, v] : all) {
    if (std::min(na, nb) * (v.first + v.second) / n >= 5) cells.push_back(v);
    else { other.first += v.first; other.second += v.second; }
  }
  if (other.first + other.second > 0) {
    if (std::min(na, nb) * (other.first + other.second) / n >= 5 || cells.empty()) cells.push_back(other);
    else { cells.back().first += other.first; cells.back().second += other.second; }
  }
  if (cells.size() < 2) return 1;
  double stat = 0;
  for (const auto& [x, y] : cells) {
    const double ea = na * (x + y) / n, eb = nb * (x + y) / n;
    stat += (x - ea) * (x - ea) / ea + (y - eb) * (y - eb) / eb;
  }
  return gamma_q(double(cells.size() - 1) / 2, stat / 2);
}

// One trial on the model, like one probe child: n+1 calls of `kind`, outcome "k|free,...";
// then every socket is closed (RST for connected ones) so the next trial starts from an empty
// netns, while the kernel-global state (table_perturb, net_secret, random draws) carries on,
// as it does between the probe's namespaces. Connect trials use their own destination port.
std::string trial(World& t, const std::string& kind, int n, uint16_t dport) {
  std::vector<net::sock_id> socks;
  net::sock_id l = net::kNone;
  const std::string dest = "127.0.0.1:" + std::to_string(dport);
  if (kind == "connect") {
    l = t.socket();
    REQUIRE(net::inet_bind(t.w, l, *net::parse_endpoint(dest)) == 0);
    REQUIRE(net::inet_listen(t.w, l, 64) == 0);
  }
  int ok = 0;
  std::vector<bool> used(size_t(n), false);
  for (int i = 0; i <= n; ++i) {
    const net::sock_id s = t.socket();
    socks.push_back(s);
    int err;
    if (kind == "bind0") {
      err = net::inet_bind(t.w, s, *net::parse_endpoint("127.0.0.1:0"));
    } else if (kind == "bind0_reuse") {
      t.w.sk(s).reuse = net::SK_CAN_REUSE;
      err = net::inet_bind(t.w, s, *net::parse_endpoint("127.0.0.1:0"));
    } else if (kind == "listen") {
      err = net::inet_listen(t.w, s, 8);
    } else {
      err = t.connect(s, dest.c_str()).err;
    }
    if (!err) {
      ++ok;
      const int p = t.port(s) - kLow;
      REQUIRE((p >= 0 && p < n));
      used[size_t(p)] = true;
    }
  }
  std::string out = std::to_string(ok) + "|";
  bool first = true;
  for (int p = 0; p < n; ++p)
    if (!used[size_t(p)]) {
      out += (first ? "" : ",") + std::to_string(p);
      first = false;
    }
  for (net::sock_id s : socks) {
    if (!t.w.sk(s).alive) continue;
    t.w.sk(s).linger0 = true;
    net::tcp_close(t.w, s);
  }
  if (l != net::kNone) net::tcp_close(t.w, l);  // unaccepted children are reset with it
  return out;
}

}  // namespace

TEST_CASE("small ranges: outcome distributions of bind(0), listen() and connect() match the live kernel",
          "[small_ranges][inet_csk_find_open_port][inet_hash_connect]") {
  REQUIRE(kLive.size() == 48);
  constexpr int kTrials = 400;
  for (const LiveRow& row : kLive) {
    World t("[{\"name\":\"h\",\"sysctls\":{\"net.ipv4.ip_local_port_range\":\"" + std::to_string(kLow) + " " +
                std::to_string(kLow + row.n - 1) + "\"}}]",
            uint64_t(row.n) * 100 + row.kind[0]);
    std::map<std::string, int> live(row.hist.begin(), row.hist.end()), sim;
    for (int k = 0; k < kTrials; ++k) ++sim[trial(t, row.kind, row.n, uint16_t(10000 + k))];
    INFO(row.kind << " on " << row.n << " ports");
    if (live.size() == 1) {  // the same outcome in every live trial: the model must always give it
      CHECK(sim == std::map<std::string, int>{{live.begin()->first, kTrials}});
    } else {
      std::string shown;
      for (const auto& [k, v] : sim) shown += " " + k + "×" + std::to_string(v);
      INFO("model:" << shown);
      CHECK(chi2_p(live, sim) > 0.001);
    }
  }
}

TEST_CASE("small ranges: the chi-square check rejects a wrong distribution", "[small_ranges]") {
  // The test above must be able to fail: the live bind(0) histogram on 5 ports (4|0 ×11,
  // 4|4 ×36, 5| ×153) against one with the two end ports swapped (what a scan that wrapped
  // at the other end would give), and against the model's own proportions.
  const std::map<std::string, int> live{{"4|0", 11}, {"4|4", 36}, {"5|", 153}};
  CHECK(chi2_p(live, {{"4|0", 72}, {"4|4", 22}, {"5|", 306}}) < 0.001);
  CHECK(chi2_p(live, {{"4|0", 25}, {"4|4", 75}, {"5|", 300}}) > 0.001);
}
