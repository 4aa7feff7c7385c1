// TCP on the wire: segments as events, the handshake, the close state machine and the
// retransmission timers (net/ipv4/tcp_input.c, tcp_output.c, tcp_timer.c, tcp_minisocks.c).
// Data is not modelled; a segment is its 4-tuple and flags.
#pragma once
#include <cstdint>
#include <string>

#include "portsim/net/netns.h"

namespace portsim::net {

enum : uint8_t { TCPHDR_FIN = 1, TCPHDR_SYN = 2, TCPHDR_RST = 4, TCPHDR_ACK = 16 };
std::string tcp_flags_str(uint8_t flags);  // "SYN", "SYN|ACK", …

inline constexpr uint16_t kExternalNs = UINT16_MAX;  // a host outside the model

struct segment {
  inet_addr saddr, daddr;
  bool ts = false;  // carries a TCP timestamp option (TSval / TSecr)
  uint16_t sport = 0, dport = 0;
  uint16_t from_ns = 0, to_ns = kExternalNs;  // to_ns filled by routing (kExternalNs: outside)
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint8_t proto = 0;  // 0: TCP; kProtoUdp: a datagram; kProtoIcmp: ICMP port unreachable for one
  // Set by the wire (portsim's, no kernel counterpart): sent by an external endpoint reached
  // at once and for sure, with nothing watching the wire (Runner::Impl::quiet_instant).
  bool quiet = false;
  // portsim's: seq (ack) lacks the ISN hash of its sender (receiver), as sock::snd_lazy. Such
  // segments only travel the quiet instant path; the wire and tcp_v4_rcv resolve the others.
  bool seq_lazy = false, ack_lazy = false;
};
inline constexpr uint8_t kProtoUdp = 17, kProtoIcmp = 1;  // IPPROTO_UDP, IPPROTO_ICMP

// The segment going the other way on the same 4-tuple (addresses and ports swapped), sent
// from `from_ns` back to where `in` came from; flags, seq and ack are left to the caller.
segment reverse_of(const segment& in, uint16_t from_ns);
// A segment from sk's local end to its peer.
segment segment_of(const sock& s);

// Where segments go: the runner owns links (delay, jitter, loss) and delivers each segment as
// an event, or drops it. The model never sees the engine.
class wire {
 public:
  virtual ~wire() = default;
  virtual void xmit(const segment& seg) = 0;
};

// What the application learns asynchronously: a pending connect() finished (0 or an errno).
class app_events {
 public:
  virtual ~app_events() = default;
  virtual void connect_done(sock_id sk, int err) = 0;
  // The peer's FIN arrived: sk is in CLOSE_WAIT (a reader would now see EOF).
  virtual void peer_closed(sock_id sk) = 0;
  // UDP: a datagram was queued on sk, or an ICMP error set its sk_err.
  virtual void udp_ready(sock_id) {}
  // A child joined listener's accept queue (inet_csk_reqsk_queue_add() wakes accept() through
  // the listener's sk_data_ready).
  virtual void accept_ready(sock_id listener, sock_id child) { (void)listener, (void)child; }
};

// include/net/tcp.h constants.
inline constexpr uint32_t TCP_TIMEOUT_INIT_MS = 1000;
inline constexpr uint64_t TCP_TIMEOUT_MIN = 2;  // jiffies: the shortest TCP timer
inline constexpr Nanos TCP_TIMEWAIT_LEN = 60 * kNsPerSec;

// net/ipv4/tcp_output.c: tcp_connect() — send the SYN, arm the retransmit timer.
void tcp_connect(world& w, sock_id sk);
// portsim's lazy ISNs (no kernel counterpart): a connect to a quiet instant external endpoint
// keeps both ISNs as seq_scale()'s clock part only, and adds secure_tcp_seq_hash() when a
// number is first needed whole (a FIN, TIME_WAIT, a reconnect, a watched wire). Same numbers,
// computed late or never: a held connection nobody looks at needs neither hash.
// tcp_seq_resolve: sk's snd_nxt / rcv_nxt made whole. tcp_seq_resolved: `seg` made whole,
// its receiver being netns `to_ns` (kExternalNs: an external host).
void tcp_seq_resolve(const world& w, sock& s);
segment tcp_seq_resolved(const world& w, const segment& seg, uint16_t to_ns);

// net/ipv4/tcp_ipv4.c: tcp_v4_rcv() — a segment arrives in netns `ns`.
void tcp_v4_rcv(world& w, uint16_t ns, const segment& seg);
// net/ipv4/tcp_timer.c: tcp_retransmit_timer() for SYN_SENT / the SYN-ACK timer of a request.
void tcp_retransmit_timer(world& w, sock_id sk);
// net/ipv4/tcp.c: tcp_close(); af_inet.c: inet_shutdown(SHUT_WR) → tcp_shutdown();
// tcp.c: tcp_disconnect() (the abort of SO_LINGER {1, 0} and of shutdown() in SYN_SENT).
int tcp_close(world& w, sock_id sk);
int tcp_shutdown(world& w, sock_id sk);
int tcp_disconnect(world& w, sock_id sk);
// include/net/tcp.h: tcp_fin_time() in jiffies — max(tcp_fin_timeout, 3.5·icsk_rto).
uint64_t tcp_fin_time(world& w, sock_id sk);
// An orphan's FIN was ACKed (FIN_WAIT2): a FIN_WAIT2 TW sock, or first the keepalive timer.
void tcp_orphan_fin_wait2(world& w, sock_id sk, bool fin);
// net/ipv4/tcp_timer.c: tcp_keepalive_timer() (its orphaned-FIN_WAIT2 branch).
void tcp_keepalive_timer(world& w, sock_id sk);
// net/ipv4/tcp_minisocks.c: tcp_time_wait().
void tcp_time_wait(world& w, sock_id sk, tcp_state substate, Nanos timeo);
// net/ipv4/inet_timewait_sock.c: inet_twsk_kill() — the TIME_WAIT sock goes (timer or reuse).
void inet_twsk_kill(world& w, sock_id tw);
// net/ipv4/tcp_timer.c: tcp_model_timeout() in ms — the give-up time of `boundary`
// exponentially backed-off retransmissions starting at rto_base_ms.
uint32_t tcp_model_timeout(uint32_t boundary, uint32_t rto_base_ms, uint32_t rto_max_ms);

}  // namespace portsim::net

namespace portsim::net {
// A segment reached a host outside the model. A declared external endpoint answers like a
// Linux server that accepts and closes at once on the peer's FIN ("accept"), answers RST
// ("refuse") or stays silent ("silent"); an undeclared address is a black hole.
void external_rcv(world& w, const segment& seg);
// The same, for a segment whose endpoint the caller has found already.
void external_rcv(world& w, const external_endpoint& ep, const segment& seg);
// What endpoint `ep` answers `seg` with, in `out` (to be sent from kExternalNs); false when it
// sends nothing. external_rcv() sends it through the wire; a wire that delivers it at once may
// hand it to its receiver itself.
bool external_reply(world& w, const external_endpoint& ep, const segment& seg, segment& out);
// The segments external_rcv() leaves unanswered: anything toward a silent endpoint, an RST, and
// (unless the endpoint refuses) a segment without SYN or FIN — a plain ACK.
bool external_ignores(const external_endpoint& ep, const segment& seg);
// The external server of sk's connection closes first (sends its FIN).
void external_close(world& w, sock_id sk);
}  // namespace portsim::net
