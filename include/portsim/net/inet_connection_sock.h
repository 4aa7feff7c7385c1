// bind(): net/ipv4/af_inet.c (__inet_bind) and net/ipv4/inet_connection_sock.c
// (inet_csk_get_port, inet_csk_find_open_port, inet_csk_bind_conflict). See the .cc head.
#pragma once
#include <cstdint>

#include "portsim/net/af_inet.h"

namespace portsim::net {

// What one bind(addr, 0) search did, for the trace (the bind twin of connect_info).
struct bind_info {
  uint32_t low = 0, high = 0;   // the (half-)range of the pass that decided, high exclusive
  uint32_t offset = 0;          // first offset of the first pass (odd)
  uint8_t half = 0;             // 0: whole range; 1: lower half; 2: upper half (SO_REUSEADDR)
  uint8_t pass = 0;             // 1 (odd offsets) or 2 (even) in the deciding range
  bool relax = false;           // found in the ip_autobind_reuse relaxed rescan
  bool shared = false;          // ≤ 4.10: no free port, the least-used compatible one (smallest_rover)
  uint64_t examined = 0;        // candidates visited over all halves, passes and rescans
};

// net/ipv4/inet_connection_sock.c: inet_csk_get_port() — port 0 searches (bind_info filled
// when given). 0 or EADDRINUSE.
int inet_csk_get_port(world& w, sock_id sk, uint16_t port, bind_info* info = nullptr);

// net/ipv4/af_inet.c: __inet_bind() — the checks in the kernel's order: EADDRNOTAVAIL,
// EACCES, EINVAL, then get_port's errno.
int inet_bind(world& w, sock_id sk, const endpoint& addr, bind_info* info = nullptr);

}  // namespace portsim::net
