// Test helper: a world built from a small scenario text, plus one-call wrappers.
#pragma once
#include <catch2/catch.hpp>

#include <string>

#include "portsim/net/af_inet.h"
#include "portsim/net/tcp.h"
#include "portsim/net/udp.h"
#include "portsim/net/inet_connection_sock.h"
#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"

namespace portsim::test {

// Every path zero-delay and lossless: segments are delivered within the sending call, the way
// `portsim run` delivers them on hosts without links.
struct ZeroDelayWire final : net::wire {
  net::world* w = nullptr;
  void xmit(const net::segment& in) override {
    net::segment seg = in;
    if (seg.proto) {  // UDP datagrams and ICMP errors
      const net::netns* dst = seg.from_ns == net::kExternalNs ? &w->nets[seg.to_ns] : net::route_to(*w, w->nets[seg.from_ns], seg.daddr);
      if (!dst) {
        if (seg.proto == net::kProtoUdp) net::udp_external_rcv(*w, seg);
      } else if (seg.proto == net::kProtoUdp) {
        net::udp_rcv(*w, dst->id, seg);
      } else {
        net::udp_err(*w, dst->id, seg);
      }
      return;
    }
    if (seg.from_ns == net::kExternalNs) {
      net::tcp_v4_rcv(*w, seg.to_ns, seg);
    } else if (const net::netns* dst = net::route_to(*w, w->nets[seg.from_ns], seg.daddr)) {
      net::tcp_v4_rcv(*w, dst->id, seg);
    } else {
      net::external_rcv(*w, seg);
    }
  }
};

struct World {
  ZeroDelayWire wire;
  scenario::Scenario sc;
  net::world w;
  // `machines_json`: the value of "machines".
  explicit World(const std::string& machines_json, uint64_t seed = 1,
                 const std::string& external = "[]") {
    auto lr = scenario::load_scenario_text(
        "{\"seed\":" + std::to_string(seed) + ",\"machines\":" + machines_json + ",\"external\":" + external +
            ",\"timeline\":[]}",
        "test");
    if (lr.error) FAIL(lr.error->message);
    sc = *lr.scenario;
    scenario::build_world(sc, seed, w);
    for (const auto& x : sc.externals) w.add_external(x.ep);
    wire.w = &w;
    w.net_wire = &wire;
  }
  net::sock_id socket(uint16_t ns = 0, net::cred c = {}, net::family f = net::family::inet) {
    return net::sys_socket(w, ns, c, f);
  }
  net::connect_result connect(net::sock_id s, const char* to) {
    return net::inet_stream_connect(w, s, *net::parse_endpoint(to));
  }
  uint16_t port(net::sock_id s) const { return w.sk(s).num; }
};

// Runs a complete scenario text (named `name` in messages) through scenario::Runner, with its
// timers and wire; the run must end cleanly and every expectation in the text must hold.
inline void run_scenario_expecting(const char* name, const std::string& text) {
  auto lr = scenario::load_scenario_text(text, name);
  if (lr.error) FAIL(lr.error->message);
  scenario::Runner runner(*lr.scenario, {});
  const scenario::RunReport rep = runner.run();
  std::string why = rep.runtime_error;
  for (const auto& f : rep.failures) why += "\n" + f;
  INFO(why);
  REQUIRE(rep.runtime_error.empty());
  CHECK(rep.expectations > 0);
  CHECK(rep.expectation_failures == 0);
}

}  // namespace portsim::test
