// portsim-replay: network namespaces (the holders, setns, the private-namespace guard).
#pragma once

#include <string>
#include <sys/types.h>

namespace portsim_replay {

/// "net:[4026532290]": the calling thread's network namespace (/proc/thread-self/ns/net).
std::string netns_id();

/// Switch the calling thread to the network namespace behind `fd` (setns, CLONE_NEWNET).
void netns_enter(int fd);

/// Refuse (stderr line, exit 3) unless this process is in a fresh private network namespace:
/// not the one named by $PROBE_HOST_NETNS (the driver's) and holding no interface besides lo
/// and the kernel's fallback tunnels (tools/probes/nsprobe.py's require_private_netns). Then
/// brings lo up.
void require_private_netns();

/// A child process that unshare(CLONE_NEWNET)ed and sleeps; the namespace lives as long as it
/// (or the fd kept here) does. PR_SET_PDEATHSIG: it never outlives the replay.
class NetnsHolder {
 public:
  explicit NetnsHolder(const std::string& name);
  ~NetnsHolder();
  NetnsHolder(const NetnsHolder&) = delete;
  NetnsHolder& operator=(const NetnsHolder&) = delete;

  int fd() const { return fd_; }
  pid_t pid() const { return pid_; }
  /// Kill the holder (by its pid) and close the fd.
  void stop();

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
};

}  // namespace portsim_replay
