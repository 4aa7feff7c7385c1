// net/ipv4/sysctl_net_ipv4.c: the validation each write goes through, per sysctl.
#include "portsim/net/sysctl.h"

#include <charconv>
#include <fmt/format.h>

#include "portsim/base/spellcheck.h"

namespace portsim::net {

namespace {

// proc_dointvec-style parsing: whitespace-separated decimal integers.
bool parse_ints(std::string_view v, std::vector<long long>& out) {
  out.clear();
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n')) ++i;
    if (i == v.size()) break;
    long long x = 0;
    auto [p, ec] = std::from_chars(v.data() + i, v.data() + v.size(), x);
    if (ec != std::errc() || (p != v.data() + v.size() && *p != ' ' && *p != '\t' && *p != '\n'))
      return false;
    out.push_back(x);
    i = size_t(p - v.data());
  }
  return !out.empty();
}

using Setter = std::string (*)(sysctls&, std::string_view);

// A single-int sysctl with proc_dointvec_minmax bounds.
template <int sysctls::*Field, long long Min, long long Max>
std::string set_int(sysctls& s, std::string_view v) {
  std::vector<long long> xs;
  if (!parse_ints(v, xs) || xs.size() != 1) return fmt::format("expected one integer, got '{}'", v);
  if (xs[0] < Min || xs[0] > Max)
    return fmt::format("{} is outside [{}, {}] (the kernel answers EINVAL)", xs[0], Min, Max);
  s.*Field = int(xs[0]);
  return {};
}

// ipv4_local_port_range(): each end in [1, 65535], hi >= lo, lo >= ip_unprivileged_port_start.
std::string set_port_range(sysctls& s, std::string_view v) {
  std::vector<long long> xs;
  if (!parse_ints(v, xs) || xs.size() != 2) return fmt::format("expected \"LOW HIGH\", got '{}'", v);
  if (xs[0] < 1 || xs[0] > 65535 || xs[1] < 1 || xs[1] > 65535)
    return fmt::format("'{}': ports must be in [1, 65535] (the kernel answers EINVAL)", v);
  if (xs[1] < xs[0]) return fmt::format("'{}': high < low (the kernel answers EINVAL)", v);
  if (xs[0] < s.ip_unprivileged_port_start)
    return fmt::format("'{}': low {} is below net.ipv4.ip_unprivileged_port_start {} (the kernel "
                       "answers EINVAL)", v, xs[0], s.ip_unprivileged_port_start);
  s.ip_local_port_range_lo = uint16_t(xs[0]);
  s.ip_local_port_range_hi = uint16_t(xs[1]);
  return {};
}

// ipv4_privileged_ports(): [0, 65535] and not above the current range's low end.
std::string set_unpriv_start(sysctls& s, std::string_view v) {
  sysctls t = s;
  if (auto e = set_int<&sysctls::ip_unprivileged_port_start, 0, 65535>(t, v); !e.empty()) return e;
  if (s.ip_local_port_range_lo < t.ip_unprivileged_port_start)
    return fmt::format("{} is above the ip_local_port_range low end {} (the kernel answers EINVAL)",
                       t.ip_unprivileged_port_start, s.ip_local_port_range_lo);
  s.ip_unprivileged_port_start = t.ip_unprivileged_port_start;
  return {};
}

// proc_do_large_bitmap(): "8080,9000-9100"; an empty string clears the set.
std::string set_reserved(sysctls& s, std::string_view v) {
  PortBitmap bm;
  size_t i = 0;
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
    if (!ok) return fmt::format("'{}': expected ports or ranges like \"8080,9000-9100\"", v);
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

// MAX_TCP_SYNCNT = 127 (include/net/tcp.h) bounds tcp_syn_retries and tcp_syn_linear_timeouts.
constexpr Entry kTable[] = {
    {"net.ipv4.ip_local_port_range", set_port_range},
    {"net.ipv4.ip_local_reserved_ports", set_reserved},
    {"net.ipv4.ip_unprivileged_port_start", set_unpriv_start},
    {"net.ipv4.ip_autobind_reuse", set_int<&sysctls::ip_autobind_reuse, 0, 1>},
    {"net.ipv4.ip_nonlocal_bind", set_int<&sysctls::ip_nonlocal_bind, 0, 1>},
    {"net.ipv4.tcp_tw_reuse", set_int<&sysctls::tcp_tw_reuse, 0, 2>},
    {"net.ipv4.tcp_tw_reuse_delay", set_int<&sysctls::tcp_tw_reuse_delay, 1, 2147483647>},
    {"net.ipv4.tcp_timestamps", set_int<&sysctls::tcp_timestamps, 0, 2>},
    {"net.ipv4.tcp_syn_retries", set_int<&sysctls::tcp_syn_retries, 1, 127>},
    {"net.ipv4.tcp_syn_linear_timeouts", set_int<&sysctls::tcp_syn_linear_timeouts, 0, 127>},
    {"net.ipv4.tcp_synack_retries", set_int<&sysctls::tcp_synack_retries, 0, 255>},
    {"net.ipv4.tcp_fin_timeout", set_int<&sysctls::tcp_fin_timeout, 0, 2147483647>},
    {"net.ipv4.tcp_max_tw_buckets", set_int<&sysctls::tcp_max_tw_buckets, 0, 2147483647>},
    {"net.ipv4.tcp_rto_max_ms", set_int<&sysctls::tcp_rto_max_ms, 1000, 120000>},
    {"net.core.somaxconn", set_int<&sysctls::somaxconn, 0, 2147483647>},
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

std::string sysctl_write(sysctls& s, std::string_view name, std::string_view value) {
  for (const auto& e : kTable)
    if (e.name == name) return e.set(s, value);
  return fmt::format("unknown sysctl '{}'{}", name, did_you_mean(name, sysctl_names()));
}

}  // namespace portsim::net
