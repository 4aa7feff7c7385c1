// net/ipv4/sysctl_net_ipv4.c (and net/core/sysctl_net_core.c): the validation each write goes
// through, per sysctl and per kernel. Which handler a sysctl has, its bounds and its default
// are rows of the kernel profile (kernel_profile.cc: sysctl_rows); this file applies them the
// way kernel/sysctl.c's handlers do. 6.18 answers measured live: tests/live/sysctl_writes.json.
#include "portsim/net/sysctl.h"

#include <charconv>
#include <climits>
#include <fmt/format.h>

#include "portsim/base/spellcheck.h"
#include "portsim/net/kernel_profile.h"

namespace portsim::net {

namespace {

constexpr long long kIntMax = 2147483647, kIntMin = -2147483648LL;

// kernel/sysctl.c: proc_get_long() over the written text — whitespace-separated decimal
// integers with an optional '-'. Returns false on anything else (EINVAL).
bool parse_ints(std::string_view v, std::vector<long long>& out) {
  out.clear();
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n')) ++i;
    if (i == v.size()) break;
    long long x = 0;
    auto [p, ec] = std::from_chars(v.data() + i, v.data() + v.size(), x);
    if (ec == std::errc::result_out_of_range) x = v[i] == '-' ? LLONG_MIN : LLONG_MAX;
    else if (ec != std::errc()) return false;
    if (p != v.data() + v.size() && *p != ' ' && *p != '\t' && *p != '\n') return false;
    out.push_back(x);
    i = size_t(p - v.data());
  }
  return true;
}

std::string einval(std::string_view why) { return fmt::format("{} (the kernel answers EINVAL)", why); }

// One integer through the sysctl's handler (kernel/sysctl.c). Returns "" and the value, or why.
std::string check_int(const sysctl_spec& sp, std::string_view v, uint32_t hz, long long& out) {
  std::vector<long long> xs;
  if (!parse_ints(v, xs)) return einval(fmt::format("'{}' is not an integer", v));
  if (xs.empty()) {  // an empty write is accepted and changes nothing (live 6.18.44)
    out = LLONG_MIN;
    return {};
  }
  // A vector of one int: values after the first are not read (the write still succeeds).
  const long long x = xs[0];
  switch (sp.handler) {
    case sysctl_handler::dointvec:
      if (x < kIntMin || x > kIntMax) return einval(fmt::format("{} does not fit an int", x));
      break;
    case sysctl_handler::dointvec_minmax:
      if (x < sp.min || x > sp.max) return einval(fmt::format("{} is outside [{}, {}]", x, sp.min, sp.max));
      break;
    case sysctl_handler::douintvec_minmax:
    case sysctl_handler::dou8vec_minmax:
      if (x < 0) return einval(fmt::format("{} is negative (an unsigned sysctl)", x));
      if (x < sp.min || x > sp.max) return einval(fmt::format("{} is outside [{}, {}]", x, sp.min, sp.max));
      break;
    case sysctl_handler::dointvec_jiffies: {  // do_proc_dointvec_jiffies_conv: |x| <= INT_MAX / HZ
      const long long lim = kIntMax / hz;
      if (x > lim || x < -lim) return einval(fmt::format("{} s does not fit in jiffies (|x| <= INT_MAX / HZ = {})", x, lim));
      break;
    }
    case sysctl_handler::special: break;
  }
  out = x;
  return {};
}

using Setter = std::string (*)(sysctls&, const sysctl_spec&, const kernel_profile&, std::string_view, uint32_t);

template <int sysctls::*Field>
std::string set_int(sysctls& s, const sysctl_spec& sp, const kernel_profile&, std::string_view v, uint32_t hz) {
  long long x = 0;
  if (auto e = check_int(sp, v, hz, x); !e.empty()) return e;
  if (x != LLONG_MIN) s.*Field = int(x);
  return {};
}

// ipv4_local_port_range(): up to two ints in [1, 65535] over the current {low, high} (one value
// sets only the low end; live: "1024" reads back "1024 60999"), high >= low, and (4.11+) low >=
// ip_unprivileged_port_start. An empty write changes nothing.
std::string set_port_range(sysctls& s, const sysctl_spec&, const kernel_profile& k, std::string_view v, uint32_t) {
  std::vector<long long> xs;
  if (!parse_ints(v, xs)) return einval(fmt::format("expected \"LOW HIGH\", got '{}'", v));
  if (xs.empty()) return {};
  if (xs.size() == 1) xs.push_back(s.ip_local_port_range_hi);
  xs.resize(2);
  if (xs[0] < 1 || xs[0] > 65535 || xs[1] < 1 || xs[1] > 65535)
    return einval(fmt::format("'{}': ports must be in [1, 65535]", v));
  if (xs[1] < xs[0]) return einval(fmt::format("'{}': high < low", v));
  const sysctl_spec* unpriv = k.sysctl("net.ipv4.ip_unprivileged_port_start");
  if (unpriv && unpriv->exists && xs[0] < s.ip_unprivileged_port_start)
    return einval(fmt::format("'{}': low {} is below net.ipv4.ip_unprivileged_port_start {}", v, xs[0],
                              s.ip_unprivileged_port_start));
  s.ip_local_port_range_lo = uint16_t(xs[0]);
  s.ip_local_port_range_hi = uint16_t(xs[1]);
  return {};
}

// ipv4_privileged_ports(): [0, 65535] and not above the current range's low end.
std::string set_unpriv_start(sysctls& s, const sysctl_spec&, const kernel_profile&, std::string_view v, uint32_t hz) {
  long long x = 0;
  const sysctl_spec bounds{true, sysctl_handler::dointvec_minmax, 0, 65535, ""};
  if (auto e = check_int(bounds, v, hz, x); !e.empty()) return e;
  if (x == LLONG_MIN) return {};
  if (s.ip_local_port_range_lo < x)
    return einval(fmt::format("{} is above the ip_local_port_range low end {}", x, s.ip_local_port_range_lo));
  s.ip_unprivileged_port_start = int(x);
  return {};
}

// proc_do_large_bitmap(): "8080,9000-9100"; an empty string clears the set.
std::string set_reserved(sysctls& s, const sysctl_spec&, const kernel_profile&, std::string_view v, uint32_t) {
  PortBitmap bm;
  size_t i = 0;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  while (i < v.size()) {
    size_t end = v.find(',', i);
    if (end == std::string_view::npos) end = v.size();
    std::string_view item = v.substr(i, end - i);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\n')) item.remove_suffix(1);
    unsigned lo = 0, hi = 0;
    const size_t dash = item.find('-');
    auto num = [](std::string_view t, unsigned& out) {
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
      return ec == std::errc() && p == t.data() + t.size() && out <= 65535;
    };
    const bool ok = dash == std::string_view::npos
                        ? num(item, lo) && (hi = lo, true)
                        : num(item.substr(0, dash), lo) && num(item.substr(dash + 1), hi) && lo <= hi;
    if (!ok) return einval(fmt::format("'{}': expected ports or ranges like \"8080,9000-9100\"", v));
    for (unsigned p = lo; p <= hi; ++p) bm.set(p);
    i = end + 1;
  }
  s.ip_local_reserved_ports = bm;
  return {};
}

struct Entry {
  std::string_view name;
  Setter set;
};

constexpr Entry kTable[] = {
    {"net.ipv4.ip_local_port_range", set_port_range},
    {"net.ipv4.ip_local_reserved_ports", set_reserved},
    {"net.ipv4.ip_unprivileged_port_start", set_unpriv_start},
    {"net.ipv4.ip_autobind_reuse", set_int<&sysctls::ip_autobind_reuse>},
    {"net.ipv4.ip_nonlocal_bind", set_int<&sysctls::ip_nonlocal_bind>},
    {"net.ipv4.tcp_tw_reuse", set_int<&sysctls::tcp_tw_reuse>},
    {"net.ipv4.tcp_tw_reuse_delay", set_int<&sysctls::tcp_tw_reuse_delay>},
    {"net.ipv4.tcp_timestamps", set_int<&sysctls::tcp_timestamps>},
    {"net.ipv4.tcp_syn_retries", set_int<&sysctls::tcp_syn_retries>},
    {"net.ipv4.tcp_syn_linear_timeouts", set_int<&sysctls::tcp_syn_linear_timeouts>},
    {"net.ipv4.tcp_synack_retries", set_int<&sysctls::tcp_synack_retries>},
    {"net.ipv4.tcp_fin_timeout", set_int<&sysctls::tcp_fin_timeout>},
    {"net.ipv4.tcp_max_tw_buckets", set_int<&sysctls::tcp_max_tw_buckets>},
    {"net.ipv4.tcp_rto_max_ms", set_int<&sysctls::tcp_rto_max_ms>},
    {"net.ipv4.tcp_tw_recycle", set_int<&sysctls::tcp_tw_recycle>},
    {"net.core.somaxconn", set_int<&sysctls::somaxconn>},
};

}  // namespace

