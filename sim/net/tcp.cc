// net/ipv4/tcp.c (tcp_close, tcp_shutdown), tcp_minisocks.c (tcp_time_wait),
// inet_timewait_sock.c (inet_twsk_kill), tcp_ipv4.c (tcp_twsk_unique): how connections end
// and how long their ports stay taken.
#include <algorithm>
#include <cerrno>
#include <fmt/format.h>

#include "portsim/net/inet_hashtables.h"

#include "portsim/base/assert.h"
#include "portsim/net/af_inet.h"
#include "portsim/net/observer.h"
#include "tcp_internal.h"

namespace portsim::net {

static uint64_t rto_jiffies(world& w, sock_id id) {  // icsk_rto (msecs_to_jiffies rounds up)
  const uint32_t hz = w.machine_of(w.ns_of(id)).hz;
  return (uint64_t(w.sk(id).rto_ms) * hz + 999) / 1000;
}

// include/net/tcp.h: tcp_fin_time() — tcp_fin_timeout (jiffies; TCP_LINGER2 is not modelled),
// at least 3.5·RTO ((rto << 2) - (rto >> 1)): tcp_fin_timeout = 0 still waits ~0.7 s on loopback.
uint64_t tcp_fin_time(world& w, sock_id id) {
  const uint32_t hz = w.machine_of(w.ns_of(id)).hz;
  const uint64_t fin_timeout = uint64_t(std::max(w.ns_of(id).sys.tcp_fin_timeout, 0)) * hz;
  const uint64_t rto = rto_jiffies(w, id);
  return std::max(fin_timeout, (rto << 2) - (rto >> 1));
}

// An orphan whose FIN was ACKed (tcp_rcv_state_process FIN_WAIT1, or tcp_close in FIN_WAIT2):
// tmo = tcp_fin_time(); above TCP_TIMEWAIT_LEN the full socket first waits tmo - 60 s on the
// keepalive timer (tcp_keepalive_timer then makes it a FIN_WAIT2 TW sock for tmo - 60 s more);
// else it becomes a FIN_WAIT2 TW sock for tmo at once. `fin`: the ACK carried the peer's FIN
// too (then the keepalive timer waits tmo and the FIN makes it TIME_WAIT).
void tcp_orphan_fin_wait2(world& w, sock_id id, bool fin) {
  const uint64_t tmo = tcp_fin_time(w, id);
  const uint64_t tw_len = nanos_to_jiffies(TCP_TIMEWAIT_LEN, w.machine_of(w.ns_of(id)).hz);
  if (tmo > tw_len) arm_timer(w, id, timer_kind::keepalive, jiffies_to_nanos(w, id, tmo - tw_len));
  else if (fin) arm_timer(w, id, timer_kind::keepalive, jiffies_to_nanos(w, id, tmo));
  else tcp_time_wait(w, id, tcp_state::FIN_WAIT2, jiffies_to_nanos(w, id, tmo));
}

// net/ipv4/tcp_timer.c: tcp_keepalive_timer() — only its orphaned-FIN_WAIT2 branch (keepalive
// probes are not modelled): tcp_fin_time() - 60 s more as a FIN_WAIT2 TW sock, or an RST.
void tcp_keepalive_timer(world& w, sock_id id) {
  if (w.sk(id).state != tcp_state::FIN_WAIT2 || !w.sk(id).orphan) return;
  const uint64_t tw_len = nanos_to_jiffies(TCP_TIMEWAIT_LEN, w.machine_of(w.ns_of(id)).hz);
  const uint64_t fin_time = tcp_fin_time(w, id);
  if (fin_time > tw_len) {
    tcp_time_wait(w, id, tcp_state::FIN_WAIT2, jiffies_to_nanos(w, id, fin_time - tw_len));
    return;
  }
  tcp_send(w, id, TCPHDR_RST | TCPHDR_ACK);  // tcp_send_active_reset, then death
  tcp_done(w, id);
  sock_destroy(w, id);
}

// net/ipv4/tcp_minisocks.c: tcp_time_wait() — a TIME_WAIT sock (substate TIME_WAIT or
// FIN_WAIT2) takes over the connection's ehash entry and joins its bind buckets; the full
// socket goes through tcp_done() (CLOSE: its own port reference is released unless the port
// was bound explicitly). timeo is at least 3.5·RTO; substate TIME_WAIT always lasts
// TCP_TIMEWAIT_LEN. tcp_max_tw_buckets reached: no TW sock (TcpExtTCPTimeWaitOverflow).
// An orphan's TW sock reuses its id (the full socket is destroyed anyway); a socket the
// application still holds (shutdown(), then the peer's FIN) stays, CLOSE, until close() —
// with an explicitly bound port it keeps that port after its TIME_WAIT is over.
void tcp_time_wait(world& w, sock_id id, tcp_state substate, Nanos timeo) {
  tcp_seq_resolve(w, w.sk(id));  // a TIME_WAIT keeps whole numbers (tcp_tw_isn reads them)
  const uint64_t rto = rto_jiffies(w, id);
  timeo = std::max(timeo, jiffies_to_nanos(w, id, (rto << 2) - (rto >> 1)));
  if (substate == tcp_state::TIME_WAIT) timeo = TCP_TIMEWAIT_LEN;
  netns& ns = w.ns_of(id);
  if (w.sk(id).state == tcp_state::TIME_WAIT) {  // a TW sock already (FIN_WAIT2 → TIME_WAIT)
    if (w.sk(id).tw_substate != substate) {
      w.sk(id).tw_substate = substate;
      if (w.obs) w.obs->state_change(w, id, tcp_state::FIN_WAIT2, tcp_state::TIME_WAIT);
    }
    arm_timer(w, id, timer_kind::timewait, timeo);  // inet_twsk_reschedule()
    return;
  }
  if (ns.tw_count >= uint32_t(ns.sys.tcp_max_tw_buckets)) {  // inet_twsk_alloc() refuses
    ++w.st.tw_overflow;
    tcp_done(w, id);
    if (w.sk(id).orphan) sock_destroy(w, id);
    return;
  }
  sock_id tw = id;
  if (!w.sk(id).orphan) {  // inet_twsk_alloc() + inet_twsk_hashdance_schedule()
    tw = w.sock_alloc(w.sk(id).netns);
    const sock& s = w.sk(id);
    sock& t = w.sk(tw);
    t.rcv_saddr = s.rcv_saddr;
    t.daddr = s.daddr;
    t.dport = s.dport;
    t.uid = s.uid;
    t.reuse = s.reuse;
    t.reuseport = s.reuseport;
    t.v6 = s.v6;
    t.ipv6only = s.ipv6only;
    t.ts_recent = s.ts_recent;
    t.snd_nxt = s.snd_nxt;
    t.rcv_nxt = s.rcv_nxt;
    t.rto_ms = s.rto_ms;
    t.listener = s.listener;
    t.orphan = true;
    const uint32_t t2 = s.tb2;
    if (t2 != kNone) inet_bind_hash(w, tw, w.tb2s[t2].tb, t2, s.num);
    inet_ehash_remove(w, id);
    w.sk(tw).tw_substate = substate;
    w.set_state(tw, tcp_state::TIME_WAIT);
    inet_ehash_insert(w, tw);
    tcp_done(w, id);  // the application's socket: CLOSE
  } else {
    w.sk(tw).tw_substate = substate;
    w.set_state(tw, tcp_state::TIME_WAIT);
  }
  ++ns.tw_count;
  ++w.st.time_wait;
  w.st.time_wait_peak = std::max(w.st.time_wait_peak, w.st.time_wait);
  tcp_tw_stamp(w, tw);  // refreshed on entering true TIME_WAIT (tcp_timewait_state_process)
  arm_timer(w, tw, timer_kind::timewait, timeo);
}

// tcp_minisocks.c: the stamps of a TIME_WAIT sock. tw_entry_stamp = tcp_time_stamp_ms (6.14+)
// in virtual ms; tw_ts_recent_stamp = ktime_get_seconds() (4.19-6.13) — portsim takes it at
// TIME_WAIT entry, when the peer's FIN or ACK arrived. Given the guest's CLOCK_MONOTONIC
// ("call_monotonic_ns", exact replay), that second is the guest's at the call in which the
// segment arrived; otherwise tcp_twsk_unique derives it from tw_entry_stamp (seconds_at).
void tcp_tw_stamp(world& w, sock_id tw) {
  w.sk(tw).tw_entry_stamp = now_ms(w);
  machine& m = w.machine_of(w.ns_of(tw));
  if (m.call_monotonic.empty()) return;
  if (const auto s = m.guest_seconds(w.now)) m.tw_stamp_mono_s[tw] = *s;
  else m.tw_stamp_mono_s.erase(tw);
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

static void explain_twsk_unique(world& w, sock_id sk, sock_id tw, bool have_twp, bool unique);

// Seconds since boot at virtual time `ms` (ktime_get_seconds(); ≤ 4.x get_seconds(), whose
// differences are the same): the machine's uptime at t = 0 plus ms, floored.
static uint64_t seconds_at(const machine& m, uint32_t ms) {
  const uint64_t uptime_ms = (m.jiffies0 - initial_jiffies(m.hz)) * 1000 / m.hz;
  return (uptime_ms + ms) / 1000;
}

// net/ipv4/tcp_ipv4.c: tcp_twsk_unique(). The kernel profile decides three things:
// 6.14+ (19ce8cd30465, tw_reuse_clock::ms_since_entry): reuse once now_ms > tw_entry_stamp +
// tcp_tw_reuse_delay; 4.19 … 6.13 (cca9bab1b72c): once time_after32(ktime_get_seconds(),
// tw_ts_recent_stamp), a new whole second; ≤ 4.18: once get_seconds() - tw_ts_recent_stamp > 1
// (the stamp of the last timestamp received, which portsim takes at TIME_WAIT entry, when the
// peer's FIN or ACK arrived). 6.12+ (0d9e5df4a257; 5.10.227): a FIN_WAIT2-substate TW is never
// reused. 4.18+ (79e9fed46038): reuse == 2 is loopback only; before, any non-zero value enables it.
bool tcp_twsk_unique(world& w, sock_id sk, sock_id tw, bool have_twp) {
  const netns& ns = w.ns_of(sk);
  const kernel_profile& k = w.machine_of(ns).kp;
  const sock& t = w.sk(tw);
  int reuse = ns.sys.tcp_tw_reuse;
  if (k.tw_finwait2_excluded && t.tw_substate == tcp_state::FIN_WAIT2) reuse = 0;  // orphaned FIN_WAIT2
  if (k.tw_reuse_loopback_mode && reuse == 2 && !(t.daddr.is_loopback() || t.rcv_saddr.is_loopback()))
    reuse = 0;  // loopback only
  bool after;
  if (k.tw_clock == tw_reuse_clock::ms_since_entry) {
    const uint32_t thresh = t.tw_entry_stamp + uint32_t(ns.sys.tcp_tw_reuse_delay);
    after = int32_t(thresh - now_ms(w)) < 0;  // time_after32(now, thresh)
  } else {
    const machine& m = w.machine_of(ns);
    const auto guest_now = m.guest_seconds(w.now);  // exact replay: the guest's clock at this connect()
    const auto stamp = m.tw_stamp_mono_s.find(tw);
    const int64_t elapsed = guest_now && stamp != m.tw_stamp_mono_s.end()
                                ? int64_t(*guest_now - stamp->second)
                                : int64_t(seconds_at(m, now_ms(w)) - seconds_at(m, t.tw_entry_stamp));
    after = k.tw_clock == tw_reuse_clock::seconds_after_last_ts ? elapsed > 0  // time_after32(ktime_get_seconds(), stamp)
                                                                : elapsed > 1; // get_seconds() - stamp > 1

  }
  // tw_ts_recent_stamp == 0: no timestamps, no reuse
  const bool unique = t.ts_recent && (!have_twp || (reuse && after));
  if (w.obs && w.obs->explaining()) explain_twsk_unique(w, sk, tw, have_twp, unique);
  if (unique) {  // write_seq continues the TIME_WAIT's sequence space
    w.sk(sk).snd_nxt = tcp_tw_isn(t.snd_nxt);
    w.sk(sk).snd_lazy = false;
  }
  return unique;
}

static void explain_twsk_unique(world& w, sock_id sk, sock_id tw, bool have_twp, bool unique) {
  const netns& ns = w.ns_of(sk);
  const sock& t = w.sk(tw);
  const int sysctl = ns.sys.tcp_tw_reuse, delay = ns.sys.tcp_tw_reuse_delay;
  const uint32_t age = now_ms(w) - t.tw_entry_stamp;
  std::string why;
  if (!t.ts_recent)
    why = "no timestamps on that connection (tw_ts_recent_stamp 0): never reused";
  else if (!have_twp)
    why = "the socket is bound already: only timestamps are required";
  else if (t.tw_substate == tcp_state::FIN_WAIT2 && w.machine_of(ns).kp.tw_finwait2_excluded)
    why = "substate FIN_WAIT2 (orphaned, peer has not closed): never reused";
  else if (sysctl == 0)
    why = "net.ipv4.tcp_tw_reuse = 0";
  else if (sysctl == 2 && w.machine_of(ns).kp.tw_reuse_loopback_mode && !(t.daddr.is_loopback() || t.rcv_saddr.is_loopback()))
    why = "net.ipv4.tcp_tw_reuse = 2 reuses only loopback connections, and neither address is loopback";
  else if (w.machine_of(ns).kp.tw_clock == tw_reuse_clock::seconds_since_last_ts)
    why = fmt::format("{} ms in TIME_WAIT; before 4.19 reuse needs more than one whole second since the last "
                      "timestamp (get_seconds() - tw_ts_recent_stamp > 1): {}", age, unique ? "yes" : "not yet");
  else if (w.machine_of(ns).kp.tw_clock == tw_reuse_clock::seconds_after_last_ts)
    why = fmt::format("{} ms in TIME_WAIT; 4.19-6.13 reuse needs a new second since the last timestamp "
                      "(time_after32(ktime_get_seconds(), tw_ts_recent_stamp)): {}", age, unique ? "yes" : "not yet");
  else if (!unique && int64_t(age) < delay)
    why = fmt::format("{} ms in TIME_WAIT: younger than tcp_tw_reuse_delay {} ms by {} ms", age, delay,
                      delay - int64_t(age));
  else if (!unique)
    why = fmt::format("{} ms in TIME_WAIT: exactly tcp_tw_reuse_delay, and reuse needs strictly more (time_after32)", age);
  else
    why = fmt::format("{} ms in TIME_WAIT > tcp_tw_reuse_delay {} ms, timestamps on, tcp_tw_reuse = {}", age, delay,
                      sysctl);
  w.obs->explain("tcp_twsk_unique", fmt::format("{} {}: {}", w.obs->sock_name(w, tw),
                                                unique ? "recycled" : "not recycled", why));
}

namespace {
void inet_csk_listen_stop(world& w, sock_id l);
}  // namespace

// net/ipv4/tcp.c: tcp_disconnect() — the RFC 793 ABORT: CLOSE (tcp_set_state gives back a port
// that was not bound explicitly), an RST from the states tcp_need_reset() names
// (ESTABLISHED, CLOSE_WAIT, FIN_WAIT1, FIN_WAIT2, SYN_RECV; CLOSING and LAST_ACK only with
// unsent data, which is not modelled), sk_err ECONNRESET, timers stopped, the destination and
// an automatic source address forgotten. The socket stays (SS_UNCONNECTED).
int tcp_disconnect(world& w, sock_id id) {
  const tcp_state old = w.sk(id).state;
  if (old == tcp_state::LISTEN) inet_csk_listen_stop(w, id);  // before CLOSE gives the port back
  if (old != tcp_state::CLOSE) w.set_state(id, tcp_state::CLOSE);
  switch (old) {
    case tcp_state::ESTABLISHED: case tcp_state::CLOSE_WAIT: case tcp_state::FIN_WAIT1:
    case tcp_state::FIN_WAIT2: case tcp_state::SYN_RECV:
      tcp_send(w, id, TCPHDR_RST | TCPHDR_ACK);
      w.sk(id).sk_err = ECONNRESET;
      break;
    case tcp_state::SYN_SENT: w.sk(id).sk_err = ECONNRESET; break;
    default: break;
  }
  ++w.sk(id).timer_gen;  // tcp_clear_xmit_timers()
  w.sk(id).shut_wr = false;  // sk_shutdown = 0
  w.sk(id).dport = 0;
  const inet_addr any = w.sk(id).v6 ? inet_addr{} : kAnyV4;
  if (!(w.sk(id).userlocks & SOCK_BINDADDR_LOCK)) inet_bhash2_update_saddr(w, id, any);  // inet_bhash2_reset_saddr
  return 0;
}

namespace {
// SO_LINGER {1, 0}: __tcp_close() calls tcp_disconnect(); the orphan is then destroyed.
void tcp_abort_close(world& w, sock_id id) {
  tcp_disconnect(w, id);
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
    case tcp_state::ESTABLISHED: case tcp_state::CLOSE_WAIT:  // FIN_WAIT1 / LAST_ACK, send FIN
      if (tcp_close_state(w, id)) tcp_send_fin(w, id);
      return 0;
    case tcp_state::FIN_WAIT2:  // after shutdown(): tcp_fin_time() and the > 60 s keepalive split
      tcp_orphan_fin_wait2(w, id, false);
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

// net/ipv4/af_inet.c: inet_shutdown(SHUT_WR) and net/ipv4/tcp.c: tcp_shutdown(). A socket
// still SS_CONNECTING is SS_DISCONNECTING if its handshake has not ended, else SS_CONNECTED.
// CLOSE: ENOTCONN. LISTEN: nothing (only SHUT_RD stops a listener), 0. SYN_SENT: the connect is
// aborted (tcp_disconnect: port given back unless bound explicitly, sk_err ECONNRESET), 0.
// ESTABLISHED / CLOSE_WAIT: our FIN (FIN_WAIT1 / LAST_ACK); other states: nothing, 0. Every
// state but LISTEN and SYN_SENT keeps SEND_SHUTDOWN in sk_shutdown (shut_wr), CLOSE too (its
// ENOTCONN comes after the write), until tcp_disconnect() clears it: a simultaneous open
// completed later sends its FIN at once (tcp_rcv_state_process, TCP_SYN_RECV).
int tcp_shutdown(world& w, sock_id id) {
  sock& s = w.sk(id);
  if (s.ss == socket_state::SS_CONNECTING)
    s.ss = (s.state == tcp_state::SYN_SENT || s.state == tcp_state::SYN_RECV || s.state == tcp_state::CLOSE)
               ? socket_state::SS_DISCONNECTING
               : socket_state::SS_CONNECTED;
  switch (s.state) {
    case tcp_state::CLOSE: s.shut_wr = true; return ENOTCONN;
    case tcp_state::LISTEN: return 0;
    case tcp_state::SYN_SENT: {
      tcp_disconnect(w, id);
      w.sk(id).ss = socket_state::SS_UNCONNECTED;
      tcp_connect_finish(w, id, ECONNRESET);  // a blocking connect() waiting on it wakes
      w.sk(id).ss = socket_state::SS_UNCONNECTED;
      return 0;
    }
    default: break;
  }
  s.shut_wr = true;
  if (tcp_close_state(w, id)) tcp_send_fin(w, id);
  return 0;
}

bool tcp_close_state(world& w, sock_id id) {
  switch (w.sk(id).state) {
    case tcp_state::ESTABLISHED: w.set_state(id, tcp_state::FIN_WAIT1); return true;
    case tcp_state::CLOSE_WAIT: w.set_state(id, tcp_state::LAST_ACK); return true;
    default: return false;
  }
}

void external_close(world& w, sock_id id) {
  const sock& s = w.sk(id);
  segment out = reverse_of(segment_of(s), kExternalNs);
  out.seq = s.rcv_nxt;
  out.ack = s.snd_nxt;
  out.seq_lazy = s.rcv_lazy;
  out.ack_lazy = s.snd_lazy;
  out.flags = TCPHDR_FIN | TCPHDR_ACK;
  out.ts = s.ts_recent;
  if (w.net_wire) w.net_wire->xmit(out);
}

bool external_ignores(const external_endpoint& ep, const segment& in) {
  if (ep.answer == external_answer::silent || (in.flags & TCPHDR_RST)) return true;
  return ep.answer != external_answer::refuse && !(in.flags & (TCPHDR_SYN | TCPHDR_FIN));
}

void external_rcv(world& w, const segment& in) {
  const int idx = w.find_external(in.daddr, in.dport);
  if (idx >= 0) external_rcv(w, w.externals[size_t(idx)], in);
}

void external_rcv(world& w, const external_endpoint& ep, const segment& in) {
  segment out;
  if (external_reply(w, ep, in, out) && w.net_wire) w.net_wire->xmit(out);
}

bool external_reply(world& w, const external_endpoint& ep, const segment& in, segment& out) {
  if (external_ignores(ep, in)) return false;
  out = reverse_of(in, kExternalNs);
  out.ts = in.ts;  // a Linux peer with tcp_timestamps on echoes the timestamps it was offered
  if (ep.answer == external_answer::refuse) {
    out.flags = TCPHDR_RST | TCPHDR_ACK;
    out.ts = false;
    out.ack = in.seq + 1;
    out.ack_lazy = in.seq_lazy;
    return true;
  }
  if (in.flags & TCPHDR_SYN) {  // a Linux server: its ISN from secure_tcp_seq
    out.flags = TCPHDR_SYN | TCPHDR_ACK;
    tcp_external_isn(w, in, out);
  } else {  // a FIN: it closes at once, its FIN acknowledges ours
    out.flags = TCPHDR_FIN | TCPHDR_ACK;
    out.seq = in.ack;
    out.seq_lazy = in.ack_lazy;
  }
  out.ack = in.seq + 1;
  out.ack_lazy = in.seq_lazy;
  return true;
}

}  // namespace portsim::net
