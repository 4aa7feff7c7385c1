// Kernel profiles: the named behaviours that differ between Linux 3.10 and 6.18, one table.
//
// A profile is a row: one value per behaviour. The model branches on these behaviours, never
// on a version number. Each behaviour names the commit that introduced it (kBehaviours in
// sim/net/kernel_profile.cc); ../shared/KERNEL-PROFILES.md is the map, each version's kernel
// source the authority. Adding a profile is adding a row (kProfiles) — and, for an LTS branch,
// its point-release thresholds (kBackports).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portsim::net {

// connect() autobind walk (__inet_hash_connect), KERNEL-PROFILES §1.1.
enum class connect_era : uint8_t {
  c1_sequential,     // ≤ 4.1: global hint, port = low + (i + offset) % remaining, i = 1.., hint += i
  c2_even_start,     // 4.2 (07f4c90062f8): offset made even, step 1, hint += (i + 2) & ~1
  c3_parity_passes,  // 4.6 (1580ab63fc9a): two parity passes of step 2, global hint += i + 2
  c4_perturb_table,  // 5.12 (190cc82489f4): per-destination cells of table_perturb
  c5_dhps,           // 5.18 (ca7af0402550 …): 2^16 cells, random increments; = the 6.18 walk
};
// bind(0) / listen() autobind (inet_csk_get_port → inet_csk_find_open_port), §1.2.
enum class bind_era : uint8_t {
  b1_random_rover,   // 3.10: random rover, +1 with wrap, fewest-owners sharing fallback
  b2_lower_half,     // 4.2-era: B1 + SO_REUSEADDR tries the lower half of the range first
  b3_odd_first,      // 4.6 (ea8add2b1903): odd ports first, step 2, halves, sharing fallback
  b4_no_sharing,     // 4.11 (b9470c27607b): no fewest-owners fallback
  b5_autobind_reuse, // 5.7 (4b01a9674231): + net.ipv4.ip_autobind_reuse relaxed rescan
};
// secure_ipv4_port_ephemeral(): what the port offset is (§1.1, "Port-offset hash").
enum class port_hash : uint8_t {
  md5,                 // ≤ 4.10: md5_transform(saddr, daddr, dport ^ secret[14], secret[15]), 32 bit
  siphash32,           // 4.11 (7cd23e5300c1): siphash_3u32, truncated to 32 bit
  siphash32_timeseed,  // LTS interim (4dfa9b438ee3 alone): siphash_4u32 with jiffies/(10 HZ), 32 bit
  siphash64,           // 4.9.320: 64 bit (b2d057560b81) without the 10-s resalt
  siphash64_timeseed,  // 5.18 (b2d057560b81 + 4dfa9b438ee3): 64 bit with the 10-s time seed
};
// table_perturb index and offset (190cc82489f4, 9e9b70ae923b, e8161345ddbb, 4c2c8f03a5ab).
enum class perturb_layout : uint8_t {
  none,                // C1–C3: one global hint
  hash32_256,          // 5.12: index = hash_32(po, 8), offset = perturb + low 32 bits of po
  low16_65536,         // 5.18: index = po & 0xffff, offset from po >> 32
};
// Noise on the increment after a successful connect (c579bd1b4021, ca7af0402550).
enum class perturb_noise : uint8_t { none, one_in_16, random_max };
// IP_LOCAL_PORT_RANGE socket option (91d0b78c5177, 207184853dbd).
enum class iplpr_mode : uint8_t { absent, parity, no_parity };
// When may connect() recycle a TIME_WAIT (tcp_twsk_unique)? §4.
enum class tw_reuse_clock : uint8_t {
  seconds_since_last_ts,  // ≤ 4.18: get_seconds() - tw_ts_recent_stamp > 1
  seconds_after_last_ts,  // 4.19 (cca9bab1b72c) … 6.13: time_after32(ktime_get_seconds(), tw_ts_recent_stamp)
  ms_since_entry,         // 6.14 (19ce8cd30465): now_ms > tw_entry_stamp + tcp_tw_reuse_delay
};
// SYN retransmission schedule (tcp_retransmit_timer).
enum class syn_backoff : uint8_t { exponential, linear_then_exponential /* 6.5, ccce324dabfe */ };

// One sysctl as one kernel has it: does it exist, its default, the values a write accepts.
enum class sysctl_handler : uint8_t {
  dointvec,          // any int (negatives too)
  dointvec_minmax,   // int within [min, max]
  douintvec_minmax,  // unsigned within [min, max]: a negative is EINVAL
  dou8vec_minmax,    // u8 within [min, max] (max ≤ 255): a negative is EINVAL
  dointvec_jiffies,  // seconds, stored as jiffies: any int up to INT_MAX / HZ, negatives too
  special,           // its own handler (port range, reserved ports, unprivileged start)
};
struct sysctl_spec {
  bool exists = true;
  sysctl_handler handler = sysctl_handler::dointvec;
  long long min = 0, max = 0;
  std::string def;  // default, as /proc/sys prints it
};

