// Helpers shared by the tcp_*.cc files of the model; not part of the public headers.
#pragma once
#include "portsim/net/observer.h"
#include "portsim/net/tcp.h"

namespace portsim::net {

void tcp_send(world& w, sock_id id, uint8_t flags);
void tcp_send_fin(world& w, sock_id id);
void tcp_v4_send_reset(world& w, uint16_t ns, const segment& in);
void arm_timer(world& w, sock_id id, timer_kind kind, Nanos after);
uint32_t now_ms(const world& w);
// `j` jiffies of sk's machine as Nanos (rounded up: nanos_to_jiffies gives j back).
Nanos jiffies_to_nanos(world& w, sock_id id, uint64_t j);
// tcp_ack_update_rtt() → tcp_rtt_estimator() → tcp_set_rto() on the handshake's RTT sample.
void tcp_synack_rtt_meas(world& w, sock_id id);
// A pending connect() learns its outcome (0 or an errno).
void tcp_connect_finish(world& w, sock_id id, int err);
// The handshake completed on a child: into the listener's accept queue.
void tcp_child_established(world& w, sock_id child);

}  // namespace portsim::net