const std::vector<std::string_view>& sysctl_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> n;
    for (const auto& e : kTable) n.push_back(e.name);
    return n;
  }();
  return names;
}

std::string sysctl_write(sysctls& s, const kernel_profile& k, std::string_view name, std::string_view value,
                         uint32_t hz) {
  for (const auto& e : kTable) {
    if (e.name != name) continue;
    const sysctl_spec* sp = k.sysctl(name);
    if (!sp || !sp->exists)
      return fmt::format("{} does not exist in Linux {} (writing it fails there with ENOENT)", name, k.name);
    return e.set(s, *sp, k, value, hz);
  }
  return fmt::format("unknown sysctl '{}'{}", name, did_you_mean(name, sysctl_names()));
}

std::string sysctl_write(sysctls& s, std::string_view name, std::string_view value) {
  return sysctl_write(s, default_kernel_profile(), name, value);
}

std::string sysctl_read(const sysctls& s, std::string_view name) {
  if (name == "net.ipv4.ip_local_port_range") return fmt::format("{} {}", s.ip_local_port_range_lo, s.ip_local_port_range_hi);
  if (name == "net.ipv4.ip_local_reserved_ports") {  // proc_do_large_bitmap: "a-b,c"
    std::string out;
    for (uint32_t p = 0; p < 65536;) {
      if (!s.ip_local_reserved_ports.test(p)) { ++p; continue; }
      uint32_t q = p;
      while (q + 1 < 65536 && s.ip_local_reserved_ports.test(q + 1)) ++q;
      out += (out.empty() ? "" : ",") + (q == p ? std::to_string(p) : fmt::format("{}-{}", p, q));
      p = q + 1;
    }
    return out;
  }
  static const std::pair<std::string_view, int sysctls::*> ints[] = {
      {"net.ipv4.ip_unprivileged_port_start", &sysctls::ip_unprivileged_port_start},
      {"net.ipv4.ip_autobind_reuse", &sysctls::ip_autobind_reuse},
      {"net.ipv4.ip_nonlocal_bind", &sysctls::ip_nonlocal_bind},
      {"net.ipv4.tcp_tw_reuse", &sysctls::tcp_tw_reuse},
      {"net.ipv4.tcp_tw_reuse_delay", &sysctls::tcp_tw_reuse_delay},
      {"net.ipv4.tcp_timestamps", &sysctls::tcp_timestamps},
      {"net.ipv4.tcp_syn_retries", &sysctls::tcp_syn_retries},
      {"net.ipv4.tcp_syn_linear_timeouts", &sysctls::tcp_syn_linear_timeouts},
      {"net.ipv4.tcp_synack_retries", &sysctls::tcp_synack_retries},
      {"net.ipv4.tcp_fin_timeout", &sysctls::tcp_fin_timeout},
      {"net.ipv4.tcp_max_tw_buckets", &sysctls::tcp_max_tw_buckets},
      {"net.ipv4.tcp_rto_max_ms", &sysctls::tcp_rto_max_ms},
      {"net.ipv4.tcp_tw_recycle", &sysctls::tcp_tw_recycle},
      {"net.core.somaxconn", &sysctls::somaxconn},
  };
  for (const auto& [n, f] : ints)
    if (n == name) return std::to_string(s.*f);
  return {};
}

sysctls sysctl_defaults(const kernel_profile& k) {
  sysctls s;
  s.ip_unprivileged_port_start = 0;  // the range default must pass its own check first
  for (const auto& [name, sp] : k.sysctls)
    if (sp.exists && name != "net.ipv4.ip_unprivileged_port_start") (void)sysctl_write(s, k, name, sp.def);
  s.ip_unprivileged_port_start = 1024;  // PROT_SOCK, or the sysctl's default (4.11+)
  // Before 6.5 there is no linear phase: the schedule is exponential from the first SYN.
  if (const sysctl_spec* lin = k.sysctl("net.ipv4.tcp_syn_linear_timeouts"); !lin || !lin->exists)
    s.tcp_syn_linear_timeouts = 0;
  return s;
}

}  // namespace portsim::net
