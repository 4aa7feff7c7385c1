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
  if (s.hashed) connect_dest_refresh(*this, id);
}

sock_id sys_socket(world& w, uint16_t ns, const cred& c, family f) {
  const sock_id id = w.sock_alloc(ns);
  sock& s = w.sk(id);
  s.uid = c.uid;
  s.cap_net_bind_service = c.cap_net_bind_service;
  if (f == family::inet6) {  // AF_INET6: unbound at [::]
    s.v6 = true;
    s.rcv_saddr = s.daddr = inet_addr{};
  }
  return id;
}

// Route lookup (ip_route_connect → fib): the local address itself for a local destination,
// 127.0.0.1 / ::1 for loopback, else the address whose subnet holds daddr, else the first
// address of the family (default route). Unspecified (any) when there is no route.
inet_addr inet_select_saddr(const netns& ns, const inet_addr& daddr) {
  if (daddr.is_loopback()) return daddr.is_v4() ? inet_addr::v4(0x7f000001) : inet_addr{0, 1};
  if (ns.owns(daddr)) return daddr;
  for (const auto& ia : ns.addrs)
    if (ia.contains(daddr)) return ia.addr;
  for (const auto& ia : ns.addrs)
    if (ia.addr.is_v4() == daddr.is_v4()) return ia.addr;
  return daddr.is_v4() ? kAnyV4 : inet_addr{};
}

const netns* route_to(const world& w, const netns& from, const inet_addr& daddr) {
  if (from.owns(daddr)) return &from;
  if (daddr.is_loopback()) return nullptr;
  for (const auto& ns : w.nets)
    if (ns.owns(daddr)) return &ns;
  return nullptr;
}

// net/ipv4/inet_hashtables.c: __inet_lookup_listener() — an exact-address listener scores
// above a wildcard one (compute_score). SO_REUSEPORT group selection is not modelled: the
// first best-scoring socket answers.
sock_id inet_lookup_listener(const world& w, const netns& ns, const inet_addr& daddr, uint16_t dport) {
  auto it = ns.listeners.find(dport);
  if (it == ns.listeners.end()) return kNone;
  sock_id best = kNone;
  int best_score = -1;
  for (sock_id l : it->second) {
    const sock& s = w.sk(l);
    int score = -1;
    if (s.rcv_saddr == daddr) score = 2;
    else if (s.rcv_saddr.is_any() && (s.rcv_saddr.is_v4() == daddr.is_v4() || !s.ipv6only)) score = 1;
    if (score > best_score) { best = l; best_score = score; }
  }
  return best;
}

void tcp_done(world& w, sock_id id) {
  w.set_state(id, tcp_state::CLOSE);
  ++w.sk(id).timer_gen;  // no timer survives CLOSE
  inet_ehash_remove(w, id);
  if (!(w.sk(id).userlocks & SOCK_BINDPORT_LOCK)) inet_put_port(w, id);
}

void sock_destroy(world& w, sock_id id) {
  if (const sock_id p = w.sk(id).peer; p != kNone && w.sk(p).peer == id) w.sk(p).peer = kNone;
  inet_ehash_remove(w, id);
  inet_put_port(w, id);
  w.sock_free(id);
}

// --explain: what inet_hash_connect() decided, in the kernel's terms (its preamble is told
// by inet_hash_connect_with() before the scan).
static void explain_hash_connect(world& w, sock_id id, const connect_info& i, int err) {
  if (!w.obs || !w.obs->explaining()) return;
  if (!i.autobind) {
    w.obs->explain("__inet_check_established",
                   fmt::format("socket already bound to port {}: only the 4-tuple is checked: {}", w.sk(id).num,
                               err ? "in use, EADDRNOTAVAIL" : "unique"));
    return;
  }
  if (!i.pass)
    w.obs->explain("__inet_hash_connect",
                   fmt::format("{} candidates examined in both passes, none free: EADDRNOTAVAIL", i.examined));
  else
    w.obs->explain("__inet_hash_connect",
                   fmt::format("pass {} found port {} at i = {} ({} candidates in all){}; table_perturb[{}] += {}", i.pass,
                               w.sk(id).num, i.i, i.examined, i.tw_recycled ? ", recycling a TIME_WAIT" : "", i.index,
                               i.perturb_inc));
}

