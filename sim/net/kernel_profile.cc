// The kernel profile table: which behaviour each kernel has, and the commit that introduced it.
//
// Three tables. kBehaviours: every named behaviour with the commit that introduced it (what
// `portsim kernels X` prints). kProfiles: one row per branch as released (X.Y.0), read from that
// version's source (KERNEL-PROFILES §1, §6, §7). kBackports: what an LTS branch received later,
// at which point release (§3) — "X.Y" means the latest point release, so every backport of the
// branch applies; "X.Y.Z" applies those with point <= Z. Sysctl rows (existence, default,
// accepted values) come from sysctl_rows(): the 6.18 row is the live kernel's answers
// (tests/live/sysctl_writes.json); older rows revert what later commits changed.
#include "portsim/net/kernel_profile.h"

#include <charconv>
#include <fmt/format.h>

namespace portsim::net {

std::string_view to_string(connect_era e) {
  switch (e) {
    case connect_era::c1_sequential: return "C1 sequential (global hint, +1)";
    case connect_era::c2_even_start: return "C2 even start (global hint, step 1)";
    case connect_era::c3_parity_passes: return "C3 two parity passes (global hint)";
    case connect_era::c4_perturb_table: return "C4 table_perturb[256]";
    case connect_era::c5_dhps: return "C5 table_perturb[65536] + random increments";
  }
  return "?";
}

std::string_view to_string(bind_era e) {
  switch (e) {
    case bind_era::b1_random_rover: return "B1 random rover +1, fewest-owners fallback";
    case bind_era::b2_lower_half: return "B2 B1 + SO_REUSEADDR lower half first";
    case bind_era::b3_odd_first: return "B3 odd first, step 2, fewest-owners fallback";
    case bind_era::b4_no_sharing: return "B4 odd first, no sharing fallback";
    case bind_era::b5_autobind_reuse: return "B5 B4 + ip_autobind_reuse";
  }
  return "?";
}

namespace {

std::string_view to_string(port_hash h) {
  switch (h) {
    case port_hash::md5: return "MD5 (md5_transform), 32 bit";
    case port_hash::siphash32: return "SipHash, 32 bit";
    case port_hash::siphash32_timeseed: return "SipHash + 10-s time seed, 32 bit";
    case port_hash::siphash64: return "SipHash, 64 bit";
    case port_hash::siphash64_timeseed: return "SipHash + 10-s time seed, 64 bit";
  }
  return "?";
}
std::string_view to_string(perturb_layout l) {
  switch (l) {
    case perturb_layout::none: return "none (one global hint)";
    case perturb_layout::hash32_256: return "256 cells, index hash_32(po, 8)";
    case perturb_layout::low16_65536: return "65536 cells, index po & 0xffff, offset po >> 32";
  }
  return "?";
}
std::string_view to_string(perturb_noise n) {
  switch (n) {
    case perturb_noise::none: return "none";
    case perturb_noise::one_in_16: return "i = 2 one time in 16 when i == 0";
    case perturb_noise::random_max: return "i = max(i, 2 * U{0..7})";
  }
  return "?";
}
std::string_view to_string(iplpr_mode m) {
  switch (m) {
    case iplpr_mode::absent: return "absent (ENOPROTOOPT)";
    case iplpr_mode::parity: return "exists, connect keeps the parity passes";
    case iplpr_mode::no_parity: return "exists, connect walks step 1 without parity";
  }
  return "?";
}
const char* yesno(bool b) { return b ? "yes" : "no"; }

struct version {
  int major = 0, minor = 0, patch = 0;
  auto operator<=>(const version&) const = default;
};

// One branch as released (X.Y.0).
struct row {
  version v;
  const char* covers;
  kernel_profile p;
};

kernel_profile make(connect_era c, port_hash h, perturb_layout l, perturb_noise n, bind_era b, bool reuseport_ok,
                    iplpr_mode iplpr, bool no_port, syn_backoff syn, tw_reuse_clock clock, bool tw_lo, bool fw2,
                    bool rel, bool netns_range, bool netns_reserved) {
  kernel_profile p;
  p.connect = c;
  p.hash = h;
  p.perturb = l;
  p.noise = n;
  p.bind = b;
  p.bind0_reuseport_ok = reuseport_ok;
  p.iplpr = iplpr;
  p.opt_bind_address_no_port = no_port;
  p.syn = syn;
  p.tw_clock = clock;
  p.tw_reuse_loopback_mode = tw_lo;
  p.tw_finwait2_excluded = fw2;
  p.bucket_release = rel;
  p.netns_port_range = netns_range;
  p.netns_reserved_ports = netns_reserved;
  p.udp_hash2_wildcard_check = false;  // fixed only by the stable backports (kBackports)
  return p;
}

using C = connect_era;
using B = bind_era;
using H = port_hash;
using L = perturb_layout;
using N = perturb_noise;
using I = iplpr_mode;
constexpr auto EXP = syn_backoff::exponential, LIN = syn_backoff::linear_then_exponential;
// TIME_WAIT reuse clock: SEC ≤ 4.18 (get_seconds() - tw_ts_recent_stamp > 1); SEC1 from 4.19,
// cca9bab1b72c "tcp: use monotonic timestamps for PAWS": time_after32(ktime_get_seconds(),
// tw_ts_recent_stamp), i.e. one whole-second boundary is enough (5.10/6.1/6.12 source, and the
// Debian 6.1.192 guest reusing a TIME_WAIT 0.5 s after its last timestamp: tests/live/vm/exact-6.1.json);
// MS from 6.14.
constexpr auto SEC = tw_reuse_clock::seconds_since_last_ts, SEC1 = tw_reuse_clock::seconds_after_last_ts,
               MS = tw_reuse_clock::ms_since_entry;

// The rows, as each branch was released. Columns: connect walk, port-offset hash, perturb
// layout, increment noise, bind(0) walk, bind(0) joins reuseport ports, IP_LOCAL_PORT_RANGE,
// IP_BIND_ADDRESS_NO_PORT, SYN backoff, TIME_WAIT reuse clock, tcp_tw_reuse=2 loopback mode,
// FIN_WAIT2 excluded from reuse, 6.18 bucket release, per-netns port range, per-netns reserved.
const std::vector<row>& rows() {
  static const std::vector<row> r = {
      {{3, 10}, "3.10.y (RHEL 7 base; vanilla)",
       make(C::c1_sequential, H::md5, L::none, N::none, B::b1_random_rover, true, I::absent, false, EXP, SEC, false, false, false, false, false)},
      {{4, 4}, "4.2 - 4.5 (Ubuntu 16.04)",
       make(C::c2_even_start, H::md5, L::none, N::none, B::b2_lower_half, true, I::absent, true, EXP, SEC, false, false, false, true, true)},
      {{4, 9}, "4.6 - 4.10 (Debian 9)",
       make(C::c3_parity_passes, H::md5, L::none, N::none, B::b3_odd_first, true, I::absent, true, EXP, SEC, false, false, false, true, true)},
      {{4, 14}, "4.11 - 4.17",
       make(C::c3_parity_passes, H::siphash32, L::none, N::none, B::b4_no_sharing, false, I::absent, true, EXP, SEC, false, false, false, true, true)},
      {{4, 18}, "4.18 (RHEL 8 base)",
       make(C::c3_parity_passes, H::siphash32, L::none, N::none, B::b4_no_sharing, false, I::absent, true, EXP, SEC, true, false, false, true, true)},
      {{4, 19}, "4.19 (Debian 10)",
       make(C::c3_parity_passes, H::siphash32, L::none, N::none, B::b4_no_sharing, false, I::absent, true, EXP, SEC1, true, false, false, true, true)},
      {{5, 4}, "5.4 (Ubuntu 20.04)",
       make(C::c3_parity_passes, H::siphash32, L::none, N::none, B::b4_no_sharing, false, I::absent, true, EXP, SEC1, true, false, false, true, true)},
      {{5, 10}, "5.10 (Debian 11)",
       make(C::c3_parity_passes, H::siphash32, L::none, N::none, B::b5_autobind_reuse, false, I::absent, true, EXP, SEC1, true, false, false, true, true)},
      {{5, 15}, "5.12 - 5.17, 5.15 (Ubuntu 22.04)",
       make(C::c4_perturb_table, H::siphash32, L::hash32_256, N::one_in_16, B::b5_autobind_reuse, false, I::absent, true, EXP, SEC1, true, false, false, true, true)},
      {{6, 1}, "5.18 - 6.2, 6.1 (Debian 12)",
       make(C::c5_dhps, H::siphash64_timeseed, L::low16_65536, N::random_max, B::b5_autobind_reuse, false, I::absent, true, EXP, SEC1, true, false, false, true, true)},
      {{6, 6}, "6.5 - 6.7, 6.6",
       make(C::c5_dhps, H::siphash64_timeseed, L::low16_65536, N::random_max, B::b5_autobind_reuse, false, I::parity, true, LIN, SEC1, true, false, false, true, true)},
      {{6, 12}, "6.8 - 6.13, 6.12",
       make(C::c5_dhps, H::siphash64_timeseed, L::low16_65536, N::random_max, B::b5_autobind_reuse, false, I::no_parity, true, LIN, SEC1, true, true, false, true, true)},
      {{6, 18}, "6.14 - 6.18 (live oracle: 6.18.44)",
       make(C::c5_dhps, H::siphash64_timeseed, L::low16_65536, N::random_max, B::b5_autobind_reuse, false, I::no_parity, true, LIN, MS, true, true, true, true, true)},
  };
  return r;
}

// An LTS point release that took a change (KERNEL-PROFILES §3; V = release announcement or
// stable-queue listing, D = inferred from the queue date).
struct backport {
  version v;  // first point release that has it
  const char* what;
  void (*apply)(kernel_profile&);
};

void resalt32(kernel_profile& p) { p.hash = H::siphash32_timeseed; }
void dhps_interim(kernel_profile& p) {  // C4': 256 cells, 64-bit po with time seed, no noise
  p.connect = C::c4_perturb_table;
  p.hash = H::siphash64_timeseed;
  p.perturb = L::hash32_256;
  p.noise = N::none;
}
void dhps_full(kernel_profile& p) {
  p.connect = C::c5_dhps;
  p.hash = H::siphash64_timeseed;
  p.perturb = L::low16_65536;
  p.noise = N::random_max;
}
void dhps_full_no_resalt(kernel_profile& p) {
  dhps_full(p);
  p.hash = H::siphash64;
}
void finwait2(kernel_profile& p) { p.tw_finwait2_excluded = true; }
void iplpr_parity(kernel_profile& p) { p.iplpr = I::parity; }
void udp_hash2_fix(kernel_profile& p) { p.udp_hash2_wildcard_check = true; }
void sysctl_u8(kernel_profile& p) { p.sysctl_u8 = true; }
void listen_after_unhash(kernel_profile& p) { p.listen_refused_after_unhash = true; }

const std::vector<backport>& backports() {
  static const std::vector<backport> b = {
      {{4, 9, 320}, "190cc82489f4 + b2d057560b81 + 9e9b70ae923b + ca7af0402550 + 4c2c8f03a5ab (no resalt): C5", dhps_full_no_resalt},
      {{4, 14, 280}, "4dfa9b438ee3 resalt (D)", resalt32},
      {{4, 14, 285}, "DHPS series (V .285): C5", dhps_full},
      {{4, 19, 244}, "4dfa9b438ee3 resalt (D)", resalt32},
      {{4, 19, 246}, "190cc82489f4 + b2d057560b81 (V): C4 without noise", dhps_interim},
      {{4, 19, 249}, "9e9b70ae923b + ca7af0402550 + 4c2c8f03a5ab + e8161345ddbb (V): C5", dhps_full},
      {{5, 4, 195}, "4dfa9b438ee3 resalt (D)", resalt32},
      {{5, 4, 197}, "190cc82489f4 + b2d057560b81 (V): C4 without noise", dhps_interim},
      {{5, 4, 201}, "9e9b70ae923b + ca7af0402550 + 4c2c8f03a5ab + e8161345ddbb (V): C5", dhps_full},
      {{5, 10, 117}, "4dfa9b438ee3 resalt (V)", resalt32},
      {{5, 10, 119}, "190cc82489f4 + b2d057560b81 (V): C4 without noise", dhps_interim},
      {{5, 10, 125}, "9e9b70ae923b + ca7af0402550 + 4c2c8f03a5ab + e8161345ddbb (V): C5", dhps_full},
      {{5, 10, 227}, "0d9e5df4a257 FIN_WAIT2 excluded from TIME_WAIT reuse (V)", finwait2},
      // Debian 5.10.262-1 refuses 256 and -1 for ip_nonlocal_bind, tcp_timestamps and
      // tcp_synack_retries (VM oracle sysctl probe, tests/live/vm/5.10); first point release U.
      {{5, 10, 262}, "u8 ipv4 sysctl handlers (V on 5.10.262 in a VM; first point release U)", sysctl_u8},
      {{6, 18, 44}, "listen() refused (EINVAL) on a disconnected socket once in ehash: icsk unhashed_state (V on the live 6.18.44; "
                    "commit and first point release U)", listen_after_unhash},
      {{5, 15, 41}, "4dfa9b438ee3 + b2d057560b81 + 9e9b70ae923b + ca7af0402550 + 4c2c8f03a5ab (V): C5", dhps_full},
      // 91d0b78c5177 came to 6.1.y as a stable dependency of "ipv{4,6}/raw: fix output xfrm
      // lookup wrt protocol" (stable revlist: between the Linux 6.1.31 and 6.1.32 tags, D). The
      // Debian 6.1.192-3 guest takes the option and walks the parity passes inside the socket's
      // range (tools/kernel-oracle --kernel 6.1 --exact tests/exact/iplpr-step1.json; V).
      {{6, 1, 32}, "91d0b78c5177 IP_LOCAL_PORT_RANGE, parity passes kept (D; VM 6.1.192 V)", iplpr_parity},
      // CVE-2026-31503 "udp: Fix wildcard bind conflict check when using hash2" (mainline 7.0),
      // stable releases per the NVD ranges (KERNEL-PROFILES §1.3; V for these four, U for older LTS).
      {{6, 1, 168}, "udp: Fix wildcard bind conflict check when using hash2 (CVE-2026-31503, V)", udp_hash2_fix},
      {{6, 6, 131}, "udp: Fix wildcard bind conflict check when using hash2 (CVE-2026-31503, V)", udp_hash2_fix},
      {{6, 12, 80}, "udp: Fix wildcard bind conflict check when using hash2 (CVE-2026-31503, V)", udp_hash2_fix},
      {{6, 18, 21}, "udp: Fix wildcard bind conflict check when using hash2 (CVE-2026-31503, V)", udp_hash2_fix},
  };
  return b;
}

// --- sysctls --------------------------------------------------------------------------------

sysctl_spec spec(sysctl_handler h, long long mn, long long mx, std::string def) {
  return sysctl_spec{true, h, mn, mx, std::move(def)};
}
constexpr long long kIntMax = 2147483647, kIntMin = -2147483648LL;

// The sysctl row of a profile. 6.18 values: the live 6.18.44 (tests/live/sysctl_writes.json)
// and net/ipv4/sysctl_net_ipv4.c; what changed before is reverted per behaviour/version.
std::vector<std::pair<std::string_view, sysctl_spec>> sysctl_rows(const kernel_profile& p, version v) {
  using SH = sysctl_handler;
  const bool u8 = p.sysctl_u8;  // the 2021 u8 conversions of the ipv4 sysctls (5.13/5.14; D)
  std::vector<std::pair<std::string_view, sysctl_spec>> s;
  // ipv4_local_port_range(): 07f4c90062f8 (4.2) moved the default high end 61000 -> 60999.
  s.push_back({"net.ipv4.ip_local_port_range",
               spec(SH::special, 1, 65535, v >= version{4, 2} ? "32768 60999" : "32768 61000")});
  s.push_back({"net.ipv4.ip_local_reserved_ports", spec(SH::special, 0, 65535, "")});
  // 4548b683b781 (4.11): ip_unprivileged_port_start; before, the limit is the constant PROT_SOCK.
  sysctl_spec unpriv = spec(SH::special, 0, 65535, "1024");
  unpriv.exists = v >= version{4, 11};
  s.push_back({"net.ipv4.ip_unprivileged_port_start", unpriv});
  // 4b01a9674231 (5.7): ip_autobind_reuse, 0..1.
  sysctl_spec abr = spec(u8 ? SH::dou8vec_minmax : SH::dointvec_minmax, 0, 1, "0");
  abr.exists = p.bind == B::b5_autobind_reuse;
  s.push_back({"net.ipv4.ip_autobind_reuse", abr});
  s.push_back({"net.ipv4.ip_nonlocal_bind", u8 ? spec(SH::dou8vec_minmax, 0, 255, "0") : spec(SH::dointvec, kIntMin, kIntMax, "0")});
  // 79e9fed46038 (4.18): 0/1/2 with default 2; before, proc_dointvec and default 0.
  s.push_back({"net.ipv4.tcp_tw_reuse", !p.tw_reuse_loopback_mode ? spec(SH::dointvec, kIntMin, kIntMax, "0")
                                        : u8 ? spec(SH::dou8vec_minmax, 0, 2, "2")
                                             : spec(SH::dointvec_minmax, 0, 2, "2")});
  // ca6a6f93867a (6.14): tcp_tw_reuse_delay, 1..TCP_PAWS_MSL * 1000.
  sysctl_spec delay = spec(SH::douintvec_minmax, 1, 60000, "1000");
  delay.exists = p.tw_clock == tw_reuse_clock::ms_since_entry;
  s.push_back({"net.ipv4.tcp_tw_reuse_delay", delay});
  s.push_back({"net.ipv4.tcp_timestamps", u8 ? spec(SH::dou8vec_minmax, 0, 255, "1") : spec(SH::dointvec, kIntMin, kIntMax, "1")});
  // MAX_TCP_SYNCNT bounds tcp_syn_retries since "tcp: Limit the number of SYN retries" (pre-3.10, U).
  s.push_back({"net.ipv4.tcp_syn_retries", spec(u8 ? SH::dou8vec_minmax : SH::dointvec_minmax, 1, 127, "6")});
  // ccce324dabfe (6.5): tcp_syn_linear_timeouts.
  sysctl_spec lin = spec(SH::dou8vec_minmax, 0, 127, "4");
  lin.exists = p.syn == syn_backoff::linear_then_exponential;
  s.push_back({"net.ipv4.tcp_syn_linear_timeouts", lin});
  s.push_back({"net.ipv4.tcp_synack_retries", u8 ? spec(SH::dou8vec_minmax, 0, 255, "5") : spec(SH::dointvec, kIntMin, kIntMax, "5")});
  s.push_back({"net.ipv4.tcp_fin_timeout", spec(SH::dointvec_jiffies, kIntMin, kIntMax, "60")});
  s.push_back({"net.ipv4.tcp_max_tw_buckets", spec(SH::dointvec, kIntMin, kIntMax, "131072")});
  // tcp_rto_max_ms: 6.15 ("tcp: add tcp_rto_max_ms sysctl"), 1000..120000.
  sysctl_spec rto = spec(SH::dointvec_minmax, 1000, 120000, "120000");
  rto.exists = v >= version{6, 15};
  s.push_back({"net.ipv4.tcp_rto_max_ms", rto});
  // 4396e46187ca (4.12) removed tcp_tw_recycle.
  sysctl_spec recycle = spec(SH::dointvec, kIntMin, kIntMax, "0");
  recycle.exists = v < version{4, 12};
  s.push_back({"net.ipv4.tcp_tw_recycle", recycle});
  // 19f92a030ca6 (5.4): SOMAXCONN 128 -> 4096.
  s.push_back({"net.core.somaxconn", spec(SH::dointvec_minmax, 0, kIntMax, v >= version{5, 4} ? "4096" : "128")});
  return s;
}

bool parse_version(std::string_view s, version& v, bool& has_patch) {
  int parts[3] = {0, 0, 0};
  int n = 0;
  size_t i = 0;
  while (i < s.size() && n < 3) {
    auto [p, ec] = std::from_chars(s.data() + i, s.data() + s.size(), parts[n]);
    if (ec != std::errc() || parts[n] < 0) return false;
    ++n;
    i = size_t(p - s.data());
    if (i == s.size()) break;
    if (s[i] != '.') return false;
    ++i;
    if (i == s.size()) return false;
  }
  if (i != s.size() || n < 2) return false;
  v = {parts[0], parts[1], parts[2]};
  has_patch = n == 3;
  return true;
}

std::string known_list() {
  std::string out;
  for (const auto& r : rows()) out += (out.empty() ? "" : ", ") + fmt::format("{}.{}", r.v.major, r.v.minor);
  return out;
}

// Behaviour descriptors: name, commit that introduced the 6.18 value, how to print a value.
struct behaviour {
  const char* name;
  const char* commit;
  std::string (*value)(const kernel_profile&);
};

const std::vector<behaviour>& behaviours() {
  static const std::vector<behaviour> b = {
      {"connect() walk (__inet_hash_connect)",
       "C2 07f4c90062f8 (4.2), C3 1580ab63fc9a (4.6), C4 190cc82489f4 (5.12), C5 ca7af0402550/4c2c8f03a5ab (5.18)",
       [](const kernel_profile& p) { return std::string(to_string(p.connect)); }},
      {"port offset (secure_ipv4_port_ephemeral)",
       "SipHash 7cd23e5300c1 (4.11), 64 bit b2d057560b81 + time seed 4dfa9b438ee3 (5.18)",
       [](const kernel_profile& p) { return std::string(to_string(p.hash)); }},
      {"perturb table (table_perturb)", "190cc82489f4 (5.12), 4c2c8f03a5ab + e8161345ddbb + 9e9b70ae923b (5.18)",
       [](const kernel_profile& p) { return std::string(to_string(p.perturb)); }},
      {"increment noise", "c579bd1b4021 (5.12), ca7af0402550 (5.18)",
       [](const kernel_profile& p) { return std::string(to_string(p.noise)); }},
      {"bind(0) walk (inet_csk_get_port / inet_csk_find_open_port)",
       "B2 attempt_half (4.2-era, commit U), B3 ea8add2b1903 (4.6), B4 b9470c27607b (4.11), B5 4b01a9674231 (5.7)",
       [](const kernel_profile& p) { return std::string(to_string(p.bind)); }},
      {"bind(0) may land on a same-uid SO_REUSEPORT port", "0643ee4fd1b7 (4.10): no",
       [](const kernel_profile& p) { return std::string(yesno(p.bind0_reuseport_ok)); }},
      {"IP_LOCAL_PORT_RANGE", "91d0b78c5177 (6.3), 207184853dbd (6.8: no parity)",
       [](const kernel_profile& p) { return std::string(to_string(p.iplpr)); }},
      {"IP_BIND_ADDRESS_NO_PORT", "90c337da1524 (4.2)",
       [](const kernel_profile& p) { return std::string(p.opt_bind_address_no_port ? "exists" : "absent (ENOPROTOOPT)"); }},
      {"SYN backoff", "ccce324dabfe (6.5): linear first (tcp_syn_linear_timeouts), give-up 131 s instead of 127 s",
       [](const kernel_profile& p) {
         return std::string(p.syn == syn_backoff::exponential ? "exponential (SYNs 0,1,3,7,15,31,63 s; ETIMEDOUT 127 s)"
                                                              : "linear then exponential (ETIMEDOUT 131 s)");
       }},
      {"TIME_WAIT reuse test (tcp_twsk_unique)", "cca9bab1b72c (4.19); 19ce8cd30465 + ca6a6f93867a (6.14)",
       [](const kernel_profile& p) {
         return std::string(p.tw_clock == SEC    ? "> 1 s (seconds) since the last timestamp received"
                            : p.tw_clock == SEC1 ? "a new second (ktime_get_seconds) since the last timestamp received"
                                                 : "> tcp_tw_reuse_delay ms since TIME_WAIT entry");
       }},
      {"tcp_tw_reuse = 2: loopback only", "79e9fed46038 (4.18)",
       [](const kernel_profile& p) { return std::string(p.tw_reuse_loopback_mode ? "yes" : "no (any non-zero value enables reuse)"); }},
      {"FIN_WAIT2 TIME_WAIT never reused by connect()", "0d9e5df4a257 (6.12; 5.10.227)",
       [](const kernel_profile& p) { return std::string(yesno(p.tw_finwait2_excluded)); }},
      {"bind buckets connect-shareable again on release", "d57f4b874946 (6.18)",
       [](const kernel_profile& p) { return std::string(yesno(p.bucket_release)); }},
      {"ip_local_port_range per netns", "Eric W. Biederman's per-netns range (3.13?, id U)",
       [](const kernel_profile& p) { return std::string(p.netns_port_range ? "per netns" : "global (one per machine)"); }},
      {"ip_local_reserved_ports per netns", "122ff243f5f1 (3.16)",
       [](const kernel_profile& p) { return std::string(p.netns_reserved_ports ? "per netns" : "global (one per machine)"); }},
      {"UDP autobind honours IP_LOCAL_PORT_RANGE (udp_lib_get_port)", "91d0b78c5177 (6.3)",
       [](const kernel_profile& p) { return std::string(yesno(p.iplpr != I::absent)); }},
      {"ipv4 sysctls as u8 (ip_nonlocal_bind, tcp_timestamps, tcp_synack_retries: 0..255)",
       "2021 u8 conversions (5.13/5.14, D; 5.10.262 V in a VM)",
       [](const kernel_profile& p) { return std::string(yesno(p.sysctl_u8)); }},
      {"AF_INET6 from a v4-mapped source to a native IPv6 address: EAFNOSUPPORT", "ec5e3b0a1d41 (4.10, D)",
       [](const kernel_profile& p) { return std::string(yesno(p.v4mapped_src_refused)); }},
      {"listen() on a socket once in ehash, disconnected since (refused connect, AF_UNSPEC): EINVAL, its port kept",
       "icsk unhashed_state (6.18.44 V; commit U; cf. 404381b4f105)",
       [](const kernel_profile& p) { return std::string(yesno(p.listen_refused_after_unhash)); }},
      {"UDP wildcard bind checked on hash2 (> 10 sockets on the port)",
       "CVE-2026-31503 \"udp: Fix wildcard bind conflict check when using hash2\" (7.0; 6.18.21, 6.12.80, 6.6.131, 6.1.168)",
       [](const kernel_profile& p) {
         return std::string(p.udp_hash2_wildcard_check ? "yes (EADDRINUSE)" : "no (the wildcard bind succeeds)");
       }},
  };
  return b;
}

// The commit of each sysctl difference.
const char* sysctl_commit(std::string_view n) {
  if (n == "net.ipv4.ip_local_port_range") return "07f4c90062f8 (4.2: default 60999)";
  if (n == "net.ipv4.ip_unprivileged_port_start") return "4548b683b781 (4.11)";
  if (n == "net.ipv4.ip_autobind_reuse") return "4b01a9674231 (5.7)";
  if (n == "net.ipv4.tcp_tw_reuse") return "79e9fed46038 (4.18: 0..2, default 2)";
  if (n == "net.ipv4.tcp_tw_reuse_delay") return "ca6a6f93867a (6.14)";
  if (n == "net.ipv4.tcp_syn_linear_timeouts") return "ccce324dabfe (6.5)";
  if (n == "net.ipv4.tcp_rto_max_ms") return "tcp_rto_max_ms (6.15)";
  if (n == "net.ipv4.tcp_tw_recycle") return "4396e46187ca (4.12: removed)";
  if (n == "net.core.somaxconn") return "19f92a030ca6 (5.4: 4096)";
  return "2021 u8 conversions (5.13/5.14, D)";
}

std::string show(const sysctl_spec& s) {
  if (!s.exists) return "absent";
  const char* h = "";
  switch (s.handler) {
    case sysctl_handler::dointvec: h = "any int"; break;
    case sysctl_handler::dointvec_minmax: h = "int"; break;
    case sysctl_handler::douintvec_minmax: h = "uint"; break;
    case sysctl_handler::dou8vec_minmax: h = "u8"; break;
    case sysctl_handler::dointvec_jiffies: h = "seconds (jiffies)"; break;
    case sysctl_handler::special: h = "own handler"; break;
  }
  (void)h;  // the accepted values are what is observable, not the handler's name
  switch (s.handler) {
    case sysctl_handler::dointvec: return fmt::format("default \"{}\", accepts any int", s.def);
    case sysctl_handler::dointvec_jiffies: return fmt::format("default \"{}\", accepts any int up to INT_MAX / HZ", s.def);
    case sysctl_handler::special: return fmt::format("default \"{}\"", s.def);
    default: return fmt::format("default \"{}\", accepts {}..{}", s.def, s.min, s.max);
  }
}

}  // namespace

const sysctl_spec* kernel_profile::sysctl(std::string_view n) const {
  for (const auto& [name, s] : sysctls)
    if (name == n) return &s;
  return nullptr;
}

std::optional<kernel_profile> find_kernel_profile(std::string_view s, std::string& err) {
  version v;
  bool has_patch = false;
  if (parse_version(s, v, has_patch))
    for (const auto& r : rows()) {
      if (r.v.major != v.major || r.v.minor != v.minor) continue;
      kernel_profile p = r.p;
      p.name = std::string(s);
      p.covers = r.covers;
      p.sysctl_u8 = v >= version{5, 14};  // as released; kBackports may add it (5.10.262)
      p.v4mapped_src_refused = v >= version{4, 10};  // ec5e3b0a1d41 (4.10, D)
      for (const auto& b : backports())
        if (b.v.major == v.major && b.v.minor == v.minor && (!has_patch || b.v.patch <= v.patch)) b.apply(p);
      p.sysctls = sysctl_rows(p, v);
      return p;
    }
  err = fmt::format("unknown kernel \"{}\" (known: {}; \"X.Y\" is the latest point release of that branch, "
                    "\"X.Y.Z\" an exact one)", s, known_list());
  return std::nullopt;
}

const kernel_profile& default_kernel_profile() {
  static const kernel_profile p = [] {
    std::string err;
    return *find_kernel_profile("6.18", err);
  }();
  return p;
}

std::vector<std::string> kernel_profile_names() {
  std::vector<std::string> out;
  for (const auto& r : rows()) out.push_back(fmt::format("{}.{}", r.v.major, r.v.minor));
  return out;
}

std::vector<std::string> kernel_backports(std::string_view branch) {
  std::vector<std::string> out;
  version v;
  bool has_patch = false;
  if (!parse_version(branch, v, has_patch)) return out;
  for (const auto& b : backports())
    if (b.v.major == v.major && b.v.minor == v.minor)
      out.push_back(fmt::format("{}.{}.{}{}: {}", b.v.major, b.v.minor, b.v.patch,
                                has_patch && b.v.patch > v.patch ? " (not in this release)" : "", b.what));
  return out;
}

std::string_view released_connect_era(std::string_view branch) {
  version v;
  bool has_patch = false;
  if (parse_version(branch, v, has_patch))
    for (const auto& r : rows())
      if (r.v.major == v.major && r.v.minor == v.minor) return to_string(r.p.connect);
  return "?";
}

std::vector<behaviour_value> describe(const kernel_profile& p) {
  std::vector<behaviour_value> out;
  for (const auto& b : behaviours()) out.push_back({b.name, b.value(p), b.commit});
  for (const auto& [n, s] : p.sysctls) out.push_back({std::string(n), show(s), sysctl_commit(n)});
  return out;
}

std::vector<behaviour_diff> diff(const kernel_profile& p, const kernel_profile& base) {
  std::vector<behaviour_diff> out;
  const auto a = describe(p), b = describe(base);
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (a[i].value != b[i].value) out.push_back({a[i].name, a[i].value, b[i].value, a[i].commit});
  return out;
}

}  // namespace portsim::net
