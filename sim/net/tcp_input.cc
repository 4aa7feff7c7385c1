// net/ipv4/tcp_ipv4.c (tcp_v4_rcv), tcp_input.c (tcp_rcv_state_process,
// tcp_rcv_synsent_state_process), tcp_minisocks.c (tcp_check_req,
// tcp_timewait_state_process): what a segment does to the socket it reaches.
#include <cerrno>

#include "portsim/net/af_inet.h"
#include "tcp_internal.h"

namespace portsim::net {

// The handshake ended: sk_err records a failure (tcp_reset(), tcp_write_err()); a blocking
// connect() wakes and finishes (__inet_stream_connect's tail); a non-blocking one only learns
// it at its next connect() — the trace still gets a connect_done record now.
void tcp_connect_finish(world& w, sock_id id, int err) {
  sock& s = w.sk(id);
  if (err) s.sk_err = uint8_t(err);
  if (!s.connect_pending) return;
  s.connect_pending = false;
  if (!s.connect_nonblock) err = inet_stream_connect_result(w, id);
  if (w.app) w.app->connect_done(id, err);
}

void tcp_child_established(world& w, sock_id child) {
  w.set_state(child, tcp_state::ESTABLISHED);
  ++w.sk(child).timer_gen;  // the SYN-ACK timer stops
  const sock_id l = w.sk(child).listener;
  if (l != kNone && w.listening.count(l)) {
    w.listening[l].accept_queue.push_back(child);
    if (w.app) w.app->accept_ready(l, child);
  }
}

namespace {

bool acceptq_is_full(world& w, sock_id l) {  // sk_acceptq_is_full(): ack_backlog > max
  const auto& li = w.listening[l];
  return int(li.accept_queue.size()) > li.backlog;
}

// net/ipv4/tcp_input.c: tcp_conn_request() — a SYN for a listener: a request (modelled as a
// child in SYN_RECV, kept in ehash) and a SYN-ACK; dropped when the accept queue is full.
// `tw_isn`: the ISN a reopened TIME_WAIT hands over (TCP_SKB_CB(skb)->tcp_tw_isn), 0 if none.
void tcp_conn_request(world& w, uint16_t ns, sock_id l, const segment& in, uint32_t tw_isn) {
  if (acceptq_is_full(w, l)) return;  // the SYN is dropped silently; the client retransmits
  const sock_id child = w.sock_alloc(ns);
  sock& c = w.sk(child);
  const sock& ls = w.sk(l);
  c.uid = ls.uid;
  c.reuse = ls.reuse;
  c.reuseport = ls.reuseport;
  c.v6 = ls.v6;  // tcp_v6_syn_recv_sock(): an AF_INET6 listener's children are AF_INET6
  c.ipv6only = ls.ipv6only;
  c.listener = l;
  c.rcv_saddr = in.daddr;
  c.daddr = in.saddr;
  c.dport = in.sport;
  c.rcv_nxt = in.seq + 1;
  c.snd_nxt = (tw_isn ? tw_isn : tcp_init_seq(w, ns, in.daddr, in.dport, in.saddr, in.sport)) + 1;
  // tcp_parse_options() on a SYN honours its TSval only when this netns has tcp_timestamps on;
  // the SYN-ACK echoes timestamps only then (ireq->tstamp_ok).
  c.ts_recent = in.ts && w.nets[ns].sys.tcp_timestamps != 0;
  c.retransmits = 0;
  c.rto_ms = TCP_TIMEOUT_INIT_MS;
  c.rto_max_ms = ls.rto_max_ms;
  c.retrans_stamp = now_ms(w);  // the SYN-ACK's send time: the RTT sample at the ACK
  inet_inherit_port(w, l, child);
  w.set_state(child, tcp_state::SYN_RECV);
  inet_ehash_insert(w, child);
  tcp_send(w, child, TCPHDR_SYN | TCPHDR_ACK);  // armed after sending: see tcp_connect()
  if (w.sk(child).alive && w.sk(child).state == tcp_state::SYN_RECV)
    arm_timer(w, child, timer_kind::retransmit, Nanos(TCP_TIMEOUT_INIT_MS) * kNsPerMs);
}

// An orphan that reaches CLOSE is destroyed; an application's socket stays (closed) until
// close() — the kernel's sock_orphan()/inet_csk_destroy_sock() distinction.
void tcp_close_state_reached(world& w, sock_id id) {
  tcp_done(w, id);
  if (w.sk(id).orphan) sock_destroy(w, id);
}

enum class tcp_tw_status { SUCCESS, RST, ACK, SYN };

// net/ipv4/tcp_minisocks.c: tcp_timewait_state_process(). Segments are taken as in window and a
// new SYN as after rcv_nxt (ISNs grow with time: secure_tcp_seq).
// The TSval of a segment is parsed only if the TW sock has timestamps (tw_ts_recent_stamp).
tcp_tw_status tcp_timewait_state_process(world& w, sock_id id, const segment& in) {
  sock& s = w.sk(id);
  const bool saw_tstamp = in.ts && s.ts_recent;
  if (s.tw_substate == tcp_state::FIN_WAIT2) {  // repeats tcp_rcv_state_process's checks
    if (in.flags & TCPHDR_RST) {
      inet_twsk_kill(w, id);
      return tcp_tw_status::SUCCESS;
    }
    if (in.flags & TCPHDR_SYN) return tcp_tw_status::RST;
    if (!(in.flags & TCPHDR_ACK) || !(in.flags & TCPHDR_FIN)) return tcp_tw_status::SUCCESS;  // dup ACK
    // FIN: a true TIME_WAIT now. 6.14+: the entry stamp (tcp_tw_reuse_delay counts from it)
    // is renewed, with tw_ts_recent_stamp, only when the FIN carried a timestamp.
    s.rcv_nxt = in.seq + 1;
    if (saw_tstamp) tcp_tw_stamp(w, id);  // tw_ts_recent_stamp = ktime_get_seconds()
    tcp_time_wait(w, id, tcp_state::TIME_WAIT, TCP_TIMEWAIT_LEN);  // substate, inet_twsk_reschedule
    return tcp_tw_status::ACK;
  }
  const bool pure = !(in.flags & (TCPHDR_SYN | TCPHDR_FIN));
  if (in.seq == s.rcv_nxt && pure) {  // in window: an RST or a bare ACK
    if (in.flags & TCPHDR_RST) {  // TIME_WAIT assassination (tcp_rfc1337 = 0)
      inet_twsk_kill(w, id);
      return tcp_tw_status::SUCCESS;
    }
    tcp_time_wait(w, id, tcp_state::TIME_WAIT, TCP_TIMEWAIT_LEN);  // inet_twsk_reschedule
    return tcp_tw_status::SUCCESS;
  }
  if ((in.flags & (TCPHDR_SYN | TCPHDR_RST | TCPHDR_ACK)) == TCPHDR_SYN) return tcp_tw_status::SYN;
  if (in.flags & TCPHDR_RST) return tcp_tw_status::SUCCESS;  // out of window
  // Out of window (a retransmitted FIN, …): re-arm 60 s if it ACKs, and answer with an ACK.
  if (in.flags & TCPHDR_ACK) tcp_time_wait(w, id, tcp_state::TIME_WAIT, TCP_TIMEWAIT_LEN);
  return tcp_tw_status::ACK;
}

// net/ipv4/tcp_input.c: tcp_rcv_state_process() and friends, for a socket found in ehash.
void tcp_rcv_state_process(world& w, sock_id id, const segment& in) {
  sock& s = w.sk(id);
  const bool ack_of_fin = (in.flags & TCPHDR_ACK) && in.ack == s.snd_nxt;
  if (in.flags & TCPHDR_RST) {
    switch (s.state) {
      case tcp_state::SYN_SENT:  // tcp_reset(): ECONNREFUSED (only an RST that ACKs our SYN)
        if (!(in.flags & TCPHDR_ACK)) return;
        tcp_done(w, id);
        tcp_connect_finish(w, id, ECONNREFUSED);
        return;
      case tcp_state::SYN_RECV:  // the request is dropped
        w.set_state(id, tcp_state::CLOSE);
        sock_destroy(w, id);
        return;
      default:  // ECONNRESET
        tcp_close_state_reached(w, id);
        return;
    }
  }
  switch (s.state) {
    case tcp_state::SYN_SENT:  // tcp_rcv_synsent_state_process()
      if (in.flags & TCPHDR_ACK) {
        if (in.ack != s.snd_nxt) {  // not our SYN's ACK (e.g. a TIME_WAIT's ACK): RST it
          if (s.retransmits == 0)  // "previous FIN/ACK or RST/ACK might be ignored": SYN again soon
            arm_timer(w, id, timer_kind::retransmit, jiffies_to_nanos(w, id, TCP_TIMEOUT_MIN));
          tcp_v4_send_reset(w, s.netns, in);
          return;
        }
        if (!(in.flags & TCPHDR_SYN)) return;
        s.rcv_nxt = in.seq + 1;
        s.rcv_lazy = in.seq_lazy;
        s.ts_recent = in.ts;  // tstamp_ok: the SYN-ACK echoed the timestamps our SYN offered
        s.peer_quiet = in.quiet;
        tcp_synack_rtt_meas(w, id);
        w.set_state(id, tcp_state::ESTABLISHED);
        ++s.timer_gen;  // the SYN timer stops
        tcp_send(w, id, TCPHDR_ACK);
        tcp_connect_finish(w, id, 0);
        return;
      }
      if (in.flags & TCPHDR_SYN) {  // a bare SYN: simultaneous open (or a connect to itself)
        s.rcv_nxt = in.seq + 1;
        s.ts_recent = in.ts && w.ns_of(id).sys.tcp_timestamps != 0;
        w.set_state(id, tcp_state::SYN_RECV);
        tcp_send(w, id, TCPHDR_SYN | TCPHDR_ACK);  // tcp_send_synack(); the SYN timer keeps running
      }
      return;
    case tcp_state::SYN_RECV:
      if (s.listener == kNone) {  // a full socket in simultaneous open (tcp_rcv_state_process)
        if ((in.flags & TCPHDR_ACK) && in.ack == s.snd_nxt) {
          tcp_synack_rtt_meas(w, id);
          w.set_state(id, tcp_state::ESTABLISHED);
          ++s.timer_gen;
          // shutdown(SHUT_WR) came before the connect (sk_shutdown has SEND_SHUTDOWN): the FIN
          // leaves now (tcp_shutdown). A connect waiting on it reads the state the exchange
          // left (live 6.18.44: a self-connect ends in TIME_WAIT, connect() ECONNABORTED).
          // (tcp_send_fin: a zero-delay path answers inside it, and s may move.)
          if (s.shut_wr && tcp_close_state(w, id)) tcp_send_fin(w, id);
          tcp_connect_finish(w, id, 0);
        } else if (in.flags & TCPHDR_SYN) {
          tcp_send(w, id, TCPHDR_SYN | TCPHDR_ACK);
        }
        return;
      }
      // tcp_check_req()
      if (in.flags & TCPHDR_SYN) {
        tcp_send(w, id, TCPHDR_SYN | TCPHDR_ACK);  // retransmitted SYN: SYN-ACK again
      } else if (in.flags & TCPHDR_ACK) {
        const sock_id l = s.listener;
        if (l != kNone && w.listening.count(l) && acceptq_is_full(w, l)) return;  // ACK dropped
        tcp_synack_rtt_meas(w, id);
        tcp_child_established(w, id);
        if (in.flags & TCPHDR_FIN) tcp_rcv_state_process(w, id, in);
      }
      return;
    case tcp_state::ESTABLISHED:
      if (in.flags & TCPHDR_SYN) {
        tcp_send(w, id, TCPHDR_ACK);  // a retransmitted SYN-ACK: our ACK was lost
      } else if (in.flags & TCPHDR_FIN) {
        s.rcv_nxt = in.seq + 1;
        w.set_state(id, tcp_state::CLOSE_WAIT);
        tcp_send(w, id, TCPHDR_ACK);
        if (w.app) w.app->peer_closed(id);
      }
      return;
    case tcp_state::FIN_WAIT1:
      if (in.flags & TCPHDR_FIN) {
        s.rcv_nxt = in.seq + 1;
        if (ack_of_fin) {
          tcp_send(w, id, TCPHDR_ACK);
          tcp_time_wait(w, id, tcp_state::TIME_WAIT, TCP_TIMEWAIT_LEN);
        } else {  // simultaneous close
          w.set_state(id, tcp_state::CLOSING);
          tcp_send(w, id, TCPHDR_ACK);
        }
      } else if (ack_of_fin) {
        w.set_state(id, tcp_state::FIN_WAIT2);
        if (s.orphan) tcp_orphan_fin_wait2(w, id, false);  // tcp_fin_time() and the > 60 s split
      }
      return;
    case tcp_state::FIN_WAIT2:  // not orphaned (shutdown): waits for the FIN forever
      if (in.flags & TCPHDR_FIN) {
        s.rcv_nxt = in.seq + 1;
        tcp_send(w, id, TCPHDR_ACK);
        tcp_time_wait(w, id, tcp_state::TIME_WAIT, TCP_TIMEWAIT_LEN);
      }
      return;
    case tcp_state::CLOSING:
      if (ack_of_fin) tcp_time_wait(w, id, tcp_state::TIME_WAIT, TCP_TIMEWAIT_LEN);
      return;
    case tcp_state::LAST_ACK:
      if (ack_of_fin) tcp_close_state_reached(w, id);
      return;
    case tcp_state::TIME_WAIT: return;  // handled in tcp_v4_rcv (it may pass the SYN on)
    case tcp_state::CLOSE_WAIT: case tcp_state::CLOSE: case tcp_state::LISTEN:
    case tcp_state::NEW_SYN_RECV: return;
  }
}

}  // namespace

// A segment arriving while a SYN is being sent (a zero-delay path answers inside the send) that
// is for the sender's own 4-tuple: the sender is hashed with it, and ehash holds one sock per
// 4-tuple, so it is the sock __inet_lookup_established() would find — without the probe.
static bool for_syn_sender(const world& w, uint16_t ns, const segment& in) {
  if (w.syn_sender == kNone) return false;
  const sock& s = w.sk(w.syn_sender);
  return s.hashed && s.netns == ns && s.num == in.dport && s.dport == in.sport && s.rcv_saddr == in.daddr &&
         s.daddr == in.saddr;
}

// Lazy ISNs (tcp.h, tcp_seq_resolve) may meet only in the handshake of a quiet instant external
// endpoint: its SYN-ACK, whose ack lacks the same hash as our snd_nxt, reaching a SYN_SENT sock
// whose rcv_nxt is not set yet. Any other segment or sock with a lazy number is made whole.
static bool lazy_numbers_fit(const world& w, sock_id sk, const segment& in) {
  const bool seg_lazy = in.seq_lazy || in.ack_lazy;
  if (sk == kNone) return !seg_lazy;
  const sock& s = w.sk(sk);
  if (!seg_lazy && !s.snd_lazy && !s.rcv_lazy) return true;
  return s.state == tcp_state::SYN_SENT && (in.flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST | TCPHDR_FIN)) ==
         (TCPHDR_SYN | TCPHDR_ACK) && in.ack_lazy == s.snd_lazy && !s.rcv_lazy;
}

