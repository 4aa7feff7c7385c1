// portsim-replay: socket-level helpers (addresses, options, credentials, errno names).
#pragma once

#include <netinet/in.h>
#include <optional>
#include <string>
#include <sys/socket.h>

#include "plan.h"

namespace portsim_replay {

/// The errno name as portsim prints it (sim/base/errno_name.cc): 0 -> "OK", 11 -> "EAGAIN",
/// 95 -> "EOPNOTSUPP"; an unnamed number -> "E<number>".
std::string errno_name(int err);

/// A sockaddr of the endpoint's own family (port 0 when the endpoint has none), whatever the
/// socket's family: the kernel, not the replay, answers a mismatch.
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
};
SockAddr sockaddr_of(const Endpoint& e);

/// "127.0.0.1:40000" / "[::1]:40000" from a sockaddr (scope id dropped).
std::string sockaddr_text(const sockaddr* sa);

/// getsockname() of fd as text; nullopt if the kernel refuses.
std::optional<std::string> sock_local(int fd);

/// setsockopt for one plan option (the plan emitter admits only these names); 0 or errno.
int sock_apply_opt(int fd, const SockOpt& opt);

/// In a forked child: become uid/gid `uid` keeping only CAP_NET_BIND_SERVICE (if asked):
/// PR_SET_KEEPCAPS, setgroups({}), setresgid, setresuid, capset. 0 or errno.
int cred_drop_to(const Cred& cred);

}  // namespace portsim_replay