connect_result inet_stream_connect(world& w, sock_id id, const endpoint& to) {
  connect_result res;
  // net/ipv4/af_inet.c: __inet_stream_connect() — only a closed socket may connect.
  switch (w.sk(id).state) {
    case tcp_state::CLOSE: break;
    case tcp_state::SYN_SENT: res.err = EALREADY; return res;
    default: res.err = EISCONN; return res;
  }
  // net/ipv4/tcp_ipv4.c: tcp_v4_connect() refuses another family's address; tcp_v6_connect()
  // hands a v4-mapped one to tcp_v4_connect (refused on an IPV6_V6ONLY socket).
  if (!w.sk(id).v6 && !to.addr.is_v4()) { res.err = EAFNOSUPPORT; return res; }
  if (w.sk(id).v6 && to.addr.is_v4() && w.sk(id).ipv6only) { res.err = ENETUNREACH; return res; }
  netns& ns = w.ns_of(id);
  // net/ipv4/tcp_ipv4.c: tcp_v4_connect(): route, fix saddr, SYN_SENT, inet_hash_connect().
  const inet_addr saddr = w.sk(id).rcv_saddr.is_any() ? inet_select_saddr(ns, to.addr) : w.sk(id).rcv_saddr;
  if (saddr.is_any()) { res.err = ENETUNREACH; return res; }
  if (w.sk(id).rcv_saddr.is_any()) inet_bhash2_update_saddr(w, id, saddr);  // [::] or 0.0.0.0
  w.sk(id).daddr = to.addr;
  w.sk(id).dport = to.port;
  w.set_state(id, tcp_state::SYN_SENT);
  res.err = inet_hash_connect(w, id, res.info);
  w.st.candidates += res.info.examined;
  explain_hash_connect(w, id, res.info, res.err);
  if (res.err) {  // tcp_v4_connect's failure path: back to CLOSE, saddr and daddr reset
    w.set_state(id, tcp_state::CLOSE);
    const inet_addr any = w.sk(id).v6 ? inet_addr{} : kAnyV4;
    if (!(w.sk(id).userlocks & SOCK_BINDADDR_LOCK)) inet_bhash2_update_saddr(w, id, any);
    w.sk(id).daddr = any;
    w.sk(id).dport = 0;
    return res;
  }
  // tcp_v4_connect(): write_seq from secure_tcp_seq unless a reused TIME_WAIT set it.
  if (w.sk(id).snd_nxt == 0)
    w.sk(id).snd_nxt = tcp_init_seq(w, w.sk(id).netns, w.sk(id).rcv_saddr, w.sk(id).num, to.addr, to.port);
  w.sk(id).connect_pending = true;
  tcp_connect(w, id);  // a zero-delay path may finish the handshake before this returns
  if (w.sk(id).connect_pending) {
    res.err = EINPROGRESS;
  } else {
    res.err = w.sk(id).sk_err;
    w.sk(id).sk_err = 0;
  }
  return res;
}

int inet_listen(world& w, sock_id id, int backlog, bind_info* info) {
  backlog = std::min(backlog, w.ns_of(id).sys.somaxconn);  // net/socket.c: __sys_listen()
  sock& s = w.sk(id);
  if (s.state == tcp_state::LISTEN) {
    w.listening[id].backlog = backlog;  // listen() again only changes the backlog
    return 0;
  }
  if (s.state != tcp_state::CLOSE) return EINVAL;
  // net/ipv4/inet_connection_sock.c: inet_csk_listen_start() re-runs get_port in LISTEN state.
  const tcp_state old = s.state;
  s.state = tcp_state::LISTEN;
  if (const int err = inet_csk_get_port(w, id, s.num, info)) {
    w.sk(id).state = old;
    return err;
  }
  w.sk(id).state = old;
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
  return 0;
}

}  // namespace portsim::net
