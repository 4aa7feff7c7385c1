// The syscall layer: net/ipv4/af_inet.c (inet_stream_connect, inet_listen), tcp_ipv4.c
// (tcp_v4_connect), inet_connection_sock.c (inet_csk_accept), and routing.
#include "portsim/net/af_inet.h"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "portsim/base/assert.h"
#include "portsim/net/inet_connection_sock.h"
#include "portsim/net/observer.h"
#include "tcp_internal.h"

namespace portsim::net {

void world::set_state(sock_id id, tcp_state to) {
  sock& s = sk(id);
  const tcp_state from = s.state;
  if (from == to) return;
  s.state = to;
  if (to == tcp_state::ESTABLISHED) st.established_peak = std::max(st.established_peak, ++st.established);
  if (from == tcp_state::ESTABLISHED) --st.established;
  if (obs) obs->state_change(*this, id, from, to);
  // TCP_CLOSE: sk_prot->unhash(), and inet_put_port() unless the port was bound explicitly
  // (SOCK_BINDPORT_LOCK): a port chosen by bind(0), listen() or connect() goes back here, on
  // every path to CLOSE (a failed connect, an RST, tcp_done). A TIME_WAIT sock never comes
  // through tcp_set_state (inet_twsk_kill unhashes it). The unhash takes the sock out of the
  // connect destination index too; any other change of a hashed sock may move it there.
  if (to == tcp_state::CLOSE && from != tcp_state::TIME_WAIT) {
    // A socket the application keeps may connect again with this write_seq: whole numbers
    // before the port (and so the 4-tuple a lazy ISN needs) goes back.
    if ((s.snd_lazy || s.rcv_lazy) && !s.orphan) tcp_seq_resolve(*this, s);
    inet_ehash_remove(*this, id);
    if (!(sk(id).userlocks & SOCK_BINDPORT_LOCK)) inet_put_port(*this, id);
    return;
  }
  if (s.hashed) connect_dest_refresh(*this, id);
}

sock_id sys_socket(world& w, uint16_t ns, const cred& c, family f) {
  return w.sock_alloc_with(ns, [&](sock& s) {
    s.uid = c.uid;
    s.cap_net_bind_service = c.cap_net_bind_service;
    s.ss = socket_state::SS_UNCONNECTED;
    if (f == family::inet6) {  // AF_INET6: unbound at [::]
      s.v6 = true;
      s.rcv_saddr = s.daddr = inet_addr{};
    }
  });
}

// IPv4 (net/ipv4/route.c ip_route_output_key_hash_rcu, fib_lookup): a local destination is its
// own source (RTN_LOCAL); otherwise the longest-prefix connected route's preferred source, the
// primary (first added) address of that subnet; with no such route, the default route's
// device's first primary address (inet_select_addr). Unspecified (any) when there is none.
// One walk over the addresses answers the three questions.
static inet_addr select_saddr_v4(const netns& ns, const inet_addr& daddr) {
  const ifaddr* subnet = nullptr;  // the longest prefix holding daddr, first among equals
  const ifaddr* first = nullptr;
  for (const auto& ia : ns.addrs) {
    if (ia.addr == daddr) return daddr;
    if (!ia.addr.is_v4()) continue;
    if (!first) first = &ia;
    if (ia.contains(daddr) && (!subnet || ia.prefix > subnet->prefix)) subnet = &ia;
  }
  return subnet ? subnet->addr : first ? first->addr : kAnyV4;
}

// Bits two addresses share from the top (128 when equal).
static unsigned common_prefix_len(const inet_addr& a, const inet_addr& b) {
  if (const uint64_t x = a.hi ^ b.hi) return unsigned(__builtin_clzll(x));
  if (const uint64_t x = a.lo ^ b.lo) return 64u + unsigned(__builtin_clzll(x));
  return 128;
}

// IPv6 (net/ipv6/addrconf.c ipv6_dev_get_saddr, RFC 6724 source address selection): the
// destination itself if local (rule 1), else the longest common prefix with daddr counted no
// further than the candidate's own prefix length (rule 8); among equals the newest address
// (the kernel lists a device's addresses newest first). One device, every address preferred
// and public; rules 2-7 (scope, label, ...) are not modelled. Unspecified when there is none.
static inet_addr select_saddr_v6(const netns& ns, const inet_addr& daddr) {
  const ifaddr* best = nullptr;
  unsigned best_len = 0;
  for (const auto& ia : ns.addrs) {
    if (ia.addr == daddr) return daddr;
    if (ia.addr.is_v4()) continue;
    const unsigned len = std::min(common_prefix_len(ia.addr, daddr), unsigned(ia.prefix));
    if (!best || len >= best_len) best = &ia, best_len = len;
  }
  return best ? best->addr : inet_addr{};
}

// The source address a connect() or sendto() from an unbound socket takes (ip_route_connect):
// 127.0.0.1 / ::1 toward loopback, else the family's selection above.
inet_addr inet_select_saddr(const netns& ns, const inet_addr& daddr) {
  if (daddr.is_loopback()) return daddr.is_v4() ? inet_addr::v4(0x7f000001) : inet_addr{0, 1};
  return daddr.is_v4() ? select_saddr_v4(ns, daddr) : select_saddr_v6(ns, daddr);
}

static const netns* route_lookup(const world& w, const netns& from, const inet_addr& daddr) {
  if (from.owns(daddr)) return &from;
  if (daddr.is_loopback()) return nullptr;
  for (const auto& ns : w.nets)
    if (ns.owns(daddr)) return &ns;
  return nullptr;
}

const netns* route_to_slow(const world& w, const netns& from, const inet_addr& daddr) {
  world::route_memo& recent = w.route_recent[world::recent_slot(daddr, from.id)];
  if (recent.answers(daddr, from.id, w.nets.size())) {
    w.route_last = recent;
    return recent.to == kNone ? nullptr : &w.nets[recent.to];
  }
  const netns* to = route_lookup(w, from, daddr);
  w.route_last = recent = {daddr, from.id, true, to ? uint32_t(to - w.nets.data()) : kNone, w.nets.size()};
  return to;
}

// net/ipv4/inet_hashtables.c: __inet_lookup_listener() + compute_score(), and its IPv6 twin
// net/ipv6/inet6_hashtables.c: inet6_lookup_listener() + compute_score(). The segment's family
// is its destination's: an IPv4 SYN looks at AF_INET listeners and at AF_INET6 ones that are
// not IPV6_V6ONLY, through their IPv4 address (0.0.0.0 for [::] and [::ffff:0.0.0.0]); an IPv6
// SYN looks only at AF_INET6 listeners, by their IPv6 address, so an AF_INET 0.0.0.0 listener
// and a [::ffff:0.0.0.0] one never answer it. The exact address is looked up before the
// wildcard (lhash2 by daddr, then by ANY); among equals an AF_INET socket scores one more.
// SO_REUSEPORT group selection is not modelled: the first best-scoring socket answers.
sock_id inet_lookup_listener(const world& w, const netns& ns, const inet_addr& daddr, uint16_t dport) {
  auto it = ns.listeners.find(dport);
  if (it == ns.listeners.end()) return kNone;
  const bool v4_segment = daddr.is_v4();
  sock_id best = kNone;
  int best_score = -1;
  for (sock_id l : it->second) {
    const sock& s = w.sk(l);
    int score = -1;
    if (v4_segment) {
      if (s.ipv6only) continue;
      // inet_rcv_saddr of an AF_INET6 socket: the v4 part of a v4-mapped address, 0 for [::].
      const bool any = s.rcv_saddr.is_any();
      if (s.rcv_saddr == daddr) score = 4;
      else if (any) score = 2;
      else continue;
      if (!s.v6) ++score;
    } else {
      if (!s.v6) continue;
      if (s.rcv_saddr == daddr) score = 4;
      else if (s.rcv_saddr == inet_addr{}) score = 2;  // [::] only, not [::ffff:0.0.0.0]
      else continue;
    }
    if (score > best_score) { best = l; best_score = score; }
  }
  return best;
}

// net/ipv4/tcp.c: tcp_done() — tcp_set_state(TCP_CLOSE) (which unhashes and releases a port
// that was not bound explicitly), and the timers stop.
void tcp_done(world& w, sock_id id) {
  w.set_state(id, tcp_state::CLOSE);
  ++w.sk(id).timer_gen;  // no timer survives CLOSE
  inet_ehash_remove(w, id);
}

void sock_destroy(world& w, sock_id id) {
  inet_ehash_remove(w, id);
  inet_put_port(w, id);
  w.sock_free(id);
}

// --explain: what inet_hash_connect() decided, in the kernel's terms (its preamble is told
// by inet_hash_connect_dest(), which inet_hash_connect_with() calls before the scan).
static void explain_hash_connect(world& w, sock_id id, const connect_info& i, int err) {
  if (!w.obs || !w.obs->explaining()) return;
  if (!i.autobind) {
    w.obs->explain("__inet_hash_connect",
                   fmt::format("socket bound already (port {}): no autobind, the 4-tuple check decides: {}", w.sk(id).num,
                               err ? "EADDRNOTAVAIL" : "OK"));
    return;
  }
  if (!i.pass)
    w.obs->explain("__inet_hash_connect",
                   fmt::format("{} candidates examined in both passes, none free: EADDRNOTAVAIL", i.examined));
  else
    w.obs->explain("__inet_hash_connect",
                   fmt::format("pass {} found port {} at i = {} ({} candidates in all){}; {} += {}", i.pass,
                               w.sk(id).num, i.i, i.examined, i.tw_recycled ? ", recycling a TIME_WAIT" : "",
                               w.machine_of(w.ns_of(id)).kp.perturb == perturb_layout::none  // ≤ 5.11: one global hint
                                   ? std::string("hint")
                                   : fmt::format("table_perturb[{}]", i.index),
                               i.perturb_inc));
}

// The destination connect() really uses when the caller gave the unspecified address.
// net/ipv6/tcp_ipv6.c: tcp_v6_connect() turns [::] into ::1 (::ffff:127.0.0.1 when the socket
// is bound to a v4-mapped address); net/ipv4/route.c: ip_route_output_key_hash_rcu() turns a
// daddr of 0.0.0.0 into the socket's source address, or 127.0.0.1 when it has none
// (tcp_v4_connect then takes fl4->daddr). Both mean "this host".
inet_addr connect_daddr(const sock& s, const inet_addr& to) {
  if (!to.is_any()) return to;
  if (s.v6 && !to.is_v4()) return s.rcv_saddr.is_v4() ? inet_addr::v4(0x7f000001) : inet_addr{0, 1};
  return s.rcv_saddr.is_v4() && !s.rcv_saddr.is_any() ? s.rcv_saddr.get() : inet_addr::v4(0x7f000001);
}

// net/ipv6/ip6_output.c: ip6_dst_lookup_tail() — an AF_INET6 socket bound to a v4-mapped
// address (::ffff:0.0.0.0 included) has no route to a native IPv6 destination (4.10+); [::]
// passes (052d2369d1b4: "this host", which the callers map to ::ffff:127.0.0.1).
bool v4mapped_src_refused(const world& w, const sock& s, const inet_addr& daddr) {
  return s.v6 && !daddr.is_v4() && !daddr.is_any() && s.rcv_saddr.is_v4() &&
         w.machines[w.nets[s.netns].machine].kp.v4mapped_src_refused;
}

// net/ipv4/tcp_ipv4.c: tcp_v4_connect() (tcp_v6_connect for AF_INET6 sockets): route, fix
// saddr, SYN_SENT, inet_hash_connect(), then tcp_connect() sends the SYN. 0 or an errno.
// `s` is w.sk(id): nothing before tcp_connect() allocates a sock, so it stays valid until then.
static int tcp_v4_connect(world& w, sock_id id, sock& s, const endpoint& to, connect_info& info) {
  // tcp_v4_connect() refuses another family's address; tcp_v6_connect() hands a v4-mapped
  // one to tcp_v4_connect (refused on an IPV6_V6ONLY socket).
  if (!s.v6 && !to.addr.is_v4()) return EAFNOSUPPORT;
  const inet_addr daddr = connect_daddr(s, to.addr);
  if (s.v6 && daddr.is_v4() && s.ipv6only) return ENETUNREACH;
  if (v4mapped_src_refused(w, s, daddr)) return EAFNOSUPPORT;
  const bool wildcard = s.rcv_saddr.is_any();  // [::] or 0.0.0.0: the route picks saddr
  const inet_addr saddr = wildcard ? inet_select_saddr(w.nets[s.netns], daddr) : s.rcv_saddr.get();
  if (saddr.is_any()) return ENETUNREACH;
  if (wildcard) inet_bhash2_update_saddr(w, id, saddr);
  s.daddr = daddr;
  s.dport = to.port;
  w.set_state(id, tcp_state::SYN_SENT);
  const int err = inet_hash_connect(w, id, info);
  w.st.candidates += info.examined;
  if (w.obs) explain_hash_connect(w, id, info, err);
  if (err) {  // failure: tcp_set_state(TCP_CLOSE) (gives back a port bind(0) chose), saddr reset
    w.set_state(id, tcp_state::CLOSE);
    const inet_addr any = s.v6 ? inet_addr{} : kAnyV4;
    if (!(s.userlocks & SOCK_BINDADDR_LOCK)) inet_bhash2_update_saddr(w, id, any);
    s.daddr = any;
    s.dport = 0;
    return err;
  }
  // write_seq from secure_tcp_seq unless a reused TIME_WAIT set it (tcp_twsk_unique).
  if (s.snd_nxt == 0 && !s.snd_lazy) tcp_write_seq_init(w, s, to.addr, to.port);
  tcp_connect(w, id);  // a zero-delay path may finish the handshake before this returns
  return 0;
}

// net/ipv4/af_inet.c: __inet_stream_connect() — the socket layer's state (sock->state)
// decides first: SS_CONNECTED → EISCONN; SS_CONNECTING → EALREADY (or the outcome, if the
// handshake ended meanwhile); SS_UNCONNECTED → a new connect if the sock is CLOSE, else
// EISCONN. A handshake that ended in CLOSE reports sk_err (consumed) or ECONNABORTED, and
// the socket is SS_UNCONNECTED again.
//
// The kernel holds the socket lock through the call: segments that arrive meanwhile (on
// loopback, the whole handshake) wait in the backlog until release_sock(), after the state
// was read. So a non-blocking connect always returns EINPROGRESS, and its outcome is seen by
// the next call. A blocking one waits (EINPROGRESS here; world::app->connect_done() reports).
int inet_stream_connect(world& w, sock_id id, const endpoint& to, bool nonblock, connect_info& info) {
  info = connect_info{};
  int ret;
  sock& s = w.sk(id);
  switch (s.ss) {
    case socket_state::SS_CONNECTED: return EISCONN;
    case socket_state::SS_CONNECTING: ret = EALREADY; break;
    case socket_state::SS_UNCONNECTED: {
      if (s.state != tcp_state::CLOSE) return EISCONN;
      // sk_err is not cleared here (the kernel neither): only sock_error() consumes it.
      s.connect_nonblock = nonblock;
      s.connect_pending = nonblock;  // a non-blocking call's outcome is its own trace record
      if (const int err = tcp_v4_connect(w, id, s, to, info)) {
        s.connect_pending = false;  // a failed connect sent nothing: `s` is still valid
        return err;
      }
      w.sk(id).ss = socket_state::SS_CONNECTING;  // tcp_connect() may have allocated socks
      ret = EINPROGRESS;
      if (nonblock) return ret;  // the handshake's segments wait in the backlog: the next call sees them
      break;
    }
    default: return EINVAL;
  }
  sock& t = w.sk(id);
  if (t.state == tcp_state::SYN_SENT || t.state == tcp_state::SYN_RECV) {
    if (nonblock) return ret;  // EALREADY (EINPROGRESS on the first call)
    t.connect_pending = true;  // inet_wait_for_connect(): world::app->connect_done() reports
    t.connect_nonblock = false;
    return EINPROGRESS;
  }
  return inet_stream_connect_result(w, id);
}

int inet_stream_connect_result(world& w, sock_id id) {
  sock& s = w.sk(id);
  s.connect_pending = false;
  if (s.state == tcp_state::CLOSE) {  // sock_error: the handshake ended in CLOSE
    const int err = s.sk_err ? s.sk_err : ECONNABORTED;
    s.sk_err = 0;
    s.ss = socket_state::SS_UNCONNECTED;
    tcp_disconnect(w, id);  // sk_prot->disconnect(): the automatic source address goes too
    return err;
  }
  s.ss = socket_state::SS_CONNECTED;
  return 0;
}

int inet_listen(world& w, sock_id id, int backlog, bind_info* info) {
  backlog = std::min(backlog, w.ns_of(id).sys.somaxconn);  // net/socket.c: __sys_listen()
  sock& s = w.sk(id);
  // net/ipv4/af_inet.c: inet_listen() — sock->state first: a socket that connected stays
  // SS_CONNECTED after a reset or the peer's close, as does an accepted one (inet_accept); a
  // connect still running is SS_CONNECTING. Debian's 5.10.262, 6.1.192, 6.12.118 and the live
  // 6.18.44 all answer EINVAL (scenarios/edge-listen-after-connect.json, found by oracle-fuzz).
  if (s.ss != socket_state::SS_UNCONNECTED) return EINVAL;
  if (s.state == tcp_state::LISTEN) {
    w.listening[id].backlog = backlog;  // listen() again only changes the backlog
    return 0;
  }
  if (s.state != tcp_state::CLOSE) return EINVAL;
  // The live 6.18.44 kernel (kernel_profile::listen_refused_after_unhash): a socket once in
  // ehash and disconnected since (a refused connect(), AF_UNSPEC) gets its port, below, keeps
  // it, and is refused.
  const bool refused = s.unhashed_once && w.machine_of(w.ns_of(id)).kp.listen_refused_after_unhash;
  // net/ipv4/inet_connection_sock.c: inet_csk_listen_start() re-runs get_port in LISTEN state.
  const tcp_state old = s.state;
  s.state = tcp_state::LISTEN;
  if (const int err = inet_csk_get_port(w, id, s.num, info)) {
    w.sk(id).state = old;
    return err;
  }
  w.sk(id).state = old;
  if (refused) return EINVAL;  // the port stays bound, the state CLOSE (inet_sk_set_state)
  w.set_state(id, tcp_state::LISTEN);
  w.ns_of(id).listeners[w.sk(id).num].push_back(id);
  w.listening[id].backlog = backlog;
  return 0;
}

int inet_csk_accept(world& w, sock_id l, sock_id& child) {
  if (w.sk(l).state != tcp_state::LISTEN) return EINVAL;
  auto& q = w.listening[l].accept_queue;
  if (q.empty()) return EAGAIN;
  child = q.front();
  q.erase(q.begin());
  w.sk(child).ss = socket_state::SS_CONNECTED;  // inet_accept(): newsock->state
  return 0;
}

}  // namespace portsim::net
