// Workload generators and sweeps. Expected values follow from kernel rules: a client-closed
// connection holds its port in TIME_WAIT for TCP_TIMEWAIT_LEN = 60 s (tcp_time_wait), and a
// default range offers remaining = 28 232 ports (__inet_hash_connect), so the range lasts
// 28 232 connects when they come faster than 28 232 / 60 s ≈ 470 per second.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdio>
#include <fstream>

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
