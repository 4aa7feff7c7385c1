// struct sock, reduced to what port selection and the connection lifecycle need.
// Kept small on purpose (76 bytes, checked below): 10 million connections must fit in 1.5 GiB.
#pragma once
#include <cstdint>
#include <string_view>

#include "portsim/net/inet_addr.h"

namespace portsim::net {

using sock_id = uint32_t;
inline constexpr uint32_t kNone = UINT32_MAX;

// include/net/tcp_states.h: the TCP_* states with the kernel's numbering.
enum class tcp_state : uint8_t {
  ESTABLISHED = 1, SYN_SENT, SYN_RECV, FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSE, CLOSE_WAIT,
  LAST_ACK, LISTEN, CLOSING, NEW_SYN_RECV,
};
std::string_view tcp_state_name(tcp_state s);

// include/net/sock.h: sk_userlocks bits.
enum : uint8_t {
  SOCK_BINDADDR_LOCK = 4,
  SOCK_BINDPORT_LOCK = 8,
  SOCK_CONNECT_BIND = 16,  // 6.18: the port was chosen by connect() autobind
};

// include/uapi/linux/net.h: socket_state, the socket layer's own view (struct socket::state)
// that __inet_stream_connect() and inet_shutdown() switch on.
enum class socket_state : uint8_t { SS_FREE, SS_UNCONNECTED, SS_CONNECTING, SS_CONNECTED, SS_DISCONNECTING };

// include/net/sock.h: sk_reuse values.
enum : uint8_t { SK_NO_REUSE = 0, SK_CAN_REUSE = 1 };

// 76 bytes, 4-byte aligned: addresses as sock_addr (8 bytes each, IPv6 interned), the RTO
// fields packed into bit-fields wide enough for their kernel ranges.
struct sock {
  sock_addr rcv_saddr = kAnyV4;  // inet_rcv_saddr: bound / chosen local address (AF_INET: 0.0.0.0)
  sock_addr daddr = kAnyV4;       // inet_daddr
  uint32_t uid = 0;             // sk_uid: owner uid (SO_REUSEPORT same-uid rule)
  sock_id bind_next = kNone, bind_prev = kNone;  // sk_bind2_node: owners list of tb2
  uint32_t tb2 = kNone;         // icsk_bind2_hash (tb is tb2's parent)
  sock_id listener = kNone;     // for a child: the listener it was accepted from
  uint32_t timer_gen = 0;       // bumps on every (re)arm and free: stale timer events are ignored
  // ms stamps (tcp_time_stamp_ms): tp->retrans_stamp (first SYN / SYN-ACK) while connecting,
  // tw_entry_stamp once in TIME_WAIT — never both at once, so they share the field.
  union {
    uint32_t retrans_stamp = 0;
    uint32_t tw_entry_stamp;
  };
  uint32_t rto_ms : 17 = 0;     // icsk_rto (ms), at most TCP_RTO_MAX (120 000)
  uint32_t retransmits : 8 = 0; // icsk_retransmits (u8)
  uint32_t syn_retries : 7 = 0; // TCP_SYNCNT, 1..MAX_TCP_SYNCNT (127); 0 = net.ipv4.tcp_syn_retries
  uint32_t rto_max_ms : 17 = 0; // icsk_rto_max: net.ipv4.tcp_rto_max_ms (1000..120 000) when the socket was made
  uint32_t total_rto : 8 = 0;   // tp->total_rto (u8; 6.7+: linear SYN phase)
  uint32_t sk_err : 7 = 0;      // the error a pending connect() ended with (an errno, < 128)
  // Sequence space (data is not modelled: only SYN and FIN occupy it). Before connect()
  // snd_nxt holds tp->write_seq: 0 = not chosen yet (secure_tcp_seq), or set by the reuse of
  // a TIME_WAIT (tcp_twsk_unique).
  uint32_t snd_nxt = 0, rcv_nxt = 0;
  uint16_t num = 0;             // inet_num: local port, 0 = unbound
  uint16_t sport = 0;           // inet_sport: what getsockname() shows; inet_put_port keeps it
  uint16_t dport = 0;           // inet_dport
  uint16_t netns = 0;           // sock_net(sk)
  tcp_state state = tcp_state::CLOSE;
  tcp_state tw_substate = tcp_state::CLOSE;  // TIME_WAIT sockets: TIME_WAIT or FIN_WAIT2
  uint8_t userlocks : 5 = 0;    // sk_userlocks
  uint8_t reuse : 2 = SK_NO_REUSE;  // sk_reuse (SO_REUSEADDR)
  bool has_local_port_range : 1 = false;  // world::local_port_ranges holds its IP_LOCAL_PORT_RANGE
  socket_state ss = socket_state::SS_UNCONNECTED;  // sock->state (struct socket)
  bool reuseport : 1 = false;   // sk_reuseport (SO_REUSEPORT)
  bool bind_address_no_port : 1 = false;  // IP_BIND_ADDRESS_NO_PORT
  bool ipv6only : 1 = false;    // sk_ipv6only
  bool hashed : 1 = false;      // in ehash
  uint8_t in_dest : 2 = 0;      // in the connect destination index: 0 no, 1 est, 2 tw (portsim's)
  bool cap_net_bind_service : 1 = false;  // owner holds CAP_NET_BIND_SERVICE
  bool orphan : 1 = false;      // closed by the application
  bool alive : 1 = false;       // slot in use
  bool ts_recent : 1 = false;   // a peer timestamp was received (tw_ts_recent_stamp != 0)
  bool connect_nonblock : 1 = false;  // the pending connect() was O_NONBLOCK: nobody waits
  bool v6 : 1 = false;          // sk_family == AF_INET6
  bool linger0 : 1 = false;     // SO_LINGER {1, 0}: close() sends RST, no TIME_WAIT
  bool connect_pending : 1 = false;  // a connect() waits for the handshake's outcome
  bool shut_wr : 1 = false;     // shutdown(SHUT_WR) done
  bool udp : 1 = false;         // SOCK_DGRAM (net/ipv4/udp.c); state ESTABLISHED = connected
  // portsim's: the peer is an accepting external endpoint whose SYN-ACK came quietly (tcp.h,
  // segment::quiet). It ignores a pure ACK or an RST (external_ignores) and nothing watches
  // the wire, so tcp_send() leaves those out: the same outcome without routing them.
  bool peer_quiet : 1 = false;
  // portsim's: the ISN hash is not added yet (tcp_seq_resolve, tcp_output.cc). snd_lazy:
  // snd_nxt lacks secure_tcp_seq_hash() of our own ISN; rcv_lazy: rcv_nxt lacks the external
  // peer's. Only a connect to a quiet instant external endpoint (external_endpoint::unwatched)
  // starts one: nothing reads those numbers unless the connection goes on past its handshake.
  bool snd_lazy : 1 = false;
  bool rcv_lazy : 1 = false;
  // Once in ehash and taken out again (a connect that got as far as inet_hash_connect(), an
  // accepted child): the live 6.18.44 kernel then refuses listen() (kernel_profile::
  // listen_refused_after_unhash; its icsk carries an `unhashed_state` that 6.12.118 lacks).
  bool unhashed_once : 1 = false;
};
static_assert(sizeof(sock) <= 76, "struct sock grew: every held connection pays for it (README Performance)");

}  // namespace portsim::net
