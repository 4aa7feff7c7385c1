// portsim-replay: the replay of one plan (formerly tools/oracle/live.py, same semantics).
// Kernel side of what it exercises: net/ipv4/inet_hashtables.c (__inet_hash_connect),
// net/ipv4/inet_connection_sock.c (inet_csk_get_port), net/ipv4/af_inet.c (__inet_stream_connect).
#include "replay.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <iostream>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "rtnl.h"
#include "sockcalls.h"

#include "kcore.h"

namespace portsim_replay {
namespace {

constexpr int kConnectTimeoutSec = 2;     // a blocking connect gives up (TIMEOUT) after this
constexpr int kAcceptWaitMs = 100;        // accept waits this long for a queued connection
constexpr std::size_t kMaxSockets = 15000;
constexpr int kDrainMax = 5000;           // accepts per external listener per drain
constexpr int kEchoMax = 1000;            // datagrams an echo server answers per pass

void sleep_ns(std::int64_t ns) {
  if (ns <= 0) return;
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

/// Clear or set O_NONBLOCK on fd.
void set_nonblock(int fd, bool on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

std::string result_name(const OpResult& r) { return r.timeout ? "TIMEOUT" : errno_name(r.err); }

nlohmann::ordered_json local_json(int fd) {
  auto l = sock_local(fd);
  return l ? nlohmann::ordered_json(*l) : nlohmann::ordered_json(nullptr);
}

/// What a credential child sends back with the socket's fd.
struct ChildAnswer {
  int err = 0;
  int timeout = 0;
  char exc[240] = "";
};

}  // namespace

Replay::Replay(const Plan& plan) : plan_(plan) {
  for (const auto& [name, kind] : plan.sockets)
    if (kind.dgram && kind.echo) echo_.insert(name);
}

Replay::~Replay() { teardown(); }

// -- namespaces --------------------------------------------------------------------------------

void Replay::enter(int fd) {
  if (fd == cur_) return;
  netns_enter(fd < 0 ? base_fd_ : fd);
  cur_ = fd;
}

int Replay::host_ns(const std::string& host) const {
  auto it = ns_fd_.find(host);
  if (it == ns_fd_.end()) throw BadStep("host " + host + " is not in the plan");
  return it->second;
}

/// Write a sysctl in the current namespace (only one this run created); 0 or errno.
int Replay::sysctl_write(const std::string& name, const std::string& value) {
  std::string here = netns_id();
  const char* host = std::getenv("PROBE_HOST_NETNS");
  if (!ours_.count(here) || (host && *host && here == host)) {
    std::fprintf(stderr, "refusing to write %s outside the oracle namespaces\n", name.c_str());
    std::exit(3);
  }
  std::string path = "/proc/sys/" + name;
  std::replace(path.begin() + 10, path.end(), '.', '/');
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = write(fd, value.data(), value.size());
  int e = n < 0 ? errno : 0;
  close(fd);
  return e;
}

void Replay::setup() {
  require_private_netns();  // also brings lo up in the base namespace
  base_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (base_fd_ < 0) throw_errno("open /proc/thread-self/ns/net", errno);
  ours_.insert(netns_id());
  bool single = plan_.hosts.size() == 1 && plan_.externals.empty();
  if (single) {
    ns_fd_[plan_.hosts[0].name] = -1;
  } else {
    for (const auto& h : plan_.hosts) {
      holders_.push_back(std::make_unique<NetnsHolder>(h.name));
      ns_fd_[h.name] = holders_.back()->fd();
    }
    if (!plan_.externals.empty()) {
      holders_.push_back(std::make_unique<NetnsHolder>("external endpoints"));
      ext_ns_ = holders_.back().get();
    }
  }
  for (const auto& hd : holders_) {
    enter(hd->fd());
    ours_.insert(netns_id());
    rtnl_link_up("lo");
  }
  enter(-1);
  setup_links(single);
  std::set<std::string> veth_hosts;
  if (!single)
    for (const auto& h : plan_.hosts)
      if (!h.addresses.empty()) veth_hosts.insert(h.name);
  for (const auto& h : plan_.hosts) setup_host(h, veth_hosts);
  if (!plan_.externals.empty()) setup_externals();
  wait_links_ready();
  enter(-1);
}

void Replay::made_link(int ns_fd, const std::string& name) { made_links_[ns_fd].push_back(name); }

/// What keeps the created links from carrying the first call, or "" when nothing does: a veth
/// not operationally up (IFLA_OPERSTATE != IF_OPER_UP: the veth's carrier needs both ends up,
/// and linkwatch sets the operstate and activates the qdisc asynchronously, net/core/
/// link_watch.c; until then dev_queue_xmit drops into noop_qdisc), a bridge port not yet
/// forwarding, or an IPv6 address (not link-local) still tentative — even `nodad` addresses
/// stay tentative until their link is up (net/ipv6/addrconf.c addrconf_dad_begin), and until
/// then the address has no local route, so a connect() to it leaves on the wire (seen: 6.1 in
/// a TCG guest).
std::string Replay::links_not_ready() {
  std::string why;
  auto add = [&why](const std::string& s) { why += (why.empty() ? "" : "; ") + s; };
  for (const auto& [fd, names] : made_links_) {
    enter(fd);
    std::string where = fd < 0 ? "base namespace" : "namespace of the external endpoints";
    for (const auto& [h, f] : ns_fd_)
      if (fd >= 0 && f == fd) where = "namespace of host " + h;
    std::vector<LinkState> links = rtnl_links();
    for (const auto& n : names) {
      const LinkState* l = nullptr;
      for (const auto& x : links)
        if (x.name == n) l = &x;
      if (!l) {
        add(where + ": " + n + " missing");
        continue;
      }
      if (l->operstate != kIfOperUp) add(where + ": " + n + " operstate " + std::to_string(l->operstate) + " (not up)");
      if (l->brport_state >= 0 && l->brport_state != kBrStateForwarding)
        add(where + ": bridge port " + n + " in STP state " + std::to_string(l->brport_state) + " (not forwarding)");
    }
    for (const auto& a : rtnl_addrs6()) {
      if (a.scope == kScopeLink) continue;  // link-local: the kernel's own (real DAD), never a scenario address
      if (a.flags & kIfaDadFailed)
        throw SysError("IPv6 address " + a.ip + " failed duplicate address detection (" + where + ")");
      if (a.flags & kIfaTentative) add(where + ": IPv6 " + a.ip + " tentative");
    }
  }
  return why;
}

/// Hold the first call until every link this run created is up and its IPv6 addresses usable:
/// polled every 5 ms, at most 5 s (then SysError: exit 1 in host mode, rc 1 in the guest).
void Replay::wait_links_ready() {
  if (made_links_.empty()) return;
  const std::int64_t start = monotonic_ns();
  for (;;) {
    std::string why = links_not_ready();
    if (why.empty()) return;
    if (monotonic_ns() - start > 5000000000LL) throw SysError("links not ready after 5 s: " + why);
    usleep(5000);
  }
}

/// The bridge br0 in the base namespace and a veth "vK" on it per host with addresses (and one
/// for the external endpoints); the peer is "eth0" in that host's namespace.
void Replay::setup_links(bool single) {
  std::vector<NetnsHolder*> linked;
  for (std::size_t k = 0; k < plan_.hosts.size(); ++k)
    if (!single && !plan_.hosts[k].addresses.empty()) linked.push_back(holders_[k].get());
  if (ext_ns_) linked.push_back(ext_ns_);
  if (linked.empty()) return;
  rtnl_link_add_bridge("br0");
  rtnl_link_up("br0");  // not waited for: its own operstate (linkwatch, non-urgent: up to 1 s
                        // late) gates nothing here, br0 has no address; its ports are waited for
  for (std::size_t k = 0; k < linked.size(); ++k) {
    std::string v = "v" + std::to_string(k);
    rtnl_link_add_veth(v, "eth0", linked[k]->fd());
    rtnl_link_set_master(v, "br0");
    rtnl_link_up(v);
    made_link(-1, v);
    made_link(linked[k]->fd(), "eth0");  // brought up by setup_host / setup_externals
  }
}

/// A host's addresses and sysctls (file order, as portsim applies them). A host with addresses
/// but no veth to the bridge (a one-host scenario) gets a stand-in "eth0": one end of a veth
/// pair whose other end ("eth0p", up, no address) stays in the same namespace (the kernels we
/// run on need not have the dummy driver). Its addresses are local; its subnet leads nowhere.
void Replay::setup_host(const Host& h, const std::set<std::string>& veth_hosts) {
  enter(ns_fd_.at(h.name));
  if (!h.addresses.empty() && !veth_hosts.count(h.name)) {
    rtnl_link_add_veth("eth0", "eth0p", -1);
    rtnl_link_up("eth0p");
    made_link(ns_fd_.at(h.name), "eth0p");
    made_link(ns_fd_.at(h.name), "eth0");
  }
  for (const auto& a : h.addresses) rtnl_addr_add(a.ip, a.prefixlen, a.family, "eth0", a.family == 6);
  if (!h.addresses.empty()) rtnl_link_up("eth0");
  for (const auto& [k, v] : h.sysctls) {
    int e = sysctl_write(k, v);
    if (e)
      throw Unsupported("host " + h.name + ": sysctl " + k + "=" + v + " refused by the kernel: " +
                        errno_name(e));
  }
}

/// The external endpoints: their addresses (/32, /128) on the ext namespace's eth0, on-link
/// routes both ways; a host without an interface of that family gets the address on its lo
/// instead (noted). Listeners for every "accept" endpoint with a port.
void Replay::setup_externals() {
  enter(ext_ns_->fd());
  std::set<std::pair<std::string, int>> addrs;
  for (const auto& e : plan_.externals) addrs.insert({e.ep.ip, e.ep.family});
  for (const auto& [a, fam] : addrs) rtnl_addr_add(a, fam == 6 ? 128 : 32, fam, "eth0", fam == 6);
  rtnl_link_up("eth0");
  for (const auto& h : plan_.hosts)
    for (const auto& ha : h.addresses) rtnl_route_add(ha.network, ha.prefixlen, ha.family, "eth0");
  for (const auto& h : plan_.hosts) {
    enter(ns_fd_.at(h.name));
    std::set<int> fams;
    for (const auto& ha : h.addresses) fams.insert(ha.family);
    for (const auto& [a, fam] : addrs) {
      if (fams.count(fam)) {
        rtnl_route_add(a, fam == 6 ? 128 : 32, fam, "eth0");
      } else {  // no interface of that family: the external address goes on lo here
        rtnl_addr_add(a, fam == 6 ? 128 : 32, fam, "lo", false);
        ext_alias_hosts_.insert(h.name);
      }
    }
  }
  if (!ext_alias_hosts_.empty()) {
    std::string list;
    for (const auto& n : ext_alias_hosts_) list += (list.empty() ? "'" : ", '") + n + "'";
    notes_.push_back("hosts [" + list + "] have no address: external endpoints were put on their lo "
                     "(source address differs from a real network)");
  }
  for (const auto& e : plan_.externals) {
    if (!e.ep.port || e.answer != "accept") continue;
    ext_listen(e.ep, "");
    for (const auto& n : ext_alias_hosts_) ext_listen(e.ep, n);
  }
}

/// A listening socket for external endpoint ep (in "ext", or on alias_host's lo).
void Replay::ext_listen(const Endpoint& ep, const std::string& alias_host) {
  auto key = std::make_tuple(ep.ip, ep.port.value_or(0), alias_host);
  for (const auto& l : ext_listeners_)
    if (l.first == key) return;
  enter(alias_host.empty() ? ext_ns_->fd() : ns_fd_.at(alias_host));
  ReplaySock s{socket(ep.family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ep.family, false};
  if (s.fd < 0) throw_errno("external listener socket", errno);
  int one = 1;
  setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  SockAddr sa = sockaddr_of(ep);
  if (bind(s.fd, sa.get(), sa.len) != 0 || listen(s.fd, 4096) != 0) {
    int e = errno;
    close(s.fd);
    throw_errno("external listener " + ep.ip + ":" + std::to_string(ep.port.value_or(0)), e);
  }
  set_nonblock(s.fd, true);
  ext_listeners_.push_back({key, s});
}

/// Externals with port "*": a listener on demand for every port the timeline connects to.
void Replay::ext_listen_star() {
  if (!ext_ns_) return;
  for (const auto& st : plan_.steps) {
    if (st.op != "connect" || !st.to) continue;
    for (const auto& e : plan_.externals) {
      if (e.ep.ip != st.to->ip || e.ep.port || e.answer != "accept") continue;
      ext_listen(*st.to, "");
      for (const auto& n : ext_alias_hosts_) ext_listen(*st.to, n);
    }
  }
}

/// Accept everything queued on the external listeners (bounded), keyed by the client's endpoint.
void Replay::drain_externals() {
  for (auto& [key, l] : ext_listeners_) {
    for (int k = 0; k < kDrainMax; ++k) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      int c = accept4(l.fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      if (c < 0) break;  // EAGAIN: drained
      set_nonblock(c, false);
      std::string who = sockaddr_text(reinterpret_cast<sockaddr*>(&peer));
      auto old = ext_peers_.find(who);
      if (old != ext_peers_.end()) close(old->second);
      ext_peers_[who] = c;
    }
  }
}

bool Replay::is_external(const Endpoint& to) const {
  for (const auto& e : plan_.externals)
    if (e.ep.ip == to.ip && (!e.ep.port || e.ep.port == to.port)) return true;
  return false;
}

void Replay::teardown() {
  for (auto& [n, s] : socks_) close(s.fd);
  socks_.clear();
  for (auto& [n, fd] : ext_peers_) close(fd);
  ext_peers_.clear();
  for (auto& [k, s] : ext_listeners_) close(s.fd);
  ext_listeners_.clear();
  for (auto& h : holders_) h->stop();
  holders_.clear();
  ext_ns_ = nullptr;
  if (base_fd_ >= 0) {
    setns(base_fd_, 0);
    close(base_fd_);
    base_fd_ = -1;
  }
}

// -- calls -------------------------------------------------------------------------------------

ReplaySock Replay::sock_create(const std::string& name) const {
  SocketKind kind;
  if (auto it = plan_.sockets.find(name); it != plan_.sockets.end()) kind = it->second;
  ReplaySock s{socket(kind.family == 6 ? AF_INET6 : AF_INET, kind.dgram ? SOCK_DGRAM : SOCK_STREAM, 0),
               kind.family, kind.dgram};
  if (s.fd < 0) throw_errno("socket for " + name, errno);
  return s;
}

/// Perform the op of step st on socket s (after its options).
OpResult Replay::do_op(const Step& st, ReplaySock& s) {
  for (const auto& o : st.opts)
    if (int e = sock_apply_opt(s.fd, o)) return {e};
  const std::string& op = st.op;
  if (op == "setsockopt" || op == "socket") return {};
  if (op == "shutdown") return {shutdown(s.fd, SHUT_WR) == 0 ? 0 : errno};
  if (op == "bind") {
    SockAddr sa = sockaddr_of(*st.addr);
    return {bind(s.fd, sa.get(), sa.len) == 0 ? 0 : errno};
  }
  if (op == "listen") return {listen(s.fd, st.backlog) == 0 ? 0 : errno};
  if (op == "connect") return do_connect(st, s);
  if (op == "send") return do_send(st, s);
  if (op == "recv") {
    char buf[512];
    return {recv(s.fd, buf, sizeof buf, MSG_DONTWAIT) >= 0 ? 0 : errno};
  }
  throw Unsupported("op " + op);
}

/// connect(2): on a UDP socket or toward another family as is (the kernel answers); with
/// "nonblock" under O_NONBLOCK (EINPROGRESS / EALREADY / the outcome); otherwise a real
/// blocking connect bounded by SO_SNDTIMEO, whose EINPROGRESS (inet_wait_for_connect timed out)
/// is reported as TIMEOUT. A non-blocking connect polled for SO_ERROR would instead leave
/// sock->state SS_CONNECTING and consume sk_err: a second connect() would answer differently.
OpResult Replay::do_connect(const Step& st, ReplaySock& s) {
  SockAddr sa = sockaddr_of(*st.to);
  bool other_family = st.to->family == 6 && s.family == 4;
  if (s.dgram || other_family) return {connect(s.fd, sa.get(), sa.len) == 0 ? 0 : errno};
  if (st.nonblock) {
    set_nonblock(s.fd, true);
    int e = connect(s.fd, sa.get(), sa.len) == 0 ? 0 : errno;
    set_nonblock(s.fd, false);
    return {e};
  }
  timeval tv{kConnectTimeoutSec, 0};
  if (setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) return {errno};
  int e = connect(s.fd, sa.get(), sa.len) == 0 ? 0 : errno;
  if (e == EINPROGRESS) return {0, true};
  return {e};
}

/// One datagram ("q"); sendto when the step names a destination. Then the echo servers answer.
OpResult Replay::do_send(const Step& st, ReplaySock& s) {
  ssize_t n;
  if (st.to) {
    SockAddr sa = sockaddr_of(*st.to);
    n = sendto(s.fd, "q", 1, 0, sa.get(), sa.len);
  } else {
    n = send(s.fd, "q", 1, 0);
  }
  if (n < 0) return {errno};
  serve_echo();
  return {};
}

/// The scenario's echo servers answer every datagram queued on them; loopback delivers inside
/// sendmsg, so one pass after each send is enough.
void Replay::serve_echo() {
  sleep_ns(1000000);
  for (const auto& name : echo_) {
    auto it = socks_.find(name);
    if (it == socks_.end()) continue;
    for (int k = 0; k < kEchoMax; ++k) {
      char buf[512];
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      ssize_t n = recvfrom(it->second.fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer), &len);
      if (n < 0) break;
      if (sendto(it->second.fd, buf, static_cast<std::size_t>(n), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer),
                 len) < 0)
        break;
    }
  }
  sleep_ns(1000000);
}

/// Run the op as another user in a forked child; a new socket comes back by SCM_RIGHTS.
std::pair<OpResult, ReplaySock> Replay::in_child(const Cred& cred, const Step& st, const ReplaySock* s) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair", errno);
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw_errno("fork", errno);
  if (pid == 0) {
    close(sv[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    ChildAnswer ans;
    ReplaySock sk;
    try {
      if (int e = cred_drop_to(cred)) throw_errno("uid " + std::to_string(cred.uid), e);
      sk = s ? *s : sock_create(*st.sock);
      OpResult r = do_op(st, sk);
      ans.err = r.err;
      ans.timeout = r.timeout;
    } catch (const std::exception& ex) {
      std::snprintf(ans.exc, sizeof ans.exc, "%s", ex.what());
    }
    msghdr msg{};
    iovec iov{&ans, sizeof ans};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    if (sk.fd >= 0 && !ans.exc[0]) {
      msg.msg_control = ctl;
      msg.msg_controllen = sizeof ctl;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &sk.fd, sizeof(int));
    }
    _exit(sendmsg(sv[1], &msg, 0) == static_cast<ssize_t>(sizeof ans) && !ans.exc[0] ? 0 : 1);
  }
  close(sv[1]);
  timeval tv{kConnectTimeoutSec + 5, 0};
  setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ChildAnswer ans;
  msghdr msg{};
  iovec iov{&ans, sizeof ans};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof ctl;
  ssize_t n = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC);
  close(sv[0]);
  if (n != static_cast<ssize_t>(sizeof ans)) kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof ans)) throw SysError("uid " + std::to_string(cred.uid) + " child: no answer");
  if (ans.exc[0]) throw SysError("uid " + std::to_string(cred.uid) + " child failed: " + ans.exc);
  int fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  OpResult r{ans.err, ans.timeout != 0};
  if (s) {  // the parent's fd is the same socket
    if (fd >= 0) close(fd);
    return {r, *s};
  }
  if (fd < 0) throw SysError("uid " + std::to_string(cred.uid) + " child: no socket came back");
  SocketKind kind;
  if (auto it = plan_.sockets.find(*st.sock); it != plan_.sockets.end()) kind = it->second;
  return {r, ReplaySock{fd, kind.family, kind.dgram}};
}

