// Helpers shared by the tcp_*.cc files of the model; not part of the public headers.
#pragma once
#include "portsim/net/observer.h"
#include "portsim/net/tcp.h"

namespace portsim::net {

void tcp_send(world& w, sock_id id, uint8_t flags);
void tcp_send_fin(world& w, sock_id id);
// net/ipv4/tcp.c: tcp_close_state() — the application closes or shuts down its sending side:
// ESTABLISHED → FIN_WAIT1, CLOSE_WAIT → LAST_ACK, true (a FIN to send); any other state stays,
// false. (The kernel's table also moves SYN_RECV, with a FIN; not modelled.)
bool tcp_close_state(world& w, sock_id id);
void tcp_v4_send_reset(world& w, uint16_t ns, const segment& in);
void arm_timer(world& w, sock_id id, timer_kind kind, Nanos after);
uint32_t now_ms(const world& w);
// A TIME_WAIT sock's stamps, taken now (tcp.cc): tw_entry_stamp, and tw_ts_recent_stamp on the
// guest's clock when the machine has "call_monotonic_ns".
void tcp_tw_stamp(world& w, sock_id tw);
// net/ipv4/tcp_ipv4.c: tcp_v4_init_seq() — the ISN from secure_tcp_seq (secure_tcpv6_seq).
uint32_t tcp_init_seq(const world& w, uint16_t ns, const inet_addr& saddr, uint16_t sport, const inet_addr& daddr,
                      uint16_t dport);
uint32_t tcp_init_seq(const siphash_key& net_secret, uint64_t realtime_ns, const inet_addr& saddr, uint16_t sport,
                      const inet_addr& daddr, uint16_t dport);
// tcp_v4_connect(): write_seq from secure_tcp_seq — lazily (sock::snd_lazy) toward an
// external endpoint nobody watches (external_endpoint::unwatched).
void tcp_write_seq_init(world& w, sock& s, const inet_addr& daddr, uint16_t dport);
// external_reply(): the ISN of an external Linux server's SYN-ACK answering `in` (its clock part
// only, out.seq_lazy, when `in` came lazily).
void tcp_external_isn(const world& w, const segment& in, segment& out);
// net/ipv4/tcp_minisocks.c: the ISN that continues a TIME_WAIT's sequence space
// (tw_snd_nxt + 65535 + 2, never 0), used when a TIME_WAIT is reused or reopened.
inline uint32_t tcp_tw_isn(uint32_t tw_snd_nxt) {
  const uint32_t isn = tw_snd_nxt + 65535 + 2;
  return isn ? isn : 1;
}
// `j` jiffies of sk's machine as Nanos (rounded up: nanos_to_jiffies gives j back).
Nanos jiffies_to_nanos(world& w, sock_id id, uint64_t j);
// tcp_ack_update_rtt() → tcp_rtt_estimator() → tcp_set_rto() on the handshake's RTT sample.
void tcp_synack_rtt_meas(world& w, sock_id id);
// A pending connect() learns its outcome (0 or an errno).
void tcp_connect_finish(world& w, sock_id id, int err);
// The handshake completed on a child: into the listener's accept queue.
void tcp_child_established(world& w, sock_id child);

}  // namespace portsim::net
