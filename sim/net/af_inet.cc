// The syscall layer: net/ipv4/af_inet.c (inet_stream_connect, inet_listen), tcp_ipv4.c
// (tcp_v4_connect), tcp.c (tcp_close) and the zero-delay handshake that stands in for the wire
// until links are modelled.
#include "portsim/net/af_inet.h"

#include <cerrno>

#include "portsim/base/assert.h"
#include "portsim/net/inet_connection_sock.h"
#include "portsim/net/observer.h"

namespace portsim::net {

// include/net/tcp.h: TCP_TIMEWAIT_LEN = 60 s.
constexpr Nanos TCP_TIMEWAIT_LEN = 60 * kNsPerSec;

void world::set_state(sock_id id, tcp_state to) {
  sock& s = sk(id);
  const tcp_state from = s.state;
  if (from == to) return;
  s.state = to;
  if (obs) obs->state_change(*this, id, from, to);
  if (s.hashed) connect_dest_refresh(*this, id);
}

sock_id sys_socket(world& w, uint16_t ns, const cred& c) {
  const sock_id id = w.sock_alloc(ns);
  w.sk(id).uid = c.uid;
  w.sk(id).cap_net_bind_service = c.cap_net_bind_service;
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

namespace {

// The netns that receives a packet for daddr sent from `from`: `from` itself for its own
// addresses (and loopback), else the namespace that owns daddr.
const netns* route_to(const world& w, const netns& from, const inet_addr& daddr) {
  if (from.owns(daddr)) return &from;
  for (const auto& ns : w.nets)
    if (!daddr.is_loopback() && ns.owns(daddr)) return &ns;
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

// The wildcard external endpoint (port 0) or an exact match.
bool external_accepts(const std::vector<external_endpoint>& ext, const endpoint& to) {
  for (const auto& e : ext)
    if (e.addr == to.addr && (e.port == 0 || e.port == to.port)) return true;
  return false;
}

// net/ipv4/tcp.c: tcp_set_state(TCP_CLOSE) + tcp_done(): unhash and release an autobound port
// (a port fixed by bind() stays with the socket until it is closed: SOCK_BINDPORT_LOCK).
void tcp_done(world& w, sock_id id) {
  w.set_state(id, tcp_state::CLOSE);
  inet_ehash_remove(w, id);
  if (!(w.sk(id).userlocks & SOCK_BINDPORT_LOCK)) inet_put_port(w, id);
}

// The socket is gone for good (close() on it, or the last reference dropped).
void sock_destroy(world& w, sock_id id) {
  if (const sock_id p = w.sk(id).peer; p != kNone && w.sk(p).peer == id) w.sk(p).peer = kNone;
  inet_ehash_remove(w, id);
  inet_put_port(w, id);
  w.sock_free(id);
}

// net/ipv4/tcp_minisocks.c: tcp_time_wait() — become a TIME_WAIT socket (substate TIME_WAIT or
// FIN_WAIT2) that keeps ehash and bind-bucket membership, unless tcp_max_tw_buckets is reached:
// then the socket is closed outright (TcpExtTCPTimeWaitOverflow).
void tcp_time_wait(world& w, sock_id id, tcp_state substate, Nanos timeo) {
  netns& ns = w.ns_of(id);
  sock& s = w.sk(id);
  if (s.state != tcp_state::TIME_WAIT) {
    if (ns.tw_count >= uint32_t(ns.sys.tcp_max_tw_buckets)) {  // inet_twsk_alloc() refuses
      ++w.st.tw_overflow;
      w.set_state(id, tcp_state::CLOSE);
      sock_destroy(w, id);
      return;
    }
    ++ns.tw_count;
    w.st.time_wait++;
    w.st.time_wait_peak = std::max(w.st.time_wait_peak, w.st.time_wait);
    s.tw_entry_stamp = uint32_t(w.now / kNsPerMs);  // tcp_time_stamp_ms
    s.tw_substate = substate;
    w.set_state(id, tcp_state::TIME_WAIT);
  } else if (s.tw_substate != substate) {  // FIN_WAIT2 → TIME_WAIT on the peer's FIN
    s.tw_substate = substate;
    if (w.obs) w.obs->state_change(w, id, tcp_state::FIN_WAIT2, tcp_state::TIME_WAIT);
  }
  w.sk(id).orphan = true;
  const uint32_t gen = ++w.sk(id).timer_gen;
  if (w.timers) w.timers->arm(w.now + timeo, timer_kind::timewait, id, gen);
}

}  // namespace

// net/ipv4/inet_timewait_sock.c: inet_twsk_kill() — unhash from ehash and the bind buckets.
void inet_twsk_kill(world& w, sock_id tw) {
  netns& ns = w.ns_of(tw);
  PORTSIM_ASSERT(w.sk(tw).state == tcp_state::TIME_WAIT, "killing a non-TW sock {}", tw);
  --ns.tw_count;
  --w.st.time_wait;
  w.set_state(tw, tcp_state::CLOSE);
  sock_destroy(w, tw);
}

// net/ipv4/tcp_ipv4.c: tcp_twsk_unique() (6.14+: reuse delay in ms from tw_entry_stamp).
bool tcp_twsk_unique(world& w, sock_id sk, sock_id tw, bool have_twp) {
  const netns& ns = w.ns_of(sk);
  const sock& t = w.sk(tw);
  int reuse = ns.sys.tcp_tw_reuse;
  if (t.tw_substate == tcp_state::FIN_WAIT2) reuse = 0;  // orphaned FIN_WAIT2 is never reused
  if (reuse == 2 && !(t.daddr.is_loopback() || t.rcv_saddr.is_loopback())) reuse = 0;
  if (!t.ts_recent) return false;
  const uint32_t now_ms = uint32_t(w.now / kNsPerMs);
  const uint32_t thresh = t.tw_entry_stamp + uint32_t(ns.sys.tcp_tw_reuse_delay);
  const bool after = int32_t(thresh - now_ms) < 0;  // time_after32(now, thresh)
  return !have_twp || (reuse && after);
}

connect_result inet_stream_connect(world& w, sock_id id, const endpoint& to,
                                   const std::vector<external_endpoint>& externals) {
  connect_result res;
  // net/ipv4/af_inet.c: __inet_stream_connect() — only a closed socket may connect.
  switch (w.sk(id).state) {
    case tcp_state::CLOSE: break;
    case tcp_state::SYN_SENT: res.err = EALREADY; return res;
    default: res.err = EISCONN; return res;
  }
  netns& ns = w.ns_of(id);
  // net/ipv4/tcp_ipv4.c: tcp_v4_connect(): route, fix saddr, SYN_SENT, inet_hash_connect().
  const inet_addr saddr = w.sk(id).rcv_saddr.is_any() ? inet_select_saddr(ns, to.addr) : w.sk(id).rcv_saddr;
  if (saddr.is_any()) { res.err = ENETUNREACH; return res; }
  const bool had_saddr = !w.sk(id).rcv_saddr.is_any();
  if (!had_saddr) inet_bhash2_update_saddr(w, id, saddr);
  w.sk(id).daddr = to.addr;
  w.sk(id).dport = to.port;
  w.set_state(id, tcp_state::SYN_SENT);
  ++w.st.connects;
  res.err = inet_hash_connect(w, id, res.info);
  w.st.candidates += res.info.examined;
  if (res.err) {  // tcp_v4_connect's failure path: back to CLOSE, saddr and daddr reset
    w.set_state(id, tcp_state::CLOSE);
    if (!(w.sk(id).userlocks & SOCK_BINDADDR_LOCK)) inet_bhash2_update_saddr(w, id, kAnyV4);
    w.sk(id).daddr = {};
    w.sk(id).dport = 0;
    return res;
  }
  // The handshake, at zero delay.
  const netns* dst = route_to(w, ns, to.addr);
  const sock_id l = dst ? inet_lookup_listener(w, *dst, to.addr, to.port) : kNone;
  if (l != kNone) {
    const sock_id child = w.sock_alloc(dst->id);
    sock& c = w.sk(child);
    const sock& ls = w.sk(l);
    c.uid = ls.uid;
    c.reuse = ls.reuse;
    c.reuseport = ls.reuseport;
    c.listener = l;
    c.rcv_saddr = to.addr;
    c.daddr = saddr;
    c.dport = w.sk(id).num;
    c.ts_recent = w.sk(id).ts_recent = ns.sys.tcp_timestamps && dst->sys.tcp_timestamps;
    inet_inherit_port(w, l, child);
    w.set_state(child, tcp_state::ESTABLISHED);
    inet_ehash_insert(w, child);
    w.accept_queue[l].push_back(child);
    w.sk(child).peer = id;
    w.sk(id).peer = child;
    res.child = child;
  } else if (!dst && external_accepts(externals, to)) {
    w.sk(id).ts_recent = ns.sys.tcp_timestamps != 0;  // a Linux-like peer answers with TS
  } else {  // RST in reply to the SYN: tcp_reset() → ECONNREFUSED
    tcp_done(w, id);
    res.err = ECONNREFUSED;
    return res;
  }
  w.set_state(id, tcp_state::ESTABLISHED);
  ++w.st.connects_ok;
  return res;
}

int inet_listen(world& w, sock_id id, int backlog) {
  (void)backlog;  // the accept-queue limit belongs to the link/lifecycle model
  sock& s = w.sk(id);
  if (s.state == tcp_state::LISTEN) return 0;
  if (s.state != tcp_state::CLOSE) return EINVAL;
  // net/ipv4/inet_connection_sock.c: inet_csk_listen_start() re-runs get_port in LISTEN state.
  const tcp_state old = s.state;
  s.state = tcp_state::LISTEN;
  if (const int err = inet_csk_get_port(w, id, s.num)) {
    s.state = old;
    return err;
  }
  w.sk(id).state = old;
  w.set_state(id, tcp_state::LISTEN);
  w.ns_of(id).listeners[w.sk(id).num].push_back(id);
  return 0;
}

int tcp_close(world& w, sock_id id) {
  sock& s = w.sk(id);
  switch (s.state) {
    case tcp_state::LISTEN: {
      auto& ls = w.ns_of(id).listeners[s.num];
      std::erase(ls, id);
      if (ls.empty()) w.ns_of(id).listeners.erase(s.num);
      w.accept_queue.erase(id);  // unaccepted children stay established (no RST modelled)
      w.set_state(id, tcp_state::CLOSE);
      sock_destroy(w, id);
      return 0;
    }
    case tcp_state::ESTABLISHED: {  // active close: FIN → peer CLOSE_WAIT, we FIN_WAIT2
      const sock_id p = s.peer;
      if (p == kNone) {  // external peer: assumed to close at once, so our FIN_WAIT2 → TIME_WAIT
        w.set_state(id, tcp_state::FIN_WAIT1);
        tcp_time_wait(w, id, tcp_state::TIME_WAIT, TCP_TIMEWAIT_LEN);
        return 0;
      }
      w.set_state(id, tcp_state::FIN_WAIT1);
      w.set_state(p, tcp_state::CLOSE_WAIT);
      // Orphaned FIN_WAIT2 becomes a TW sock of substate FIN_WAIT2 for tcp_fin_timeout.
      tcp_time_wait(w, id, tcp_state::FIN_WAIT2,
                    Nanos(w.ns_of(id).sys.tcp_fin_timeout) * kNsPerSec);
      return 0;
    }
    case tcp_state::CLOSE_WAIT: {  // passive close: LAST_ACK, ACKed at once → CLOSE
      const sock_id p = s.peer;
      w.set_state(id, tcp_state::LAST_ACK);
      if (p != kNone && w.sk(p).state == tcp_state::TIME_WAIT) {
        w.sk(p).peer = kNone;  // the peer's FIN_WAIT2 receives our FIN: TIME_WAIT for 60 s
        tcp_time_wait(w, p, tcp_state::TIME_WAIT, TCP_TIMEWAIT_LEN);
      }
      w.set_state(id, tcp_state::CLOSE);
      sock_destroy(w, id);
      return 0;
    }
    default:  // CLOSE (never connected, or reset): the socket and its port go
      if (s.peer != kNone) w.sk(s.peer).peer = kNone;
      w.set_state(id, tcp_state::CLOSE);
      sock_destroy(w, id);
      return 0;
  }
}

}  // namespace portsim::net
