// net/ipv4/tcp_ipv4.c (tcp_v4_rcv), tcp_input.c (tcp_rcv_state_process,
// tcp_rcv_synsent_state_process), tcp_minisocks.c (tcp_check_req,
// tcp_timewait_state_process): what a segment does to the socket it reaches.
#include <cerrno>

#include "portsim/net/af_inet.h"
#include "tcp_internal.h"

namespace portsim::net {

void tcp_connect_finish(world& w, sock_id id, int err) {
  sock& s = w.sk(id);
  if (!s.connect_pending) return;
  s.connect_pending = false;
  s.sk_err = uint8_t(err);
  if (w.app) w.app->connect_done(id, err);
}

void tcp_child_established(world& w, sock_id child) {
  w.set_state(child, tcp_state::ESTABLISHED);
  ++w.sk(child).timer_gen;  // the SYN-ACK timer stops
  const sock_id l = w.sk(child).listener;
  if (l != kNone && w.listening.count(l)) w.listening[l].accept_queue.push_back(child);
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
  c.listener = l;
  c.rcv_saddr = in.daddr;
  c.daddr = in.saddr;
  c.dport = in.sport;
  c.rcv_nxt = in.seq + 1;
  c.snd_nxt = (tw_isn ? tw_isn : tcp_init_seq(w, ns, in.daddr, in.dport, in.saddr, in.sport)) + 1;
  c.ts_recent = w.nets[ns].sys.tcp_timestamps != 0;
  c.retransmits = 0;
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

// net/ipv4/tcp_minisocks.c: tcp_timewait_state_process(). Returns true for TCP_TW_SYN: the
// TIME_WAIT is gone and the SYN goes on to the listener with `tw_isn` as the new ISN.
bool tcp_timewait_state_process(world& w, sock_id id, const segment& in, uint32_t& tw_isn) {
  sock& s = w.sk(id);
  if (in.flags & TCPHDR_RST) {  // TIME_WAIT assassination (tcp_rfc1337 = 0): the TW goes
    inet_twsk_kill(w, id);
    return false;
  }
  if ((in.flags & (TCPHDR_SYN | TCPHDR_ACK)) == TCPHDR_SYN) {
    if (s.tw_substate == tcp_state::FIN_WAIT2) {  // TCP_TW_RST
      tcp_v4_send_reset(w, s.netns, in);
      return false;
    }
    // TCP_TW_SYN: a new SYN whose sequence number is after rcv_nxt (or whose timestamp is
    // newer) reopens the 4-tuple. The timestamps (not modelled) of a later SYN are newer, so
    // portsim accepts it; the new ISN continues the TIME_WAIT's sequence space.
    tw_isn = tcp_tw_isn(s.snd_nxt);
    inet_twsk_kill(w, id);
    return true;
  }
  if (in.flags & TCPHDR_FIN) {
    s.rcv_nxt = in.seq + 1;
    // FIN_WAIT2 substate: the peer's FIN turns it into a real TIME_WAIT for 60 s; in
    // TIME_WAIT a retransmitted FIN re-arms the 60 s.
    tcp_time_wait(w, id, tcp_state::TIME_WAIT, TCP_TIMEWAIT_LEN);
    tcp_send(w, id, TCPHDR_ACK);
  }
  return false;
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
      if ((in.flags & (TCPHDR_SYN | TCPHDR_ACK)) == (TCPHDR_SYN | TCPHDR_ACK) && in.ack == s.snd_nxt) {
        s.rcv_nxt = in.seq + 1;
        s.ts_recent = w.ns_of(id).sys.tcp_timestamps != 0;
        w.set_state(id, tcp_state::ESTABLISHED);
        ++s.timer_gen;  // the SYN timer stops
        tcp_send(w, id, TCPHDR_ACK);
        tcp_connect_finish(w, id, 0);
      }
      return;
    case tcp_state::SYN_RECV:  // tcp_check_req()
      if (in.flags & TCPHDR_SYN) {
        tcp_send(w, id, TCPHDR_SYN | TCPHDR_ACK);  // retransmitted SYN: SYN-ACK again
      } else if (in.flags & TCPHDR_ACK) {
        const sock_id l = s.listener;
        if (l != kNone && w.listening.count(l) && acceptq_is_full(w, l)) return;  // ACK dropped
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
        if (s.orphan)  // tcp_fin_time(): an orphaned FIN_WAIT2 lives as a TW sock
          tcp_time_wait(w, id, tcp_state::FIN_WAIT2, Nanos(w.ns_of(id).sys.tcp_fin_timeout) * kNsPerSec);
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

void tcp_v4_rcv(world& w, uint16_t ns, const segment& in) {
  const sock_id sk = inet_ehash_lookup(w, ns, in.daddr, in.dport, in.saddr, in.sport);
  uint32_t tw_isn = 0;
  if (sk != kNone) {
    if (w.sk(sk).state != tcp_state::TIME_WAIT) {
      tcp_rcv_state_process(w, sk, in);
      return;
    }
    if (!tcp_timewait_state_process(w, sk, in, tw_isn)) return;  // else TCP_TW_SYN: to the listener
  }
  if ((in.flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST)) == TCPHDR_SYN) {
    const sock_id l = inet_lookup_listener(w, w.nets[ns], in.daddr, in.dport);
    if (l != kNone) {
      tcp_conn_request(w, ns, l, in, tw_isn);
      return;
    }
  }
  tcp_v4_send_reset(w, ns, in);  // no socket: RST (never in answer to an RST)
}

}  // namespace portsim::net
