// net::inet_hash_connect_guess() (portsim's, inet_hashtables.h): after a connect, where the next
// autobind connect toward the same destination will look first, for the runner's prefetching
// (Runner::prefetch_calls_ahead). A guess may only be wrong when something changed in between;
// here nothing else touches the destinations' perturb cells or bitmaps, so every guess made once
// a destination's port set is a bitmap (net::kDestBitmapAt ports) must name the port, the bind
// bucket and the ehash key of the next connect exactly, and the perturb cell it read.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "portsim/net/inet_hashtables.h"
#include "portsim/net/netns.h"
#include "world_fixture.h"

using namespace portsim;
using portsim::test::World;

TEST_CASE("connect guess: names where the next connect toward a destination looks", "[connect][guess]") {
  // 1 000 ports shared by three destinations, 400 connects each: most ports the guesses name
  // have a bind bucket already (another destination's), as in hold-1m.
  const std::vector<std::string> dests = {"10.1.0.1:80", "10.1.0.2:80", "10.1.0.3:80"};
  World t(R"([{"name":"client","addresses":["10.0.0.1/8"],
               "sysctls":{"net.ipv4.ip_local_port_range":"32768 33767"}}])",
          7, R"(["10.1.0.1:80","10.1.0.2:80","10.1.0.3:80"])");
  std::vector<net::connect_guess> guess(dests.size());
  size_t checked = 0, with_bucket = 0;
  for (int round = 0; round < 400; ++round) {
    for (size_t d = 0; d < dests.size(); ++d) {
      const net::sock_id s = t.socket();
      const net::connect_result r = t.connect(s, dests[d].c_str());
      REQUIRE((r.err == 0 || r.err == EINPROGRESS));
      const net::sock& sk = t.w.sk(s);
      // Once the bitmap exists (since the last connect), every guess is exact.
      if (round > int(net::kDestBitmapAt)) {
        INFO("round " << round << " destination " << dests[d]);
        REQUIRE(guess[d].port == sk.num);
        if (guess[d].tb != net::kNone) {  // kNone: the port had no bucket; this connect made it
          CHECK(guess[d].tb == t.w.tb2s[sk.tb2].tb);
          ++with_bucket;
        }
        CHECK(guess[d].ehash_key == net::inet_ehash_port(net::inet_ehashfn_port0(sk), sk.num));
        CHECK(guess[d].perturb == &t.w.machines[0].table_perturb[r.info.index]);
        CHECK(guess[d].dest_word != nullptr);
        ++checked;
      }
      guess[d] = net::inet_hash_connect_guess(t.w, s);
    }
  }
  CHECK(checked == dests.size() * (400 - net::kDestBitmapAt - 1));
  CHECK(with_bucket > checked / 2);
}

// Filling a 300-port range toward one destination: the walk wraps and moves to the other parity
// pass more and more often; the guess follows it to the last free port, then has none.
TEST_CASE("connect guess: follows the walk to the last free port", "[connect][guess]") {
  World t(R"([{"name":"client","addresses":["10.0.0.1/8"],
               "sysctls":{"net.ipv4.ip_local_port_range":"40000 40299"}}])",
          3, R"(["10.1.0.1:80"])");
  net::connect_guess guess;
  int made = 0;
  for (;; ++made) {
    const net::sock_id s = t.socket();
    const net::connect_result r = t.connect(s, "10.1.0.1:80");
    if (r.err == EADDRNOTAVAIL) break;
    REQUIRE((r.err == 0 || r.err == EINPROGRESS));
    if (made > int(net::kDestBitmapAt)) {
      INFO("connect " << made);
      REQUIRE(guess.port == t.w.sk(s).num);
    }
    guess = net::inet_hash_connect_guess(t.w, s);
  }
  CHECK(made == 300);
  CHECK(guess.port == 0);  // guessed after the 300th: nothing left
}

// No guess where the walk is not 6.18's (an older connect era) or the socket narrows the range.
TEST_CASE("connect guess: none for an older kernel's walk", "[connect][guess]") {
  World t(R"([{"name":"client","kernel":"3.10","addresses":["10.0.0.1/8"]}])", 7, R"(["10.1.0.1:80"])");
  const net::sock_id s = t.socket();
  const net::connect_result r = t.connect(s, "10.1.0.1:80");
  REQUIRE((r.err == 0 || r.err == EINPROGRESS));
  CHECK(net::inet_hash_connect_guess(t.w, s).port == 0);
}