/// accept(): wait up to kAcceptWaitMs for a connection; if none is ready, a non-blocking
/// accept lets the kernel say why (EAGAIN: empty queue, EINVAL: not listening).
std::pair<int, ReplaySock> Replay::do_accept(const ReplaySock& s) {
  pollfd p{s.fd, POLLIN, 0};
  int ready = poll(&p, 1, kAcceptWaitMs);
  if (ready < 0) return {errno, {}};
  bool r = ready > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));  // select()'s "readable"
  set_nonblock(s.fd, !r);
  int c = accept4(s.fd, nullptr, nullptr, SOCK_CLOEXEC);
  int e = c < 0 ? errno : 0;
  set_nonblock(s.fd, false);
  if (c < 0) return {e, {}};
  return {0, ReplaySock{c, s.family, false}};
}

/// accept on listener s; the new socket gets the step's "as" name. The record carries the
/// listener's endpoint (as portsim reports it).
void Replay::step_accept(const Step& st, const ReplaySock& s, nlohmann::ordered_json& rec) {
  auto [e, child] = do_accept(s);
  if (child.fd >= 0) {
    if (auto old = socks_.find(*st.as); old != socks_.end()) close(old->second.fd);
    socks_[*st.as] = child;
  }
  rec["local"] = local_json(s.fd);
  rec["err"] = errno_name(e);
}