struct kernel_profile {
  std::string name;          // what the user asked for: "4.19", "5.10.119"
  std::string covers;        // which kernels behave like this row
  connect_era connect = connect_era::c5_dhps;
  port_hash hash = port_hash::siphash64_timeseed;
  perturb_layout perturb = perturb_layout::low16_65536;
  perturb_noise noise = perturb_noise::random_max;
  bind_era bind = bind_era::b5_autobind_reuse;
  bool bind0_reuseport_ok = false;  // < 4.10: bind(0) may join a same-uid SO_REUSEPORT port (0643ee4fd1b7)
  iplpr_mode iplpr = iplpr_mode::no_parity;
  bool opt_bind_address_no_port = true;  // IP_BIND_ADDRESS_NO_PORT (90c337da1524, 4.2)
  syn_backoff syn = syn_backoff::linear_then_exponential;
  tw_reuse_clock tw_clock = tw_reuse_clock::ms_since_entry;
  bool tw_reuse_loopback_mode = true;  // tcp_tw_reuse = 2 means loopback only (79e9fed46038, 4.18)
  bool tw_finwait2_excluded = true;    // 0d9e5df4a257 (6.12; 5.10.227)
  bool bucket_release = true;          // d57f4b874946 (6.18)
  bool netns_port_range = true;        // ip_local_port_range per netns (3.13?; 3.10 global)
  bool netns_reserved_ports = true;    // ip_local_reserved_ports per netns (122ff243f5f1, 3.16)
  // UDP (KERNEL-PROFILES §1.3). udp_lib_get_port honours IP_LOCAL_PORT_RANGE exactly when the
  // option exists (91d0b78c5177, 6.3): iplpr != absent. "udp: Fix wildcard bind conflict check
  // when using hash2" (CVE-2026-31503; 7.0, stable 6.18.21 / 6.12.80 / 6.6.131 / 6.1.168): before
  // it, once a port's primary chain holds more than 10 sockets, a wildcard bind checks only the
  // hash2 chains and succeeds. Every branch as released has the bug; older LTS keep it (U).
  bool udp_hash2_wildcard_check = true;
  // The 2021 u8 conversions of ipv4 sysctls (proc_dou8vec_minmax: ip_nonlocal_bind,
  // tcp_timestamps, tcp_synack_retries accept 0..255 only; 5.13/5.14, D). Debian's 5.10.262
  // has them too (VM oracle, tests/live/vm/5.10: 256 and -1 give EINVAL); the 5.10.y point
  // release that took them is not known (U).
  bool sysctl_u8 = true;
  // An AF_INET6 socket whose source is v4-mapped (bound to ::ffff:a.b.c.d) sending to a native
  // IPv6 address: ip6_dst_lookup_tail() refuses the route with EAFNOSUPPORT (connect(), UDP
  // connect() and sendto()). ec5e3b0a1d41 "ipv6: Inhibit IPv4-mapped src address on the wire"
  // (merged during 4.10-rc, D); before it the packet left with the mapped source (U: not modelled).
  bool v4mapped_src_refused = true;
  // listen() on a socket that was once in ehash and is disconnected again (SS_UNCONNECTED: a
  // refused connect(), whose sock_error runs tcp_disconnect; AF_UNSPEC) gets its port
  // (autobinding one; a conflict's EADDRINUSE wins), keeps it, and fails with EINVAL, the
  // state CLOSE. (Still SS_CONNECTED — reset or closed by the peer, accepted — every kernel
  // refuses it in inet_listen.) Measured on the live 6.18.44 kernel (unshare -n, 2026-12-02;
  // a connect that failed before ehash, e.g. EADDRNOTAVAIL, listens fine); Debian's 5.10.262,
  // 6.1.192 and 6.12.118 listen (VM oracle). Its icsk has a field `unhashed_state` (BTF) that
  // upstream 6.18.0 lacks (net-next 404381b4f105 "tcp: Set unhashed_state in
  // inet_twsk_hashdance_schedule()" extends it); the commit that added it and the first 6.18.y
  // release with it are U: the profile has it from 6.18.44 (V).
  bool listen_refused_after_unhash = false;
  // sysctl name -> spec, in the order of the 6.18 table (sysctl_names()).
  std::vector<std::pair<std::string_view, sysctl_spec>> sysctls;

  const sysctl_spec* sysctl(std::string_view n) const;
};

// The profile for "X.Y" (the latest point release of that branch) or "X.Y.Z" (exact).
// nullopt and `err` = "unknown kernel \"…\" (known: 3.10, 4.4, …)" for anything else.
std::optional<kernel_profile> find_kernel_profile(std::string_view version, std::string& err);
// 6.18: the default.
const kernel_profile& default_kernel_profile();
// The branches with a row, oldest first: "3.10", "4.4", …, "6.18".
std::vector<std::string> kernel_profile_names();

// The LTS point releases of a branch that changed a behaviour, "4.19.246: what (grade)"; an
// exact release "X.Y.Z" marks the later ones "(not in this release)".
std::vector<std::string> kernel_backports(std::string_view version);
// The connect() era of the branch as released (X.Y.0), before any backport.
std::string_view released_connect_era(std::string_view version);

// One line of `portsim kernels X`: a behaviour, its value in X, its value in `base`, and the
// commit that made the difference.
struct behaviour_value {
  std::string name, value, commit;
};
std::vector<behaviour_value> describe(const kernel_profile& p);
// Behaviours whose value differs: (value in p, value in base, commit).
struct behaviour_diff {
  std::string name, value, base_value, commit;
};
std::vector<behaviour_diff> diff(const kernel_profile& p, const kernel_profile& base);

std::string_view to_string(connect_era e);
std::string_view to_string(bind_era e);

}  // namespace portsim::net
