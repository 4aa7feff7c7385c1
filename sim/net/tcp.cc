// net/ipv4/tcp.c (tcp_close, tcp_shutdown), tcp_minisocks.c (tcp_time_wait),
// inet_timewait_sock.c (inet_twsk_kill), tcp_ipv4.c (tcp_twsk_unique): how connections end
// and how long their ports stay taken.
#include <algorithm>
#include <cerrno>

#include "portsim/base/assert.h"
#include "portsim/net/af_inet.h"
#include "tcp_internal.h"

namespace portsim::net {

// net/ipv4/tcp_minisocks.c: tcp_time_wait() — the socket becomes a TIME_WAIT sock (substate
// TIME_WAIT or FIN_WAIT2) that keeps its ehash entry and its bind buckets, unless
// tcp_max_tw_buckets is reached: then it is closed outright (TcpExtTCPTimeWaitOverflow).
void tcp_time_wait(world& w, sock_id id, tcp_state substate, Nanos timeo) {
  netns& ns = w.ns_of(id);
  if (w.sk(id).state != tcp_state::TIME_WAIT) {
    if (ns.tw_count >= uint32_t(ns.sys.tcp_max_tw_buckets)) {  // inet_twsk_alloc() refuses
      ++w.st.tw_overflow;
      tcp_done(w, id);
      sock_destroy(w, id);
      return;
    }
    ++ns.tw_count;
    ++w.st.time_wait;
    w.st.time_wait_peak = std::max(w.st.time_wait_peak, w.st.time_wait);
    w.sk(id).tw_entry_stamp = now_ms(w);  // tcp_time_stamp_ms
    w.sk(id).tw_substate = substate;
    w.set_state(id, tcp_state::TIME_WAIT);
  } else if (w.sk(id).tw_substate != substate) {  // FIN_WAIT2 → TIME_WAIT on the peer's FIN
    w.sk(id).tw_substate = substate;
    if (w.obs) w.obs->state_change(w, id, tcp_state::FIN_WAIT2, tcp_state::TIME_WAIT);
  }
  w.sk(id).orphan = true;  // the full socket is gone; only the TW sock remains
  arm_timer(w, id, timer_kind::timewait, timeo);
}

// net/ipv4/inet_timewait_sock.c: inet_twsk_kill() — unhash from ehash and the bind buckets.
void inet_twsk_kill(world& w, sock_id tw) {
  netns& ns = w.ns_of(tw);
  PORTSIM_ASSERT(w.sk(tw).state == tcp_state::TIME_WAIT, "killing a non-TW sock {}", tw);
  --ns.tw_count;
  --w.st.time_wait;
  w.set_state(tw, tcp_state::CLOSE);
  sock_destroy(w, tw);
}

// net/ipv4/tcp_ipv4.c: tcp_twsk_unique() (6.14+: the reuse delay counts in ms from
// tw_entry_stamp, net.ipv4.tcp_tw_reuse_delay).
bool tcp_twsk_unique(world& w, sock_id sk, sock_id tw, bool have_twp) {
  const netns& ns = w.ns_of(sk);
  const sock& t = w.sk(tw);
  int reuse = ns.sys.tcp_tw_reuse;
  if (t.tw_substate == tcp_state::FIN_WAIT2) reuse = 0;  // orphaned FIN_WAIT2 is never reused
  if (reuse == 2 && !(t.daddr.is_loopback() || t.rcv_saddr.is_loopback())) reuse = 0;  // loopback only
  if (!t.ts_recent) return false;  // tw_ts_recent_stamp == 0: no timestamps, no reuse
  const uint32_t thresh = t.tw_entry_stamp + uint32_t(ns.sys.tcp_tw_reuse_delay);
  const bool after = int32_t(thresh - now_ms(w)) < 0;  // time_after32(now, thresh)
  if (have_twp && !(reuse && after)) return false;
  w.sk(sk).snd_nxt = tcp_tw_isn(t.snd_nxt);  // write_seq continues the TIME_WAIT's sequence space
  return true;
}

namespace {
// SO_LINGER {1, 0}: tcp_disconnect() — RST from the states that have a peer, no TIME_WAIT.
void tcp_abort_close(world& w, sock_id id) {
  switch (w.sk(id).state) {
    case tcp_state::ESTABLISHED: case tcp_state::CLOSE_WAIT: case tcp_state::FIN_WAIT1:
    case tcp_state::FIN_WAIT2: case tcp_state::SYN_RECV: case tcp_state::CLOSING: case tcp_state::LAST_ACK:
      tcp_send(w, id, TCPHDR_RST | TCPHDR_ACK);
      break;
    default: break;
  }
  tcp_done(w, id);
  sock_destroy(w, id);
}

// net/ipv4/inet_connection_sock.c: inet_csk_listen_stop() — unaccepted children are reset.
void inet_csk_listen_stop(world& w, sock_id l) {
  auto& ls = w.ns_of(l).listeners[w.sk(l).num];
  std::erase(ls, l);
  if (ls.empty()) w.ns_of(l).listeners.erase(w.sk(l).num);
  std::vector<sock_id> children = std::move(w.listening[l].accept_queue);
  w.listening.erase(l);
  for (sock_id c : children) {
    w.sk(c).orphan = true;
    tcp_abort_close(w, c);
  }
  // Requests still in SYN_RECV keep pointing at a listener that is gone: they die with their
  // SYN-ACK timer (the kernel drops them at once; the port release is the same).
  for (sock_id i = 0; i < w.socks.size(); ++i)
    if (w.sk(i).alive && w.sk(i).listener == l && w.sk(i).state == tcp_state::SYN_RECV) {
      w.set_state(i, tcp_state::CLOSE);
      sock_destroy(w, i);
    }
}
}  // namespace

// net/ipv4/tcp.c: tcp_close() — the application lets go of the socket.
int tcp_close(world& w, sock_id id) {
  w.sk(id).orphan = true;
  w.sk(id).connect_pending = false;
  if (w.sk(id).linger0 && w.sk(id).state != tcp_state::LISTEN) {
    tcp_abort_close(w, id);
    return 0;
  }
  switch (w.sk(id).state) {
    case tcp_state::LISTEN:
      inet_csk_listen_stop(w, id);
      w.set_state(id, tcp_state::CLOSE);
      sock_destroy(w, id);
      return 0;
    case tcp_state::ESTABLISHED:  // tcp_close_state(): FIN_WAIT1, send FIN
      w.set_state(id, tcp_state::FIN_WAIT1);
      tcp_send_fin(w, id);
      return 0;
    case tcp_state::CLOSE_WAIT:  // LAST_ACK, send FIN
      w.set_state(id, tcp_state::LAST_ACK);
      tcp_send_fin(w, id);
      return 0;
    case tcp_state::FIN_WAIT2:  // after shutdown(): the orphan becomes a FIN_WAIT2 TW sock
      tcp_time_wait(w, id, tcp_state::FIN_WAIT2, Nanos(w.ns_of(id).sys.tcp_fin_timeout) * kNsPerSec);
      return 0;
    case tcp_state::FIN_WAIT1: case tcp_state::CLOSING: case tcp_state::LAST_ACK:
    case tcp_state::TIME_WAIT:
      return 0;  // already closing: the orphan finishes on its own
    case tcp_state::SYN_SENT: case tcp_state::SYN_RECV: case tcp_state::CLOSE:
    case tcp_state::NEW_SYN_RECV:
      tcp_done(w, id);
      sock_destroy(w, id);
      return 0;
  }
  return 0;
}

// net/ipv4/tcp.c: tcp_shutdown(SHUT_WR) — send our FIN but keep the socket.
int tcp_shutdown(world& w, sock_id id) {
  switch (w.sk(id).state) {
    case tcp_state::ESTABLISHED:
      w.set_state(id, tcp_state::FIN_WAIT1);
      break;
    case tcp_state::CLOSE_WAIT:
      w.set_state(id, tcp_state::LAST_ACK);
      break;
    case tcp_state::SYN_SENT: case tcp_state::LISTEN: case tcp_state::CLOSE:
      return ENOTCONN;
    default:
      return 0;
  }
  w.sk(id).shut_wr = true;
  tcp_send_fin(w, id);
  return 0;
}

void external_close(world& w, sock_id id) {
  const sock& s = w.sk(id);
  segment out = reverse_of(segment_of(s), kExternalNs);
  out.seq = s.rcv_nxt;
  out.ack = s.snd_nxt;
  out.flags = TCPHDR_FIN | TCPHDR_ACK;
  if (w.net_wire) w.net_wire->xmit(out);
}

void external_rcv(world& w, const segment& in) {
  const int idx = w.find_external(in.daddr, in.dport);
  const external_endpoint* ep = idx < 0 ? nullptr : &w.externals[size_t(idx)];
  if (!ep || ep->answer == external_answer::silent || (in.flags & TCPHDR_RST)) return;
  segment out = reverse_of(in, kExternalNs);
  if (ep->answer == external_answer::refuse) {
    out.flags = TCPHDR_RST | TCPHDR_ACK;
    out.ack = in.seq + 1;
    if (w.net_wire) w.net_wire->xmit(out);
    return;
  }
  if (in.flags & TCPHDR_SYN) {  // a Linux server: its ISN from secure_tcp_seq
    out.flags = TCPHDR_SYN | TCPHDR_ACK;
    out.seq = tcp_init_seq(w.external_secret, w.external_realtime0 + uint64_t(w.now), out.saddr, out.sport,
                           out.daddr, out.dport);
    out.ack = in.seq + 1;
  } else if (in.flags & TCPHDR_FIN) {  // it closes at once: its FIN acknowledges ours
    out.flags = TCPHDR_FIN | TCPHDR_ACK;
    out.seq = in.ack;
    out.ack = in.seq + 1;
  } else {
    return;  // plain ACKs need no answer
  }
  if (w.net_wire) w.net_wire->xmit(out);
}

}  // namespace portsim::net
