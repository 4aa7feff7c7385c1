// Test helper: a world built from a small scenario text, plus one-call wrappers.
#pragma once
#include <catch2/catch.hpp>

#include <string>

#include "portsim/net/af_inet.h"
#include "portsim/net/inet_connection_sock.h"
#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"

namespace portsim::test {

struct World {
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
  }
  net::sock_id socket(uint16_t ns = 0, net::cred c = {}) { return net::sys_socket(w, ns, c); }
  net::connect_result connect(net::sock_id s, const char* to) {
    return net::inet_stream_connect(w, s, *net::parse_endpoint(to), sc.externals);
  }
  uint16_t port(net::sock_id s) const { return w.sk(s).num; }
};

}  // namespace portsim::test