/// close(2); an external peer connected to this socket closes its side right after (portsim:
/// "an external peer is assumed to close at once").
void Replay::step_close(const std::string& name, const ReplaySock& s) {
  std::optional<std::string> local;
  if (auto conn = ext_conn_.find(name); conn != ext_conn_.end()) {
    local = conn->second;
    ext_conn_.erase(conn);
  }
  close(s.fd);
  socks_.erase(name);
  if (!local) return;
  drain_externals();
  if (auto peer = ext_peers_.find(*local); peer != ext_peers_.end()) {
    sleep_ns(2000000);
    close(peer->second);
    ext_peers_.erase(peer);
  }
}

nlohmann::ordered_json Replay::step(const Step& st) {
  nlohmann::ordered_json rec;
  rec["i"] = st.i;
  rec["rep"] = st.rep ? nlohmann::ordered_json(*st.rep) : nlohmann::ordered_json(nullptr);
  rec["op"] = st.op;
  rec["sock"] = st.sock ? nlohmann::ordered_json(*st.sock) : nlohmann::ordered_json(nullptr);
  rec["t"] = st.t;
  // Exact mode: CLOCK_MONOTONIC right before and after the call's system calls ("mono": [ns, ns]):
  // the guest's instant of each call, whose seconds are ktime_get_seconds() (tcp_twsk_unique,
  // tw_ts_recent_stamp: a FIN on loopback is processed within the close() that sent it).
  std::int64_t mono_before = 0;
  auto mono_begin = [&] { mono_before = monotonic_ns(); };
  auto mono_end = [&] {
    if (plan_.exact) rec["mono"] = {mono_before, monotonic_ns()};
  };
  if (st.op == "sysctl") {
    enter(host_ns(*st.host));
    mono_begin();
    rec["err"] = errno_name(sysctl_write(st.sysctl_name, st.sysctl_value));
    mono_end();
    return rec;
  }
  const std::string& name = *st.sock;
  auto it = socks_.find(name);
  bool creates = st.op == "socket" || st.op == "bind" || st.op == "connect" || st.op == "listen" || st.op == "send";
  std::optional<Cred> cred;
  std::optional<ReplaySock> s;
  if (it == socks_.end()) {
    if (!creates) throw BadStep(st.op + ": socket " + name + " does not exist");
    if (socks_.size() >= kMaxSockets)
      throw Unsupported("more than " + std::to_string(kMaxSockets) + " sockets open at once");
    if (!st.host) throw BadStep(st.op + ": socket " + name + " is created by a call without \"host\"");
    enter(host_ns(*st.host));
    if (st.cred) {
      cred = st.cred;
      owner_[name] = *st.cred;
    } else {
      owner_.erase(name);  // a name used again: the new socket is root's
      s = sock_create(name);
    }
  } else {
    s = it->second;
    if (auto o = owner_.find(name); o != owner_.end()) cred = o->second;
  }
  if (st.op == "accept") {
    mono_begin();
    step_accept(st, *s, rec);
    mono_end();
    return rec;
  }
  if (st.op == "close") {
    mono_begin();
    step_close(name, *s);
    mono_end();
    rec["err"] = "OK";
    return rec;
  }
  bool exact = probe_ && st.op == "connect";
  if (exact) probe_->before();
  mono_begin();
  OpResult r;
  if (cred) {
    auto [res, sock] = in_child(*cred, st, s ? &*s : nullptr);
    r = res;
    s = sock;
  } else {
    r = do_op(st, *s);
  }
  mono_end();
  nlohmann::json exact_rec;
  if (exact) exact_rec = probe_->after();
  socks_[name] = *s;
  rec["err"] = result_name(r);
  rec["local"] = local_json(s->fd);
  if (exact) rec["exact"] = exact_rec;
  if (st.op == "connect" && !ext_listeners_.empty()) {
    drain_externals();
    if (!r.err && !r.timeout && is_external(*st.to) && rec["local"].is_string())
      ext_conn_[name] = rec["local"].get<std::string>();
  }
  return rec;
}

