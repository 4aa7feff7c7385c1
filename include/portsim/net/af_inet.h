// The syscall layer (net/ipv4/af_inet.c, tcp_ipv4.c, tcp.c): socket(), bind(), listen(),
// connect(), accept(), close() as the scenario calls them. Each returns 0 or an errno.
#pragma once
#include <cstdint>

#include "portsim/net/inet_hashtables.h"
#include "portsim/net/netns.h"
#include "portsim/net/tcp.h"

namespace portsim::net {

struct bind_info;  // inet_connection_sock.h

// A process identity: uid and CAP_NET_BIND_SERVICE (bind below ip_unprivileged_port_start).
struct cred {
  uint32_t uid = 0;
  bool cap_net_bind_service = true;  // root by default, as on our machines
};

enum class family : uint8_t { inet, inet6 };

// net/socket.c: __sys_socket() — a fresh TCP socket in `ns`, state CLOSE, unbound.
sock_id sys_socket(world& w, uint16_t ns, const cred& c, family f = family::inet);

struct connect_result {
  int err = 0;            // 0, an errno, or EINPROGRESS while the handshake is under way
  connect_info info;
};

// net/ipv4/af_inet.c: __inet_stream_connect() → tcp_v4_connect() → inet_hash_connect(), then
// tcp_connect() sends the SYN. sock->state (SS_*) decides what a repeated call returns. A
// non-blocking call returns EINPROGRESS (then EALREADY, then the outcome); a blocking one whose
// handshake did not end inside the call returns EINPROGRESS and world::app->connect_done()
// reports the outcome (inet_stream_connect_result() has already been applied then).
// The search details go to `info` (reset first), the result (0, an errno or EINPROGRESS) is
// returned: the runner writes them straight into its call's outcome.
int inet_stream_connect(world& w, sock_id sk, const endpoint& to, bool nonblock, connect_info& info);
inline connect_result inet_stream_connect(world& w, sock_id sk, const endpoint& to, bool nonblock = false) {
  connect_result r;
  r.err = inet_stream_connect(w, sk, to, nonblock, r.info);
  return r;
}
// The tail of __inet_stream_connect() once the handshake is over: 0 (SS_CONNECTED), or sk_err /
// ECONNABORTED when the sock is CLOSE (SS_UNCONNECTED again, sk_err consumed).
int inet_stream_connect_result(world& w, sock_id sk);

// net/ipv4/af_inet.c: inet_listen() → inet_csk_listen_start(). Autobinds an unbound socket.
int inet_listen(world& w, sock_id sk, int backlog, bind_info* info = nullptr);

// net/ipv4/inet_connection_sock.c: inet_csk_accept() — the oldest established child, or
// EAGAIN (accept is non-blocking in scenarios), EINVAL when not listening.
int inet_csk_accept(world& w, sock_id listener, sock_id& child);

// The sock is gone for good: unhashed, port released, slot freed.
void sock_destroy(world& w, sock_id id);
// net/ipv4/tcp.c: tcp_done() — state CLOSE, unhash, release an autobound port.
void tcp_done(world& w, sock_id id);
// net/ipv4/inet_hashtables.c: __inet_lookup_listener().
sock_id inet_lookup_listener(const world& w, const netns& ns, const inet_addr& daddr, uint16_t dport);
// The netns that receives a packet for daddr sent from `from`; null when it leaves the model.
const netns* route_to_slow(const world& w, const netns& from, const inet_addr& daddr);  // and remembers
inline const netns* route_to(const world& w, const netns& from, const inet_addr& daddr) {
  const world::route_memo& m = w.route_last;
  if (m.answers(daddr, from.id, w.nets.size()))
    return m.to == kNone ? nullptr : &w.nets[m.to];
  return route_to_slow(w, from, daddr);
}

// tcp_v6_connect() / ip_route_connect(): connect() to [::] or 0.0.0.0 means this host.
inet_addr connect_daddr(const sock& s, const inet_addr& to);
// ip6_dst_lookup_tail(): an AF_INET6 socket with a v4-mapped source and a native IPv6
// destination gets no route (EAFNOSUPPORT; kernel_profile::v4mapped_src_refused).
bool v4mapped_src_refused(const world& w, const sock& s, const inet_addr& daddr);

// Route lookup (ip_route_connect): the source address for `daddr` from netns `ns`.
inet_addr inet_select_saddr(const netns& ns, const inet_addr& daddr);

}  // namespace portsim::net