// net/ipv4/tcp_ipv4.c: tcp_v4_rcv(). A TIME_WAIT sock answers through
// tcp_timewait_state_process(): TCP_TW_SYN goes to a listener (the TW goes), or, with none, is
// answered like TCP_TW_ACK (tcp_v4_timewait_ack; the TW stays); TCP_TW_RST: an RST, the TW goes.
void tcp_v4_rcv(world& w, uint16_t ns, const segment& in) {
  const sock_id sk = for_syn_sender(w, ns, in) ? w.syn_sender
                                               : inet_ehash_lookup(w, ns, in.daddr, in.dport, in.saddr, in.sport);
  if (!lazy_numbers_fit(w, sk, in)) {  // portsim's lazy ISNs: made whole on both sides first
    if (sk != kNone) tcp_seq_resolve(w, w.sk(sk));
    tcp_v4_rcv(w, ns, tcp_seq_resolved(w, in, ns));
    return;
  }
  if (sk != kNone) {
    if (w.sk(sk).state != tcp_state::TIME_WAIT) {
      tcp_rcv_state_process(w, sk, in);
      return;
    }
    switch (tcp_timewait_state_process(w, sk, in)) {
      case tcp_tw_status::SYN:
        if (const sock_id l = inet_lookup_listener(w, w.nets[ns], in.daddr, in.dport); l != kNone) {
          const uint32_t isn = tcp_tw_isn(w.sk(sk).snd_nxt);  // TCP_SKB_CB(skb)->tcp_tw_isn
          inet_twsk_kill(w, sk);  // inet_twsk_deschedule_put()
          tcp_conn_request(w, ns, l, in, isn);
          return;
        }
        [[fallthrough]];
      case tcp_tw_status::ACK:
        tcp_send(w, sk, TCPHDR_ACK);  // tcp_v4_timewait_ack()
        return;
      case tcp_tw_status::RST:
        tcp_v4_send_reset(w, ns, in);
        inet_twsk_kill(w, sk);
        return;
      case tcp_tw_status::SUCCESS: return;
    }
    return;
  }
  if ((in.flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST)) == TCPHDR_SYN) {
    const sock_id l = inet_lookup_listener(w, w.nets[ns], in.daddr, in.dport);
    if (l != kNone) {
      tcp_conn_request(w, ns, l, in, 0);
      return;
    }
  }
  tcp_v4_send_reset(w, ns, in);  // no socket: RST (never in answer to an RST)
}

}  // namespace portsim::net
