// The parsed scenario: what `portsim run` replays. Produced by load_scenario() (load.h),
// consumed by the Runner (runner.h). The format is documented in scenarios/README.md.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "portsim/base/siphash.h"
#include "portsim/base/time.h"
#include "portsim/net/af_inet.h"
#include "portsim/net/inet_addr.h"
#include "portsim/net/kernel_profile.h"

namespace portsim::scenario {

struct SysctlSetting {
  std::string name, value, path;
};

struct NetnsSpec {
  std::string name;
  std::vector<net::ifaddr> addrs;
  std::vector<SysctlSetting> sysctls;  // in file order, each validated against the state before
};

struct MachineSpec {
  std::string name;
  uint32_t hz = 250;
  std::optional<Nanos> uptime;              // seeded when absent
  std::optional<siphash_key> net_secret;    // seeded when absent
  bool perturb_zero = false;                // table_perturb all zero (worked examples, tests)
  // Exact replay of a live kernel (issue 13; scenarios/README.md "Exact inputs"):
  std::optional<uint64_t> jiffies;          // jiffies_64 at t=0 (instead of uptime)
  std::map<uint32_t, uint32_t> perturb_cells;  // table_perturb cells index -> value (object form)
  std::vector<uint32_t> perturb_draws;      // __inet_hash_connect's random increment draws, in order
  std::vector<uint64_t> connect_jiffies;    // jiffies each autobind connect() hashes, in order
  std::vector<uint64_t> call_monotonic_ns;  // guest CLOCK_MONOTONIC (ns) at each timeline call, in order
  net::kernel_profile kernel = net::default_kernel_profile();  // "kernel": the machine's, else the scenario's
  std::vector<NetnsSpec> netns;
  uint32_t udp_hash_entries = 0;            // udptable->mask + 1; 0: the live default (16384)
};

enum class Op { socket, setsockopt, bind, listen, connect, accept, close, sysctl, shutdown, send, recv };
const char* op_name(Op op);

// A socket option as the scenario sets it.
enum class SockOpt { SO_REUSEADDR, SO_REUSEPORT, IP_BIND_ADDRESS_NO_PORT, IP_LOCAL_PORT_RANGE, IPV6_V6ONLY, SO_LINGER, TCP_SYNCNT };
struct OptSetting {
  SockOpt opt;
  uint32_t value = 0;  // IP_LOCAL_PORT_RANGE: packed lo | hi << 16, as the kernel packs it
};

// packetdrill-style expectation on one call (each repetition of a repeated call).
struct Expect {
  std::optional<int> err;                     // 0 = success ("ret": 0)
  std::optional<uint16_t> port;
  std::optional<std::pair<uint16_t, uint16_t>> port_in;
  std::optional<int> parity;                  // 0 even, 1 odd
  std::optional<std::pair<Nanos, Nanos>> at;  // the virtual time the call completes (a window)
};

// Expectations over all repetitions of a repeated call.
struct ExpectTotal {
  std::optional<uint64_t> ok;
  std::map<int, uint64_t> errors;             // errno -> count
  std::optional<uint64_t> distinct_ports;
};

struct Call {
  std::string path;        // "$.timeline[3]", for messages
  Nanos t = 0;
  Op op = Op::socket;
  int netns = -1;          // resolved host; -1 = the socket's own
  std::string sock;        // name, or a pattern with "{i}" when repeated
  std::string as;          // accept: the name given to the accepted socket
  net::endpoint addr;      // bind / connect
  int backlog = 128;
  std::vector<OptSetting> opts;   // setsockopt, or options of an implicitly created socket
  net::cred cred;                 // of an implicitly created socket
  net::family family = net::family::inet;  // of a created socket: "family", else the address's
  SysctlSetting sysctl;           // sysctl op
  uint64_t count = 1;
  Nanos every = 0;
  bool nonblock = false;          // connect: return EINPROGRESS instead of waiting
  bool creates = false;           // the call's socket name(s) are new: it creates them
  bool udp = false;               // "type": "udp": the socket it creates is SOCK_DGRAM
  bool echo = false;              // UDP: the application answers every datagram it receives
  bool has_to = false;            // send: "to" given (sendto), else send() on a connected socket
  std::optional<Expect> expect;
  std::optional<ExpectTotal> expect_total;
};

// One-way path properties: every segment waits delay + U[0, jitter) and is lost with
// probability loss (draws from the scenario seed).
struct PathSpec {
  Nanos delay = 0, jitter = 0;
  double loss = 0;
};

// A link between two hosts (netns); a == b is that host's loopback.
struct LinkSpec {
  int a = 0, b = 0;
  PathSpec path;
};

struct ExternalSpec {
  net::external_endpoint ep;
  PathSpec path;
};

// A workload generator: connections opened in virtual time by an arrival process, each held
// and then closed by the chosen side — or, with a pool, requests carried by K kept-alive
// connections (the cure for ephemeral-port exhaustion).
struct WorkloadSpec {
  std::string name, path;
  int netns = 0;
  Nanos start = 0, stop = 0;         // arrivals in [start, stop)
  double rate = 0;                   // arrivals per second
  bool poisson = false;              // exponential gaps (else constant)
  std::vector<net::endpoint> to;     // destinations
  bool pick_random = false;          // else round-robin
  Nanos hold = 0;                    // how long a connection lives
  bool hold_exp = false;             // exponential hold with mean `hold`
  enum class Closer { client, server, rst } close = Closer::client;
  std::vector<OptSetting> opts;      // applied to every generated socket
  std::optional<net::endpoint> bind; // bind-before-connect (port 0: bind(addr, 0))
  uint32_t pool = 0;                 // > 0: K kept-alive connections carry the requests
  bool udp = false;                  // "type": "udp": a query per arrival (new connected UDP socket,
                                     // one datagram, closed at the reply or after `hold`)
};

struct Scenario {
  std::string file;
  std::string name, description, kernel = "6.18";
  uint64_t seed = 1;
  std::vector<MachineSpec> machines;
  std::vector<ExternalSpec> externals;
  std::vector<LinkSpec> links;
  std::vector<WorkloadSpec> workloads;
  std::vector<Call> timeline;  // sorted by t (the file must list calls in time order)
};

// The name the socket of repetition k gets: "{i}" in the pattern replaced by k.
std::string sock_name(const std::string& pattern, uint64_t k);

}  // namespace portsim::scenario
