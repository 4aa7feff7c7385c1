// `portsim ss`: the socket table of one or every namespace at a virtual time, printed the way
// iproute2's `ss -tan` (and `ss -s`) prints a live one.
#pragma once
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "portsim/base/time.h"
#include "portsim/net/netns.h"

namespace portsim::scenario {

struct SsOptions {
  std::string host;               // empty: every namespace
  uint32_t states = UINT32_MAX;   // bit per tcp_state (1u << state)
  bool state_given = false;       // `state X` given: ss then drops the State column
  bool summary = false;           // `ss -s` instead of the table
  bool label = false;             // a "# host NAME at T" line even for one namespace
};

// ss's state filter names (ss(8) "STATE-FILTER"): established, syn-sent, syn-recv, fin-wait-1,
// fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing, and the groups all,
// connected, synchronized, bucket, big. Returns the mask, or nullopt.
std::optional<uint32_t> ss_state_mask(std::string_view name);

// Prints the table (or the summary) of the namespaces `o` selects, at virtual time `t`.
void print_ss(std::FILE* out, const net::world& w, const SsOptions& o, Nanos t);

}  // namespace portsim::scenario
