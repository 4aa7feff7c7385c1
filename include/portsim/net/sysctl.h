// Per-netns sysctls under their /proc/sys names, with the kernel's defaults (6.18, read live on
// our machines; KERNEL-MAP §0) and the kernel's write validation (net/ipv4/sysctl_net_ipv4.c).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "portsim/net/port_bitmap.h"

namespace portsim::net {

struct sysctls {
  uint16_t ip_local_port_range_lo = 32768, ip_local_port_range_hi = 60999;
  PortBitmap ip_local_reserved_ports;  // empty by default
  int ip_unprivileged_port_start = 1024;
  int ip_autobind_reuse = 0;
  int ip_nonlocal_bind = 0;
  int tcp_tw_reuse = 2;
  int tcp_tw_reuse_delay = 1000;  // ms
  int tcp_timestamps = 1;
  int tcp_syn_retries = 6;
  int tcp_syn_linear_timeouts = 4;
  int tcp_synack_retries = 5;
  int tcp_fin_timeout = 60;  // s
  int tcp_max_tw_buckets = 131072;
  int tcp_rto_max_ms = 120000;
  int somaxconn = 4096;  // net.core.somaxconn: listen() caps its backlog here
  int tcp_tw_recycle = 0;  // ≤ 4.11 only: accepted, its effect is not modelled
};

struct kernel_profile;

// Writes `value` (the text one would echo into /proc/sys) to `name`. Returns "" on success, or
// why the write is refused: an unknown name (with a suggestion) or what the kernel rejects.
// Validation follows the 6.18 kernel (the default profile).
std::string sysctl_write(sysctls& s, std::string_view name, std::string_view value);
// The same for the kernel `k`: a sysctl it lacks is refused naming the version; its handler and
// bounds decide what is accepted. `hz` scales the proc_dointvec_jiffies limit (INT_MAX / HZ).
std::string sysctl_write(sysctls& s, const kernel_profile& k, std::string_view name, std::string_view value,
                         uint32_t hz = 250);
// What reading /proc/sys/NAME prints (tabs as spaces, no newline); "" for an unknown name.
std::string sysctl_read(const sysctls& s, std::string_view name);
// The defaults of kernel `k` (sysctl_spec::def of each sysctl it has).
sysctls sysctl_defaults(const kernel_profile& k);
// Every sysctl name portsim models, for --help and suggestions.
const std::vector<std::string_view>& sysctl_names();

}  // namespace portsim::net
