// portsim-replay: network namespaces. Kernel side: net/core/net_namespace.c (setns, unshare).
#include "netns.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "errors.h"
#include "rtnl.h"

namespace portsim_replay {

std::string netns_id() {
  char buf[64];
  ssize_t n = readlink("/proc/thread-self/ns/net", buf, sizeof buf - 1);
  if (n < 0) throw_errno("readlink /proc/thread-self/ns/net", errno);
  return std::string(buf, static_cast<std::size_t>(n));
}

void netns_enter(int fd) {
  if (setns(fd, CLONE_NEWNET) != 0) throw_errno("setns", errno);
}

namespace {

/// Interfaces a fresh namespace may hold: lo and the fallback devices of tunnel modules.
bool is_fallback_interface(const std::string& name) {
  static const std::set<std::string> kFallback{"lo",     "tunl0",   "sit0",    "ip6tnl0", "ip6gre0",
                                               "gre0",   "gretap0", "erspan0", "ip_vti0", "ip6_vti0"};
  return kFallback.count(name) != 0;
}

/// The interface names listed in /proc/net/dev (of the calling thread's namespace).
std::set<std::string> interfaces() {
  std::ifstream in("/proc/net/dev");
  if (!in) throw_errno("open /proc/net/dev", errno);
  std::set<std::string> out;
  std::string line;
  for (int n = 0; std::getline(in, line); ++n) {
    if (n < 2) continue;  // two header lines
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    out.insert(name);
  }
  return out;
}

}  // namespace

void require_private_netns() {
  std::string mine = netns_id();
  const char* host = std::getenv("PROBE_HOST_NETNS");
  std::set<std::string> ifaces = interfaces();
  bool only_fallback = true;
  for (const auto& i : ifaces) only_fallback = only_fallback && is_fallback_interface(i);
  if ((host && *host && mine == host) || !only_fallback) {
    std::string list;
    for (const auto& i : ifaces) list += (list.empty() ? "" : ", ") + i;
    std::fprintf(stderr,
                 "refusing to run: not inside a fresh private network namespace (use unshare -n); "
                 "interfaces=[%s]\n", list.c_str());
    std::exit(3);
  }
  rtnl_link_up("lo");
}

NetnsHolder::NetnsHolder(const std::string& name) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe", errno);
  pid_t pid = fork();
  if (pid < 0) throw_errno("fork", errno);
  if (pid == 0) {  // the holder: only async-signal-safe calls from here
    close(p[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (unshare(CLONE_NEWNET) == 0 && write(p[1], "1", 1) == 1) {
      close(p[1]);
      for (int k = 0; k < 3600; ++k) sleep(1);  // bounded: an hour; normally killed much sooner
    }
    _exit(0);
  }
  close(p[1]);
  char ok = 0;
  ssize_t n;
  do n = read(p[0], &ok, 1);
  while (n < 0 && errno == EINTR);
  close(p[0]);
  pid_ = pid;
  if (n != 1 || ok != '1') {
    waitpid(pid, nullptr, 0);
    pid_ = -1;
    throw SysError("cannot create a network namespace for " + name);
  }
  std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    int e = errno;
    stop();
    throw_errno("open " + path, e);
  }
}

NetnsHolder::~NetnsHolder() { stop(); }

void NetnsHolder::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

}  // namespace portsim_replay
