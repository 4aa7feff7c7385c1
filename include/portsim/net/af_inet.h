// The syscall layer (net/ipv4/af_inet.c, tcp_ipv4.c, tcp.c): socket(), bind(), listen(),
// connect(), accept(), close() as the scenario calls them. Each returns 0 or an errno.
#pragma once
#include <cstdint>

#include "portsim/net/inet_hashtables.h"
#include "portsim/net/netns.h"

namespace portsim::net {

// A process identity: uid and CAP_NET_BIND_SERVICE (bind below ip_unprivileged_port_start).
struct cred {
  uint32_t uid = 0;
  bool cap_net_bind_service = true;  // root by default, as on our machines
};

// Who answers a SYN that leaves the model: a declared external endpoint (port 0 = any port).
struct external_endpoint {
  inet_addr addr;
  uint16_t port = 0;
};

// net/socket.c: __sys_socket() — a fresh TCP socket in `ns`, state CLOSE, unbound.
sock_id sys_socket(world& w, uint16_t ns, const cred& c);

struct connect_result {
  int err = 0;
  connect_info info;
  sock_id child = kNone;  // the accepted socket made on the server side, when modelled
};

// net/ipv4/af_inet.c: __inet_stream_connect() → tcp_v4_connect() → inet_hash_connect(), then
// the handshake. Handshakes complete at once (no link model yet): a listener in the model
// accepts (child socket in its netns), a declared external endpoint accepts, a host of the
// model with no listener answers RST (ECONNREFUSED).
connect_result inet_stream_connect(world& w, sock_id sk, const endpoint& to,
                                   const std::vector<external_endpoint>& externals);

// net/ipv4/af_inet.c: inet_listen() → inet_csk_listen_start(). Autobinds an unbound socket.
int inet_listen(world& w, sock_id sk, int backlog);

// net/ipv4/tcp.c: tcp_close(). With the zero-delay wire, an established connection closed by
// this side goes through FIN_WAIT to TIME_WAIT at once when the peer has closed too, or leaves
// the peer in CLOSE_WAIT; the other cases release the socket.
int tcp_close(world& w, sock_id sk);

// net/ipv4/inet_timewait_sock.c: the TIME_WAIT timer fired (inet_twsk_kill).
void inet_twsk_kill(world& w, sock_id tw);

// Route lookup (ip_route_connect): the source address for `daddr` from netns `ns`.
inet_addr inet_select_saddr(const netns& ns, const inet_addr& daddr);

}  // namespace portsim::net
