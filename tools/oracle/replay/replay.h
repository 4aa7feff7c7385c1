// portsim-replay: one scenario's calls performed with real sockets (what tools/oracle/live.py
// did): topology, externals, sysctls, the calls in portsim's event order at real-time pace.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "netns.h"
#include "plan.h"

namespace portsim_replay {

namespace kcore {
struct ExactProbe;
}

/// A socket the replay holds: its fd and how it was created.
struct ReplaySock {
  int fd = -1;
  int family = 4;
  bool dgram = false;
};

/// The outcome of one call: an errno (0 = OK) or a blocking connect that ran out of time.
struct OpResult {
  int err = 0;
  bool timeout = false;
};

class Replay {
 public:
  explicit Replay(const Plan& plan);
  ~Replay();  // teardown(): closes every socket, kills the holders
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

  /// The namespaces, links, addresses, sysctls and external listeners of the plan. Refuses
  /// (exit 3) unless it runs in a fresh private namespace.
  void setup();
  /// Every step up to plan.until, paced to virtual time; one record per step.
  nlohmann::ordered_json run();
  /// Start exact mode (plan.exact): open the probe; its secret, or {"error": why}.
  nlohmann::ordered_json exact_open();
  void teardown();
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  // -- namespaces (-1 = the base namespace the replay started in)
  void enter(int fd);
  int host_ns(const std::string& host) const;
  int sysctl_write(const std::string& name, const std::string& value);
  void setup_links(bool single);
  void setup_host(const Host& h, const std::set<std::string>& veth_hosts);
  void setup_externals();
  void made_link(int ns_fd, const std::string& name);
  void wait_links_ready();
  std::string links_not_ready();
  void ext_listen(const Endpoint& ep, const std::string& alias_host);
  void ext_listen_star();
  void drain_externals();
  bool is_external(const Endpoint& to) const;
  // -- calls
  nlohmann::ordered_json step(const Step& st);
  void step_accept(const Step& st, const ReplaySock& s, nlohmann::ordered_json& rec);
  void step_close(const std::string& name, const ReplaySock& s);
  OpResult do_op(const Step& st, ReplaySock& s);
  OpResult do_connect(const Step& st, ReplaySock& s);
  OpResult do_send(const Step& st, ReplaySock& s);
  void serve_echo();
  std::pair<OpResult, ReplaySock> in_child(const Cred& cred, const Step& st, const ReplaySock* s);
  std::pair<int, ReplaySock> do_accept(const ReplaySock& s);
  ReplaySock sock_create(const std::string& name) const;

  const Plan& plan_;
  std::vector<std::string> notes_;
  std::map<std::string, int> ns_fd_;  // host -> fd of its namespace (-1 = base)
  std::set<std::string> ours_;        // namespaces this run may write sysctls in
  std::vector<std::unique_ptr<NetnsHolder>> holders_;  // hosts in plan order, then "ext"
  NetnsHolder* ext_ns_ = nullptr;
  int cur_ = -1;
  int base_fd_ = -1;
  std::map<std::string, ReplaySock> socks_;
  std::map<std::string, Cred> owner_;     // sockets created with other credentials
  std::set<std::string> echo_;            // UDP sockets whose application answers
  std::set<std::string> ext_alias_hosts_; // hosts that carry the external addresses on lo
  // (ip, port, alias host or "") -> listening socket, in creation order
  std::vector<std::pair<std::tuple<std::string, int, std::string>, ReplaySock>> ext_listeners_;
  std::map<std::string, int> ext_peers_;       // client local endpoint -> accepted external fd
  std::map<std::string, std::string> ext_conn_;  // client socket -> its local endpoint
  std::unique_ptr<kcore::ExactProbe> probe_;     // exact mode, when open
  std::map<int, std::vector<std::string>> made_links_;  // namespace fd -> links this run created there
};

/// Host mode: load nothing, run `plan` in the current (fresh) namespace and print
/// {"kernel", "calls", "notes"[, "exact_secret"]} on stdout. Exit code: 0, 4 (not performable,
/// reason on stderr), 1 (failure).
int replay_main(const Plan& plan);

}  // namespace portsim_replay
