// portsim-replay: the resolved plan tools/oracle/scenario.py emits (format in README.md here).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace portsim_replay {

/// "127.0.0.1:5000", "[::1]:80", "10.0.0.9:*" (port absent = any port).
struct Endpoint {
  std::string ip;
  std::optional<int> port;
  int family = 4;  // 4 or 6
};

/// A host address "10.0.0.1/24" with its on-link network "10.0.0.0/24".
struct HostAddress {
  std::string cidr, ip, network;
  int prefixlen = 0;
  int family = 4;
};

struct Host {
  std::string name;
  std::vector<HostAddress> addresses;
  std::vector<std::pair<std::string, std::string>> sysctls;  // file order
};

/// An "external" endpoint: a real listener in the namespace "ext" ("accept") or nothing
/// ("refuse": the kernel answers the SYN with an RST).
struct External {
  std::string text, answer;
  Endpoint ep;
};

/// How a named socket is created: socket(family, type).
struct SocketKind {
  int family = 4;
  bool dgram = false;
  bool echo = false;  // a UDP server whose application answers every datagram
};

/// A call made as another user: setresuid(uid), capabilities = {CAP_NET_BIND_SERVICE} or {}.
struct Cred {
  int uid = 0;
  bool cap_net_bind_service = false;
};

struct SockOpt {
  std::string name;
  long long value = 0;
};

/// One call repetition, in portsim's event order.
struct Step {
  int i = 0;                          // timeline index
  std::optional<int> rep;             // repetition (absent: the call is not repeated)
  std::int64_t t = 0;                 // virtual time, ns
  std::string op;
  std::optional<std::string> sock, host, as;
  std::optional<Endpoint> addr, to;
  std::vector<SockOpt> opts;          // "opts" then a setsockopt's own option
  int backlog = 128;
  bool nonblock = false;
  std::optional<Cred> cred;
  std::string sysctl_name, sysctl_value;
};

struct Plan {
  std::string name;
  std::optional<std::int64_t> until;  // ns: steps after it are not performed
  bool exact = false;                 // wrap every connect() in kcore::ExactProbe
  std::vector<Host> hosts;
  std::vector<External> externals;
  std::map<std::string, SocketKind> sockets;
  std::vector<Step> steps;
};

/// The plan in `j` (PlanError "$.steps[3].op: expected a string" on anything else).
Plan plan_from_json(const nlohmann::json& j);
/// The plan in file `path` (PlanError "PATH: ..." when unreadable or invalid).
Plan plan_load(const std::string& path);

}  // namespace portsim_replay