nlohmann::ordered_json Replay::run() {
  ext_listen_star();
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  std::int64_t start = monotonic_ns();
  for (const auto& st : plan_.steps) {
    if (plan_.until && st.t > *plan_.until) break;
    // real time never runs behind virtual time: timers (TIME_WAIT, FIN_WAIT2, the tw_reuse
    // delay) see at least the scenario's spacing
    sleep_ns(st.t - (monotonic_ns() - start));
    out.push_back(step(st));
  }
  return out;
}

nlohmann::ordered_json Replay::exact_open() {
  auto p = std::make_unique<kcore::ExactProbe>();
  std::string err;
  if (!p->open(&err)) return nlohmann::ordered_json{{"error", err}};
  nlohmann::ordered_json secret = p->secret();
  probe_ = std::move(p);
  return secret;
}

int replay_main(const Plan& plan) {
  nlohmann::ordered_json out;
  try {
    Replay run(plan);
    run.setup();
    nlohmann::ordered_json secret;
    if (plan.exact) secret = run.exact_open();
    nlohmann::ordered_json calls = run.run();
    run.teardown();
    utsname u{};
    uname(&u);
    out["kernel"] = u.release;
    out["calls"] = std::move(calls);
    out["notes"] = run.notes();
    if (plan.exact) out["exact_secret"] = std::move(secret);
  } catch (const Unsupported& ex) {
    std::fprintf(stderr, "UNSUPPORTED: %s\n", ex.what());
    return 4;
  } catch (const BadStep& ex) {
    std::fprintf(stderr, "bad input: %s\n", ex.what());
    return 4;
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "portsim-replay: %s\n", ex.what());
    return 1;
  }
  std::cout << out.dump() << '\n' << std::flush;
  return std::cout ? 0 : 1;
}

}  // namespace portsim_replay
