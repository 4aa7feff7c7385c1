// net/ipv4/tcp_timer.c — SYN and SYN-ACK retransmission, and when to give up.
//
// SYN_SENT (6.18): the first SYN arms icsk_rto = 1 s. Each expiry first asks
// tcp_write_timeout(): give up (ETIMEDOUT) once icsk_retransmits >= tcp_syn_retries +
// tcp_syn_linear_timeouts, or once the time since the first SYN reaches tcp_model_timeout(
// tcp_syn_retries, 1 s) (exponential backoff from 1 s, capped at tcp_rto_max_ms). Otherwise the
// SYN is sent again; while tp->total_rto <= tcp_syn_linear_timeouts the RTO stays (linear),
// then it doubles up to the cap. Defaults (6, 4): SYNs at 0,1,2,3,4,5,7,11,19,35,67 s and
// ETIMEDOUT at 131 s — live kernel 6.18.44: SYNs at 0, 1.03, 2.05, … 68.03 s, ETIMEDOUT at
// 133.57 s (timer-wheel lateness; KERNEL-MAP §5).
// SYN-ACK (reqsk_timer_handler, net/ipv4/inet_connection_sock.c): exponential from 1 s, no
// linear phase; the request is dropped after tcp_synack_retries retransmissions.
#include <bit>
#include <cerrno>

#include "portsim/net/af_inet.h"
#include "tcp_internal.h"

namespace portsim::net {

// net/ipv4/tcp_timer.c: tcp_model_timeout().
uint32_t tcp_model_timeout(uint32_t boundary, uint32_t rto_base_ms, uint32_t rto_max_ms) {
  const uint32_t thresh = uint32_t(std::bit_width(rto_max_ms / rto_base_ms)) - 1;  // ilog2
  if (boundary <= thresh) return ((2u << boundary) - 1) * rto_base_ms;
  return ((2u << thresh) - 1) * rto_base_ms + (boundary - thresh) * rto_max_ms;
}

namespace {

// net/ipv4/tcp_timer.c: tcp_write_timeout() for SYN_SENT — true when the connect gives up.
bool tcp_write_timeout(world& w, sock_id id) {
  const sock& s = w.sk(id);
  const sysctls& sys = w.ns_of(id).sys;
  const uint32_t retry_until = s.syn_retries ? s.syn_retries : uint32_t(sys.tcp_syn_retries);
  const uint32_t max_retransmits = retry_until + uint32_t(sys.tcp_syn_linear_timeouts);
  if (s.retransmits >= max_retransmits) return true;
  // retransmits_timed_out(): only after a first retransmission; elapsed >= model timeout.
  if (!s.retransmits) return false;
  const uint32_t timeout = tcp_model_timeout(retry_until, TCP_TIMEOUT_INIT_MS, s.rto_max_ms);  // icsk_rto_max
  return int32_t(now_ms(w) - s.retrans_stamp - timeout) >= 0;
}

// net/ipv4/inet_connection_sock.c: reqsk_timer_handler() — SYN-ACK retransmission.
void reqsk_timer_handler(world& w, sock_id id) {
  // The listener's TCP_SYNCNT, if set, overrides net.ipv4.tcp_synack_retries (6.18:
  // max_syn_ack_retries = icsk_syn_retries ? : sysctl_tcp_synack_retries).
  const sock_id l = w.sk(id).listener;
  const uint8_t syncnt = l != kNone && w.sk(l).alive && w.sk(l).state == tcp_state::LISTEN ? w.sk(l).syn_retries : 0;
  const uint32_t max_retries = syncnt ? syncnt : uint32_t(w.ns_of(id).sys.tcp_synack_retries);
  if (w.sk(id).retransmits >= max_retries) {  // give up on this request: it leaves ehash
    w.set_state(id, tcp_state::CLOSE);
    sock_destroy(w, id);
    return;
  }
  ++w.sk(id).retransmits;
  const uint64_t rto = std::min<uint64_t>(uint64_t(TCP_TIMEOUT_INIT_MS) << w.sk(id).retransmits,
                                          uint64_t(w.sk(id).rto_max_ms));
  arm_timer(w, id, timer_kind::retransmit, Nanos(rto) * kNsPerMs);
  tcp_send(w, id, TCPHDR_SYN | TCPHDR_ACK);
}

}  // namespace

// net/ipv4/tcp_timer.c: tcp_retransmit_timer().
void tcp_retransmit_timer(world& w, sock_id id) {
  switch (w.sk(id).state) {
    case tcp_state::SYN_RECV:
      if (w.sk(id).listener != kNone) {
        reqsk_timer_handler(w, id);
        return;
      }
      break;  // a full socket in simultaneous open: retransmits like SYN_SENT (its SYN-ACK)
    case tcp_state::SYN_SENT: break;
    default: return;  // data retransmission is not modelled
  }
  if (tcp_write_timeout(w, id)) {  // tcp_write_err(): ETIMEDOUT, the socket closes
    tcp_done(w, id);
    tcp_connect_finish(w, id, ETIMEDOUT);
    return;
  }
  sock& s = w.sk(id);
  ++s.retransmits;  // tcp_update_rto_stats()
  ++s.total_rto;
  const sysctls& sys = w.ns_of(id).sys;
  if (s.total_rto > uint32_t(sys.tcp_syn_linear_timeouts))  // linear phase over: back off
    s.rto_ms = std::min<uint32_t>(s.rto_ms * 2, s.rto_max_ms);  // icsk_rto_max, fixed at socket()
  arm_timer(w, id, timer_kind::retransmit, Nanos(s.rto_ms) * kNsPerMs);
  tcp_send(w, id, s.state == tcp_state::SYN_RECV ? TCPHDR_SYN | TCPHDR_ACK : TCPHDR_SYN);
}

}  // namespace portsim::net
