// portsim-replay: socket-level helpers. Kernel side: net/ipv4/af_inet.c, net/ipv6/af_inet6.c
// (inet_getname), net/core/sock.c (sk_setsockopt), kernel/capability.c (capset).
#include "sockcalls.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "errors.h"

namespace portsim_replay {

// Not in every libc header yet (include/uapi/linux/in.h).
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif

void throw_errno(const std::string& what, int err) {
  throw SysError(what + ": " + std::strerror(err));
}

std::string errno_name(int err) {
  if (err == 0) return "OK";
  if (err == EAGAIN) return "EAGAIN";          // not EWOULDBLOCK
  if (err == EOPNOTSUPP) return "EOPNOTSUPP";  // not ENOTSUP
  if (const char* n = strerrorname_np(err)) return n;
  return "E" + std::to_string(err);
}

SockAddr sockaddr_of(const Endpoint& e) {
  SockAddr out;
  std::uint16_t port = htons(static_cast<std::uint16_t>(e.port.value_or(0)));
  if (e.family == 6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&out.ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = port;
    if (inet_pton(AF_INET6, e.ip.c_str(), &s6->sin6_addr) != 1) throw SysError("bad IPv6 address " + e.ip);
    out.len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&out.ss);
    s4->sin_family = AF_INET;
    s4->sin_port = port;
    if (inet_pton(AF_INET, e.ip.c_str(), &s4->sin_addr) != 1) throw SysError("bad IPv4 address " + e.ip);
    out.len = sizeof(sockaddr_in);
  }
  return out;
}

std::string sockaddr_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET6) {
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(s6->sin6_port));
  }
  auto* s4 = reinterpret_cast<const sockaddr_in*>(sa);
  inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(s4->sin_port));
}

std::optional<std::string> sock_local(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
  return sockaddr_text(reinterpret_cast<sockaddr*>(&ss));
}

int sock_apply_opt(int fd, const SockOpt& opt) {
  int v = static_cast<int>(opt.value);
  int rc;
  if (opt.name == "SO_REUSEADDR") {
    rc = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, sizeof v);
  } else if (opt.name == "SO_REUSEPORT") {
    rc = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, sizeof v);
  } else if (opt.name == "IP_BIND_ADDRESS_NO_PORT") {
    rc = setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &v, sizeof v);
  } else if (opt.name == "IPV6_V6ONLY") {
    rc = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v);
  } else if (opt.name == "SO_LINGER") {  // value 1: {on, 0 s} (abortive close); 0: off
    linger l{v ? 1 : 0, 0};
    rc = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  } else if (opt.name == "TCP_SYNCNT") {
    rc = setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &v, sizeof v);
  } else if (opt.name == "IP_LOCAL_PORT_RANGE") {  // lo | hi << 16
    auto u = static_cast<std::uint32_t>(opt.value);
    rc = setsockopt(fd, SOL_IP, IP_LOCAL_PORT_RANGE, &u, sizeof u);
  } else {
    throw Unsupported("socket option " + opt.name);
  }
  return rc == 0 ? 0 : errno;
}

int cred_drop_to(const Cred& cred) {
  if (cred.cap_net_bind_service && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return errno;
  if (setgroups(0, nullptr) != 0) return errno;
  auto id = static_cast<unsigned>(cred.uid);
  if (setresgid(id, id, id) != 0) return errno;
  if (setresuid(id, id, id) != 0) return errno;
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  std::uint32_t bits = cred.cap_net_bind_service ? 1u << CAP_NET_BIND_SERVICE : 0;
  data[0].effective = data[0].permitted = bits;
  if (syscall(SYS_capset, &hdr, data) != 0) return errno;
  return 0;
}

}  // namespace portsim_replay
