// Scenario loader: parse (nlohmann::ordered_json, comments allowed), then validate every field
// with its JSON path. Internally a LoadError is thrown at the first problem and turned into one
// Diag line at the boundary; nothing crosses the layer as an exception.
#include "portsim/scenario/load.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "portsim/base/errno_name.h"
#include "portsim/base/spellcheck.h"
#include "portsim/net/netns.h"
#include "portsim/scenario/name_index.h"

namespace portsim::scenario {

using json = nlohmann::ordered_json;

const char* op_name(Op op) {
  switch (op) {
    case Op::socket: return "socket";
    case Op::setsockopt: return "setsockopt";
    case Op::bind: return "bind";
    case Op::listen: return "listen";
    case Op::connect: return "connect";
    case Op::accept: return "accept";
    case Op::close: return "close";
    case Op::sysctl: return "sysctl";
    case Op::shutdown: return "shutdown";
    case Op::send: return "send";
    case Op::recv: return "recv";
  }
  return "?";
}

std::string sock_name(const std::string& pattern, uint64_t k) {
  const size_t at = pattern.find("{i}");
  if (at == std::string::npos) return pattern;
  return pattern.substr(0, at) + std::to_string(k) + pattern.substr(at + 3);
}

namespace {

struct LoadError {
  std::string path, message;
};

[[noreturn]] void fail(const std::string& path, std::string message) {
  throw LoadError{path, std::move(message)};
}

std::string show(const json& j) {
  std::string s = j.dump();
  if (s.size() > 60) s.replace(57, std::string::npos, "...");  // in place (GCC 12's profile-guided
  return s;                                                    // build warned on substr + "...")
}

// A JSON object being read: remembers its path and rejects keys nobody asked for.
class Obj {
 public:
  Obj(const json& j, std::string path, std::vector<std::string_view> allowed)
      : j_(j), path_(std::move(path)), allowed_(std::move(allowed)) {
    if (!j_.is_object()) fail(path_, "expected an object, got " + show(j_));
    for (const auto& [k, v] : j_.items())
      if (std::find(allowed_.begin(), allowed_.end(), k) == allowed_.end())
        fail(path_ + "." + k, fmt::format("unknown key '{}'{}", k, did_you_mean(k, allowed_)));
  }
  bool has(const char* k) const { return j_.contains(k); }
  const json& at(const char* k) const {
    if (!j_.contains(k)) fail(path_, fmt::format("missing required key '{}'", k));
    return j_.at(k);
  }
  std::string sub(const char* k) const { return path_ + "." + k; }
  const std::string& path() const { return path_; }

  std::string str(const char* k) const {
    const json& v = at(k);
    if (!v.is_string()) fail(sub(k), "expected a string, got " + show(v));
    return v.get<std::string>();
  }
  std::string str_or(const char* k, std::string def) const { return has(k) ? str(k) : def; }
  uint64_t uint(const char* k, uint64_t lo, uint64_t hi) const {
    const json& v = at(k);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
      fail(sub(k), fmt::format("expected an integer in [{}, {}], got {}", lo, hi, show(v)));
    const uint64_t x = v.get<uint64_t>();
    if (x < lo || x > hi) fail(sub(k), fmt::format("expected an integer in [{}, {}], got {}", lo, hi, x));
    return x;
  }
  Nanos duration(const char* k) const {
    const json& v = at(k);
    if (!v.is_string()) fail(sub(k), "expected a duration like \"1.5ms\" or \"10s\", got " + show(v));
    auto d = parse_duration(v.get<std::string>());
    if (!d) fail(sub(k), "expected a duration like \"1.5ms\" or \"10s\", got " + show(v));
    if (*d > kMaxScenarioTime) fail(sub(k), show(v) + " is beyond 100000h, the longest time a scenario may give");
    return *d;
  }

 private:
  const json& j_;
  std::string path_;
  std::vector<std::string_view> allowed_;
};

net::endpoint endpoint_at(const Obj& o, const char* k) {
  const std::string s = o.str(k);
  auto e = net::parse_endpoint(s);
  if (!e) fail(o.sub(k), fmt::format("expected \"addr:port\" (e.g. \"10.0.0.2:80\" or \"[::1]:80\"), got \"{}\"", s));
  return *e;
}

siphash_key parse_key(const Obj& o, const char* k) {
  const std::string s = o.str(k);
  auto bad = [&] { fail(o.sub(k), fmt::format("expected 32 hex digits (the 16 key bytes in order), got \"{}\"", s)); };
  if (s.size() != 32) bad();
  uint8_t b[16];
  for (int i = 0; i < 16; ++i) {
    unsigned v = 0;
    for (int d = 0; d < 2; ++d) {
      const char c = s[size_t(2 * i + d)];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else bad();
    }
    b[i] = uint8_t(v);
  }
  siphash_key key;
  for (int i = 7; i >= 0; --i) key.k0 = key.k0 << 8 | b[i];
  for (int i = 15; i >= 8; --i) key.k1 = key.k1 << 8 | b[i];
  return key;
}

std::vector<SysctlSetting> parse_sysctls(const json& j, const std::string& path, const net::kernel_profile& k,
                                         uint32_t hz) {
  if (!j.is_object()) fail(path, "expected an object of \"net.ipv4.name\": \"value\", got " + show(j));
  std::vector<SysctlSetting> out;
  net::sysctls scratch = net::sysctl_defaults(k);  // validate in file order, against the values written before
  for (const auto& [key, v] : j.items()) {
    const std::string p = path + "." + key;
    std::string value;
    if (v.is_string()) value = v.get<std::string>();
    else if (v.is_number_integer()) value = std::to_string(v.get<int64_t>());
    else fail(p, "expected a string or an integer, got " + show(v));
    if (auto err = net::sysctl_write(scratch, k, key, value, hz); !err.empty()) fail(p, err);
    out.push_back({key, value, p});
  }
  return out;
}

NetnsSpec parse_netns(const Obj& o, std::string name, const net::kernel_profile& k, uint32_t hz) {
  NetnsSpec ns;
  ns.name = std::move(name);
  if (o.has("addresses")) {
    const json& a = o.at("addresses");
    if (!a.is_array()) fail(o.sub("addresses"), "expected an array of \"addr/prefix\" strings, got " + show(a));
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string p = fmt::format("{}[{}]", o.sub("addresses"), i);
      if (!a[i].is_string()) fail(p, "expected \"addr/prefix\" (e.g. \"10.0.0.1/24\"), got " + show(a[i]));
      auto ia = net::parse_ifaddr(a[i].get<std::string>());
      if (!ia) fail(p, "expected \"addr/prefix\" (e.g. \"10.0.0.1/24\"), got " + show(a[i]));
      ns.addrs.push_back(*ia);
    }
  }
  if (o.has("sysctls")) ns.sysctls = parse_sysctls(o.at("sysctls"), o.sub("sysctls"), k, hz);
  return ns;
}

// The kernel profile named at `path` (a string "X.Y" or "X.Y.Z").
net::kernel_profile parse_kernel(const Obj& o, const char* key) {
  const json& v = o.at(key);
  if (!v.is_string()) fail(o.sub(key), "expected a kernel version string like \"4.19\" or \"5.10.119\", got " + show(v));
  std::string err;
  auto k = net::find_kernel_profile(v.get<std::string>(), err);
  if (!k) fail(o.sub(key), err);
  return *k;
}

// "table_perturb": {"41629": 180050309, …} — cells of the kernel's table_perturb (the others
// stay seeded). The index must be one the profile's __inet_hash_connect can use.
std::map<uint32_t, uint32_t> parse_perturb_cells(const Obj& o, const net::kernel_profile& k) {
  if (k.perturb == net::perturb_layout::none)
    fail(o.sub("table_perturb"), fmt::format("kernel {} has no table_perturb (its connect() walk uses one global hint): "
                                             "give \"random\" or \"zero\"", k.name));
  const uint32_t size = k.perturb == net::perturb_layout::hash32_256 ? 256 : net::INET_TABLE_PERTURB_SIZE;
  std::map<uint32_t, uint32_t> cells;
  for (const auto& [key, v] : o.at("table_perturb").items()) {
    const std::string p = o.sub("table_perturb") + "." + key;
    uint64_t idx = 0;
    const bool digits = !key.empty() && key.size() <= 6 && std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) idx = std::stoull(key);
    if (!digits || idx >= size)
      fail(p, fmt::format("expected a cell index in [0, {}] (INET_TABLE_PERTURB_SIZE of kernel {}) as the key, got \"{}\"",
                          size - 1, k.name, key));
    if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX)
      fail(p, "expected the cell's value, an integer in [0, 4294967295], got " + show(v));
    cells[uint32_t(idx)] = uint32_t(v.get<uint64_t>());
  }
  return cells;
}

// "jiffies", "perturb_draws", "connect_jiffies": a live kernel's state and random draws, for
// an exact replay (scenarios/README.md "Exact inputs").
void parse_exact_inputs(const Obj& o, MachineSpec& m) {
  const net::kernel_profile& k = m.kernel;
  const uint64_t j0 = initial_jiffies(m.hz), jmax = j0 + uint64_t(kMaxScenarioTime / kNsPerSec) * m.hz;
  auto jiffies_value = [&](const json& v, const std::string& p) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() < j0 || v.get<uint64_t>() > jmax)
      fail(p, fmt::format("expected jiffies_64 in [{}, {}] (INITIAL_JIFFIES at HZ {} up to 100000h later), got {}", j0, jmax,
                          m.hz, show(v)));
    return v.get<uint64_t>();
  };
  if (o.has("jiffies")) {
    if (o.has("uptime")) fail(o.path(), "give either \"uptime\" or \"jiffies\" (both say where jiffies is at t=0), not both");
    m.jiffies = jiffies_value(o.at("jiffies"), o.sub("jiffies"));
  }
  if (o.has("perturb_draws")) {
    const json& a = o.at("perturb_draws");
    if (!a.is_array()) fail(o.sub("perturb_draws"), "expected an array of integers (random draws), got " + show(a));
    if (k.noise == net::perturb_noise::none)
      fail(o.sub("perturb_draws"), fmt::format("kernel {} draws no random increment in connect()", k.name));
    const uint32_t ceil = k.noise == net::perturb_noise::random_max ? 8 : 16;  // get_random_u32_below(8); prandom % 16
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_number_unsigned() || a[i].get<uint64_t>() >= ceil)
        fail(fmt::format("{}[{}]", o.sub("perturb_draws"), i),
             fmt::format("expected a draw in [0, {}] (kernel {}), got {}", ceil - 1, k.name, show(a[i])));
      m.perturb_draws.push_back(uint32_t(a[i].get<uint64_t>()));
    }
  }
  if (o.has("connect_jiffies")) {
    const json& a = o.at("connect_jiffies");
    if (!a.is_array()) fail(o.sub("connect_jiffies"), "expected an array of jiffies values, got " + show(a));
    if (k.hash != net::port_hash::siphash64_timeseed && k.hash != net::port_hash::siphash32_timeseed)
      fail(o.sub("connect_jiffies"), fmt::format("kernel {} has no time seed in its port offset (4dfa9b438ee3)", k.name));
    for (size_t i = 0; i < a.size(); ++i) m.connect_jiffies.push_back(jiffies_value(a[i], fmt::format("{}[{}]", o.sub("connect_jiffies"), i)));
  }
  if (o.has("call_monotonic_ns")) {  // ktime_get_seconds() of tcp_twsk_unique / tw_ts_recent_stamp
    const json& a = o.at("call_monotonic_ns");
    const std::string p = o.sub("call_monotonic_ns");
    if (!a.is_array()) fail(p, "expected an array of CLOCK_MONOTONIC readings in nanoseconds, got " + show(a));
    if (k.tw_clock == net::tw_reuse_clock::seconds_since_last_ts)
      fail(p, fmt::format("kernel {} stamps TIME_WAITs with get_seconds() (CLOCK_REALTIME), not CLOCK_MONOTONIC "
                          "(ktime_get_seconds() from 4.19, cca9bab1b72c)", k.name));
    const uint64_t max = uint64_t(INT64_MAX);  // a signed ktime_t: ~292 years of uptime; + the scenario's span fits
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string pi = fmt::format("{}[{}]", p, i);
      if (!a[i].is_number_unsigned() || a[i].get<uint64_t>() > max)
        fail(pi, fmt::format("expected CLOCK_MONOTONIC nanoseconds, an integer in [0, {}], got {}", max, show(a[i])));
      const uint64_t v = a[i].get<uint64_t>();
      if (i && v < m.call_monotonic_ns.back())
        fail(pi, fmt::format("{} is before the previous call's {}: CLOCK_MONOTONIC never goes back", v,
                             m.call_monotonic_ns.back()));
      m.call_monotonic_ns.push_back(v);
    }
  }
}

MachineSpec parse_machine(const json& j, const std::string& path, const net::kernel_profile& scenario_kernel,
                          bool overridden) {
  Obj o(j, path, {"name", "hz", "uptime", "jiffies", "net_secret", "table_perturb", "perturb_draws", "connect_jiffies",
                  "call_monotonic_ns", "addresses", "sysctls", "netns", "kernel", "udp_hash_entries"});
  MachineSpec m;
  m.name = o.str("name");
  m.kernel = scenario_kernel;
  if (o.has("kernel")) {
    net::kernel_profile k = parse_kernel(o, "kernel");
    if (!overridden) m.kernel = std::move(k);
  }
  if (o.has("hz")) {
    m.hz = uint32_t(o.uint("hz", 100, 1000));
    if (m.hz != 100 && m.hz != 250 && m.hz != 300 && m.hz != 1000)
      fail(o.sub("hz"), fmt::format("expected one of the kernel's CONFIG_HZ values 100, 250, 300, 1000, got {}", m.hz));
  }
  if (o.has("uptime")) m.uptime = o.duration("uptime");
  if (o.has("udp_hash_entries")) {  // uhash_entries: a power of two in [UDP_HTABLE_SIZE_MIN, MAX]
    m.udp_hash_entries = uint32_t(o.uint("udp_hash_entries", net::UDP_HTABLE_SIZE_MIN, net::UDP_HTABLE_SIZE_MAX));
    if (m.udp_hash_entries & (m.udp_hash_entries - 1))
      fail(o.sub("udp_hash_entries"), fmt::format("expected a power of two (the UDP hash table size), got {}", m.udp_hash_entries));
  }
  if (o.has("net_secret")) m.net_secret = parse_key(o, "net_secret");
  if (o.has("table_perturb") && o.at("table_perturb").is_object()) {
    m.perturb_cells = parse_perturb_cells(o, m.kernel);
  } else if (o.has("table_perturb")) {
    const std::string tp = o.str("table_perturb");
    if (tp != "zero" && tp != "random")
      fail(o.sub("table_perturb"), "expected \"random\", \"zero\" or an object of cells {\"index\": value}, got \"" + tp + "\"");
    m.perturb_zero = tp == "zero";
  }
  parse_exact_inputs(o, m);
  if (o.has("netns")) {
    if (o.has("addresses") || o.has("sysctls"))
      fail(path, "give either \"netns\" or \"addresses\"/\"sysctls\" (the machine's one namespace), not both");
    const json& arr = o.at("netns");
    if (!arr.is_array() || arr.empty()) fail(o.sub("netns"), "expected a non-empty array of namespaces");
    for (size_t i = 0; i < arr.size(); ++i) {
      const std::string p = fmt::format("{}[{}]", o.sub("netns"), i);
      Obj no(arr[i], p, {"name", "addresses", "sysctls"});
      m.netns.push_back(parse_netns(no, no.str("name"), m.kernel, m.hz));
    }
  } else {
    m.netns.push_back(parse_netns(o, m.name, m.kernel, m.hz));
  }
  return m;
}

std::optional<SockOpt> sockopt_from_name(const std::string& n) {
  static const std::unordered_map<std::string, SockOpt> k{
      {"SO_REUSEADDR", SockOpt::SO_REUSEADDR}, {"SO_REUSEPORT", SockOpt::SO_REUSEPORT},
      {"IP_BIND_ADDRESS_NO_PORT", SockOpt::IP_BIND_ADDRESS_NO_PORT},
      {"IP_LOCAL_PORT_RANGE", SockOpt::IP_LOCAL_PORT_RANGE}, {"IPV6_V6ONLY", SockOpt::IPV6_V6ONLY},
      {"SO_LINGER", SockOpt::SO_LINGER}, {"TCP_SYNCNT", SockOpt::TCP_SYNCNT}};
  auto it = k.find(n);
  if (it == k.end()) return std::nullopt;
  return it->second;
}

const std::vector<std::string_view> kOptNames{"SO_REUSEADDR", "SO_REUSEPORT", "IP_BIND_ADDRESS_NO_PORT",
                                              "IP_LOCAL_PORT_RANGE", "IPV6_V6ONLY", "SO_LINGER", "TCP_SYNCNT"};

OptSetting parse_opt(const std::string& name, const json& v, const std::string& path) {
  auto opt = sockopt_from_name(name);
  if (!opt) fail(path, fmt::format("unknown socket option '{}'{}", name, did_you_mean(name, kOptNames)));
  OptSetting s{*opt, 0};
  if (*opt == SockOpt::IP_LOCAL_PORT_RANGE) {
    // "40002-40005" or the packed integer lo | hi << 16. setsockopt() itself answers EINVAL for
    // lo > hi when both are set; that is a runtime outcome, not bad input.
    if (v.is_string()) {
      unsigned lo = 0, hi = 0;
      char dash = 0;
      std::istringstream in(v.get<std::string>());
      if (!(in >> lo >> dash >> hi) || dash != '-' || lo > 65535 || hi > 65535 || !in.eof())
        fail(path, "expected \"LOW-HIGH\" (e.g. \"40002-40005\") or a packed integer, got " + show(v));
      s.value = lo | hi << 16;
    } else if (v.is_number_unsigned() && v.get<uint64_t>() <= UINT32_MAX) {
      s.value = uint32_t(v.get<uint64_t>());
    } else {
      fail(path, "expected \"LOW-HIGH\" (e.g. \"40002-40005\") or a packed integer, got " + show(v));
    }
  } else if (*opt == SockOpt::SO_LINGER) {
    // {"SO_LINGER": 0}: l_onoff = 1, l_linger = 0 (close() resets); "off" disables it.
    if (v.is_number_integer() && v.get<int64_t>() == 0) s.value = 1;
    else if (v.is_string() && v.get<std::string>() == "off") s.value = 0;
    else fail(path, "expected 0 (linger on with a zero timeout: close() sends RST) or \"off\", got " + show(v));
  } else if (*opt == SockOpt::TCP_SYNCNT) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 127)
      fail(path, "expected an integer in [1, 127] (MAX_TCP_SYNCNT), got " + show(v));
    s.value = uint32_t(v.get<int64_t>());
  } else {
    if (v.is_boolean()) s.value = v.get<bool>();
    else if (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)) s.value = uint32_t(v.get<int64_t>());
    else fail(path, "expected 0, 1, true or false, got " + show(v));
  }
  return s;
}

std::vector<OptSetting> parse_opts(const Obj& o) {
  const json& j = o.at("opts");
  if (!j.is_object()) fail(o.sub("opts"), "expected an object like {\"SO_REUSEADDR\": 1}, got " + show(j));
  std::vector<OptSetting> out;
  for (const auto& [k, v] : j.items()) out.push_back(parse_opt(k, v, o.sub("opts") + "." + k));
  return out;
}

int parse_errno(const json& v, const std::string& path) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (auto e = errno_from_name(s); e && *e != 0) return *e;
  }
  fail(path, "expected an errno name such as \"EADDRNOTAVAIL\", got " + show(v));
}

Expect parse_expect(const json& j, const std::string& path) {
  Obj o(j, path, {"ret", "errno", "port", "port_in", "parity", "at"});
  Expect e;
  if (o.has("ret")) {
    const json& r = o.at("ret");
    if (!r.is_number_integer() || (r.get<int64_t>() != 0 && r.get<int64_t>() != -1))
      fail(o.sub("ret"), "expected 0 or -1, got " + show(r));
    if (r.get<int64_t>() == 0) e.err = 0;
    else if (!o.has("errno")) fail(path, "\"ret\": -1 needs an \"errno\"");
  }
  if (o.has("errno")) {
    if (e.err && *e.err == 0) fail(o.sub("errno"), "\"ret\": 0 and an errno contradict each other");
    e.err = parse_errno(o.at("errno"), o.sub("errno"));
  }
  if (o.has("port")) e.port = uint16_t(o.uint("port", 1, 65535));
  if (o.has("port_in")) {
    const json& r = o.at("port_in");
    if (!r.is_array() || r.size() != 2 || !r[0].is_number_unsigned() || !r[1].is_number_unsigned() ||
        r[0].get<uint64_t>() > r[1].get<uint64_t>() || r[1].get<uint64_t>() > 65535)
      fail(o.sub("port_in"), "expected [LOW, HIGH] with LOW <= HIGH <= 65535, got " + show(r));
    e.port_in = {uint16_t(r[0].get<uint64_t>()), uint16_t(r[1].get<uint64_t>())};
  }
  if (o.has("parity")) {
    const std::string p = o.str("parity");
    if (p != "even" && p != "odd") fail(o.sub("parity"), "expected \"even\" or \"odd\", got \"" + p + "\"");
    e.parity = p == "odd";
  }
  if (o.has("at")) {  // "131s", or a window ["131s", "136.1s"] (timers run late by the wheel's rounding)
    const json& a = o.at("at");
    if (a.is_array()) {
      auto bound = [&](size_t i) {
        return a.size() == 2 && a[i].is_string() ? parse_duration(a[i].get<std::string>()).value_or(UINT64_MAX)
                                                 : UINT64_MAX;
      };
      const Nanos lo = bound(0), hi = bound(1);
      if (lo > kMaxScenarioTime || hi > kMaxScenarioTime || lo > hi)
        fail(o.sub("at"), "expected a duration or [\"LOW\", \"HIGH\"] with LOW <= HIGH, got " + show(a));
      e.at = {lo, hi};
    } else {
      const Nanos t = o.duration("at");
      e.at = {t, t};
    }
  }
  return e;
}

ExpectTotal parse_expect_total(const json& j, const std::string& path) {
  if (!j.is_object()) fail(path, "expected an object like {\"ok\": 10, \"EADDRNOTAVAIL\": 1}, got " + show(j));
  ExpectTotal t;
  for (const auto& [k, v] : j.items()) {
    const std::string p = path + "." + k;
    if (!v.is_number_unsigned()) fail(p, "expected a count, got " + show(v));
    const uint64_t n = v.get<uint64_t>();
    if (k == "ok") t.ok = n;
    else if (k == "distinct_ports") t.distinct_ports = n;
    else if (auto e = errno_from_name(k); e && *e != 0) t.errors[*e] = n;
    else fail(p, fmt::format("expected \"ok\", \"distinct_ports\" or an errno name, got '{}'", k));
  }
  return t;
}

const std::vector<std::string_view> kOps{"socket", "setsockopt", "bind", "listen", "connect", "accept", "close", "sysctl", "shutdown", "send", "recv"};

Op parse_op(const Obj& o) {
  const std::string s = o.str("op");
  for (size_t i = 0; i < kOps.size(); ++i)
    if (kOps[i] == s) return Op(i);
  fail(o.sub("op"), fmt::format("unknown op '{}'{} (ops: socket, setsockopt, bind, listen, connect, accept, close, shutdown, sysctl, send, recv)",
                                s, did_you_mean(s, kOps)));
}

// Tracks which socket names exist, in file order, to reject references to unknown sockets.
// Plain names by hash, "{i}" patterns through a PatternIndex: linear in the timeline's length.
struct Names {
  std::unordered_map<std::string, int> netns_of;  // plain names
  struct Pattern { uint64_t order, count; int netns; };
  PatternIndex<Pattern> patterns;
  uint64_t added = 0;

  std::optional<int> find(const std::string& n) const {
    if (auto it = netns_of.find(n); it != netns_of.end()) return it->second;
    std::optional<Pattern> first;  // the earliest pattern that names n
    patterns.for_each_match(n, [&](uint64_t k, const Pattern& p) {
      if (k < p.count && (!first || p.order < first->order)) first = p;
    });
    if (first) return first->netns;
    return std::nullopt;
  }
  void add(const std::string& pattern, uint64_t count, int netns) {
    if (pattern.find("{i}") == std::string::npos) netns_of[pattern] = netns;
    else patterns.add(pattern, {added++, count, netns});
  }
};

std::string sock_name_at(const Obj& o, const char* k) {
  std::string n = o.str(k);
  if (n.size() > kMaxSockName) fail(o.sub(k), fmt::format("a socket name is at most {} bytes, got {}", kMaxSockName, n.size()));
  return n;
}

Call parse_call(const json& j, const std::string& path, Names& names,
                const std::unordered_map<std::string, int>& hosts, std::vector<std::string_view> host_names) {
  Obj o(j, path, {"t", "op", "host", "sock", "as", "to", "addr", "backlog", "opts", "opt", "value", "name",
                  "uid", "cap_net_bind_service", "repeat", "expect", "expect_total", "comment", "nonblock", "family",
                  "type", "echo"});
  Call c;
  c.path = path;
  c.t = o.duration("t");
  c.op = parse_op(o);
  if (o.has("host")) {
    const std::string h = o.str("host");
    auto it = hosts.find(h);
    if (it == hosts.end()) fail(o.sub("host"), fmt::format("no host (netns) named '{}'{}", h, did_you_mean(h, host_names)));
    c.netns = it->second;
  }
  if (o.has("repeat")) {
    Obj r(o.at("repeat"), o.sub("repeat"), {"count", "every"});
    c.count = r.uint("count", 1, 1'000'000'000);
    c.every = r.has("every") ? r.duration("every") : 0;
    // The last repetition runs at t + (count - 1) × every: within the scenario's time range.
    const unsigned __int128 last = (unsigned __int128)c.t + (unsigned __int128)(c.count - 1) * c.every;
    if (last > kMaxScenarioTime)
      fail(o.sub("repeat"), "the last repetition would run after 100000h, the longest time a scenario may give");
  }
  if (c.op == Op::sysctl) {
    if (c.netns < 0) fail(path, "a sysctl op needs \"host\"");
    c.sysctl = {o.str("name"), "", o.sub("name")};
    const json& v = o.at("value");
    if (v.is_string()) c.sysctl.value = v.get<std::string>();
    else if (v.is_number_integer()) c.sysctl.value = std::to_string(v.get<int64_t>());
    else fail(o.sub("value"), "expected a string or an integer, got " + show(v));
    net::sysctls scratch;
    if (auto err = net::sysctl_write(scratch, c.sysctl.name, "0"); err.rfind("unknown sysctl", 0) == 0) fail(o.sub("name"), err);
  } else {
    c.sock = sock_name_at(o, "sock");
    const bool pattern = c.sock.find("{i}") != std::string::npos;
    if (pattern && c.count == 1 && !o.has("repeat")) fail(o.sub("sock"), "\"{i}\" in a socket name needs \"repeat\"");
    if (!pattern && c.count > 1 && (c.op == Op::socket || !names.find(c.sock)))
      fail(o.sub("sock"), "a repeated call that creates sockets needs \"{i}\" in the name (e.g. \"c{i}\")");
    const bool creates = c.op == Op::socket || c.op == Op::bind || c.op == Op::connect || c.op == Op::listen ||
                         c.op == Op::send;
    std::optional<int> existing = pattern ? std::nullopt : names.find(c.sock);
    if (pattern) {  // every instance must be new for creating ops, known otherwise
      existing = names.find(sock_name(c.sock, 0));
    }
    if (c.op == Op::socket && existing) fail(o.sub("sock"), fmt::format("socket '{}' exists already", c.sock));
    if (!existing) {
      if (!creates) fail(o.sub("sock"), fmt::format("no socket named '{}' was created before this call", c.sock));
      if (c.netns < 0) fail(path, fmt::format("\"host\" is needed to create socket '{}'", c.sock));
      names.add(c.sock, c.count, c.netns);
      c.creates = true;
    } else if (c.netns >= 0 && c.netns != *existing) {
      fail(o.sub("host"), fmt::format("socket '{}' lives on another host", c.sock));
    }
    if (o.has("uid")) c.cred.uid = uint32_t(o.uint("uid", 0, UINT32_MAX));
    if (o.has("cap_net_bind_service")) {
      const json& v = o.at("cap_net_bind_service");
      if (!v.is_boolean()) fail(o.sub("cap_net_bind_service"), "expected true or false, got " + show(v));
      c.cred.cap_net_bind_service = v.get<bool>();
    } else if (c.cred.uid != 0) {
      c.cred.cap_net_bind_service = false;  // an unprivileged uid holds no capabilities
    }
    if ((o.has("uid") || o.has("cap_net_bind_service")) && existing)
      fail(o.sub("uid"), "uid / cap_net_bind_service apply only where a call creates its socket");
  }
  switch (c.op) {
    case Op::bind: c.addr = endpoint_at(o, "addr"); break;
    case Op::connect: c.addr = endpoint_at(o, "to"); break;
    case Op::listen: if (o.has("backlog")) c.backlog = int(o.uint("backlog", 0, 2147483647)); break;
    case Op::accept:
      c.as = sock_name_at(o, "as");
      if (c.count > 1 && c.as.find("{i}") == std::string::npos)
        fail(o.sub("as"), "a repeated accept needs \"{i}\" in \"as\"");
      if (names.find(sock_name(c.as, 0))) fail(o.sub("as"), fmt::format("socket '{}' exists already", c.as));
      names.add(c.as, c.count, names.find(sock_name(c.sock, 0)).value_or(c.netns));
      break;
    case Op::setsockopt:
      c.opts.push_back(parse_opt(o.str("opt"), o.at("value"), o.sub("opt")));
      break;
    case Op::send:
      if (o.has("to")) {
        c.addr = endpoint_at(o, "to");
        c.has_to = true;
      }
      break;
    case Op::socket: case Op::close: case Op::sysctl: case Op::shutdown: case Op::recv: break;
  }
  if (o.has("type")) {
    if (!c.creates) fail(o.sub("type"), "\"type\" applies where a call creates its socket");
    const std::string t = o.str("type");
    if (t == "udp") c.udp = true;
    else if (t != "tcp") fail(o.sub("type"), "expected \"tcp\" or \"udp\", got \"" + t + "\"");
  }
  if (c.op == Op::send && c.creates && !c.udp) fail(path, "send creates a socket only with \"type\": \"udp\"");
  if (c.op == Op::listen && c.udp) fail(o.sub("type"), "listen() is for stream sockets (a UDP socket gets EOPNOTSUPP)");
  if (o.has("echo")) {
    if (!c.udp) fail(o.sub("echo"), "\"echo\" applies to a UDP socket the call creates (\"type\": \"udp\")");
    if (!o.at("echo").is_boolean()) fail(o.sub("echo"), "expected true or false, got " + show(o.at("echo")));
    c.echo = o.at("echo").get<bool>();
  }
  // The family of a socket the call creates: explicit, else that of its address (bind/connect),
  // the way a program picks AF_INET6 for an IPv6 literal.
  if ((c.op == Op::bind || c.op == Op::connect || (c.op == Op::send && c.has_to)) && !c.addr.addr.is_v4())
    c.family = net::family::inet6;
  // the way a program picks AF_INET6 for an IPv6 literal — "[::ffff:127.0.0.1]:80" included.
  if (c.op == Op::bind || c.op == Op::connect) {
    const char* key = c.op == Op::bind ? "addr" : "to";
    if (!c.addr.addr.is_v4() || (o.has(key) && o.str(key).starts_with("["))) c.family = net::family::inet6;
  }
  if (o.has("family")) {
    if (!c.creates) fail(o.sub("family"), "\"family\" applies where a call creates its socket");
    const std::string f = o.str("family");
    if (f == "inet") c.family = net::family::inet;
    else if (f == "inet6") c.family = net::family::inet6;
    else fail(o.sub("family"), "expected \"inet\" or \"inet6\", got \"" + f + "\"");
  }
  if (o.has("nonblock")) {
    if (c.op != Op::connect) fail(o.sub("nonblock"), "\"nonblock\" applies to connect");
    if (!o.at("nonblock").is_boolean()) fail(o.sub("nonblock"), "expected true or false, got " + show(o.at("nonblock")));
    c.nonblock = o.at("nonblock").get<bool>();
  }
  if (o.has("opts")) {
    if (c.op == Op::setsockopt) fail(o.sub("opts"), "setsockopt takes \"opt\" and \"value\"");
    c.opts = parse_opts(o);
  }
  if (o.has("expect")) c.expect = parse_expect(o.at("expect"), o.sub("expect"));
  if (o.has("expect_total")) c.expect_total = parse_expect_total(o.at("expect_total"), o.sub("expect_total"));
  return c;
}

void parse_path(const Obj& o, PathSpec& p) {
  if (o.has("delay")) p.delay = o.duration("delay");
  if (o.has("jitter")) p.jitter = o.duration("jitter");
  if (o.has("loss")) {
    const json& l = o.at("loss");
    if (!l.is_number() || l.get<double>() < 0 || l.get<double>() > 1)
      fail(o.sub("loss"), "expected a probability in [0, 1], got " + show(l));
    p.loss = l.get<double>();
  }
}

ExternalSpec parse_external(const json& j, const std::string& p) {
  ExternalSpec x;
  std::string ep_text;
  std::optional<Obj> o;
  if (j.is_string()) {
    ep_text = j.get<std::string>();
  } else {
    o.emplace(j, p, std::vector<std::string_view>{"endpoint", "answer", "delay", "jitter", "loss"});
    ep_text = o->str("endpoint");
    parse_path(*o, x.path);
    if (o->has("answer")) {
      const std::string a = o->str("answer");
      if (a == "accept") x.ep.answer = net::external_answer::accept;
      else if (a == "refuse") x.ep.answer = net::external_answer::refuse;
      else if (a == "silent") x.ep.answer = net::external_answer::silent;
      else fail(o->sub("answer"), "expected \"accept\", \"refuse\" or \"silent\", got \"" + a + "\"");
    }
  }
  const std::string where = o ? o->sub("endpoint") : p;
  const bool any = ep_text.size() > 2 && ep_text.compare(ep_text.size() - 2, 2, ":*") == 0;
  std::string s = any ? ep_text.substr(0, ep_text.size() - 2) + ":0" : ep_text;
  auto e = net::parse_endpoint(s);
  if (!e || (!any && e->port == 0)) fail(where, "expected \"addr:port\" or \"addr:*\", got \"" + ep_text + "\"");
  x.ep.addr = e->addr;
  x.ep.port = e->port;
  return x;
}

WorkloadSpec parse_workload(const json& j, const std::string& path, const std::unordered_map<std::string, int>& hosts,
                            const std::vector<std::string_view>& host_names) {
  Obj o(j, path, {"name", "host", "start", "stop", "rate", "arrival", "to", "pick", "hold", "close", "opts", "bind",
                  "pool", "comment", "type"});
  WorkloadSpec w;
  w.path = path;
  w.name = o.str("name");
  if (w.name.empty() || w.name.find_first_of(" #{}") != std::string::npos)
    fail(o.sub("name"), "expected a name without spaces, '#' or braces");
  const std::string h = o.str("host");
  auto it = hosts.find(h);
  if (it == hosts.end()) fail(o.sub("host"), fmt::format("no host (netns) named '{}'{}", h, did_you_mean(h, host_names)));
  w.netns = it->second;
  w.start = o.has("start") ? o.duration("start") : 0;
  w.stop = o.duration("stop");
  if (w.stop <= w.start) fail(o.sub("stop"), fmt::format("stop {} must be after start {}", format_duration(w.stop), format_duration(w.start)));
  const json& r = o.at("rate");
  if (!r.is_number() || r.get<double>() <= 0 || r.get<double>() > 1e9)
    fail(o.sub("rate"), "expected arrivals per second, a number in (0, 1e9], got " + show(r));
  // The mean gap 1/rate must fit the scenario's time range (the run saturates Poisson draws).
  if (r.get<double>() * double(kMaxScenarioTime / kNsPerSec) < 1)
    fail(o.sub("rate"), show(r) + " arrivals per second is less than one in 100000h, the longest time a scenario may give");
  w.rate = r.get<double>();
  const std::string arrival = o.str_or("arrival", "constant");
  if (arrival != "constant" && arrival != "poisson") fail(o.sub("arrival"), "expected \"constant\" or \"poisson\", got \"" + arrival + "\"");
  w.poisson = arrival == "poisson";
  const json& to = o.at("to");
  if (to.is_object()) {  // N addresses × M ports, address-major
    Obj t(to, o.sub("to"), {"addrs", "ports"});
    const json& addrs = t.at("addrs");
    const json& ports = t.at("ports");
    if (!addrs.is_array() || addrs.empty()) fail(t.sub("addrs"), "expected a non-empty array of addresses");
    if (!ports.is_array() || ports.empty()) fail(t.sub("ports"), "expected a non-empty array of ports");
    if (addrs.size() * ports.size() > 1'000'000) fail(o.sub("to"), "more than 1 000 000 destinations");
    for (size_t i = 0; i < addrs.size(); ++i) {
      const std::string p = fmt::format("{}[{}]", t.sub("addrs"), i);
      auto a = addrs[i].is_string() ? net::parse_addr(addrs[i].get<std::string>()) : std::nullopt;
      if (!a) fail(p, "expected an address (e.g. \"10.0.1.1\"), got " + show(addrs[i]));
      for (size_t k = 0; k < ports.size(); ++k) {
        if (!ports[k].is_number_unsigned() || ports[k].get<uint64_t>() < 1 || ports[k].get<uint64_t>() > 65535)
          fail(fmt::format("{}[{}]", t.sub("ports"), k), "expected a port in [1, 65535], got " + show(ports[k]));
        w.to.push_back({*a, uint16_t(ports[k].get<uint64_t>())});
      }
    }
  } else {
    if (!to.is_array() || to.empty())
      fail(o.sub("to"), "expected a non-empty array of \"addr:port\", or {\"addrs\": [...], \"ports\": [...]}");
    for (size_t i = 0; i < to.size(); ++i) {
      const std::string p = fmt::format("{}[{}]", o.sub("to"), i);
      auto e = to[i].is_string() ? net::parse_endpoint(to[i].get<std::string>()) : std::nullopt;
      if (!e || e->port == 0) fail(p, "expected \"addr:port\", got " + show(to[i]));
      w.to.push_back(*e);
    }
  }
  const std::string pick = o.str_or("pick", "round_robin");
  if (pick != "round_robin" && pick != "random") fail(o.sub("pick"), "expected \"round_robin\" or \"random\", got \"" + pick + "\"");
  w.pick_random = pick == "random";
  if (o.has("hold")) {
    const json& hv = o.at("hold");
    if (hv.is_object()) {
      Obj ho(hv, o.sub("hold"), {"exp"});
      w.hold = ho.duration("exp");
      w.hold_exp = true;
    } else {
      w.hold = o.duration("hold");
    }
  }
  const std::string close = o.str_or("close", "client");
  if (close == "client") w.close = WorkloadSpec::Closer::client;
  else if (close == "server") w.close = WorkloadSpec::Closer::server;
  else if (close == "rst") w.close = WorkloadSpec::Closer::rst;
  else fail(o.sub("close"), "expected \"client\", \"server\" or \"rst\", got \"" + close + "\"");
  if (o.has("opts")) w.opts = parse_opts(o);
  if (o.has("bind")) w.bind = endpoint_at(o, "bind");
  // 0 or null: no pool (so that a sweep can vary it: --vary /workloads/0/pool=0,8)
  if (o.has("pool") && !o.at("pool").is_null()) w.pool = uint32_t(o.uint("pool", 0, 1'000'000));
  if (o.has("type")) {
    const std::string t = o.str("type");
    if (t == "udp") w.udp = true;
    else if (t != "tcp") fail(o.sub("type"), "expected \"tcp\" or \"udp\", got \"" + t + "\"");
  }
  if (w.udp) {
    if (w.pool) fail(o.sub("pool"), "a UDP workload has no pool (each query is its own socket)");
    if (o.has("close") && o.str("close") != "client")
      fail(o.sub("close"), "a UDP workload's client closes its socket (at the reply, or after \"hold\")");
    if (!o.has("hold")) w.hold = 5 * kNsPerSec;  // resolv.conf's default timeout
  }
  return w;
}

// Sizes against the limits (README "Limits"), and the memory estimate against the budget.
void check_limits(const Scenario& sc, const Limits& lim) {
  uint64_t netns = 0;
  for (const auto& m : sc.machines) netns += m.netns.size();
  if (netns > lim.machines)
    fail("$.machines", fmt::format("{} network namespaces, more than the limit of {} (--no-limits lifts it)", netns, lim.machines));
  unsigned __int128 calls = 0, sockets = 0;
  for (const auto& c : sc.timeline) {
    calls += c.count;
    if (c.creates || c.op == Op::accept) sockets += c.count;
  }
  double arrivals = 0;
  for (const auto& w : sc.workloads) {
    sockets += w.pool;
    arrivals += w.rate * double(w.stop - w.start) / double(kNsPerSec);
  }
  if (calls > lim.calls)
    fail("$.timeline", fmt::format("{} calls (repetitions included), more than the limit of {} (--no-limits lifts it)",
                                   uint64_t(calls), lim.calls));
  if (sockets > lim.sockets)
    fail("$.timeline", fmt::format("up to {} sockets, more than the limit of {} (--no-limits lifts it)", uint64_t(sockets),
                                   lim.sockets));
  if (double(calls) + arrivals > double(lim.events))
    fail(sc.workloads.empty() ? "$.timeline" : "$.workloads",
         fmt::format("about {:.0f} calls and workload arrivals, more than the limit of {} (--no-limits lifts it)",
                     double(calls) + arrivals, lim.events));
  uint64_t budget = lim.memory;
  if (budget == 0) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    budget = pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) / 2 : UINT64_MAX;
  }
  if (const uint64_t need = estimate_memory(sc); need > budget)
    fail("$", fmt::format("the run needs about {} MiB of memory, more than the {} MiB allowed (half this machine's RAM; "
                          "--no-limits lifts it)", need >> 20, budget >> 20));
}


// The socket names that exist at each call, in the engine's execution order (runner.cc: calls
// in (time, seq) order; a call's repetition k + 1 is scheduled when repetition k runs), so that
// check rejects every use the run would: a call on a name not created yet or already closed, a
// "socket" on a live name, a creating call without "host" on a closed name. accept is assumed to
// succeed (its outcome is known only by running; the runner keeps its own message for that).
void check_name_lifetimes(const Scenario& sc) {
  struct Pending { Nanos t; uint64_t seq; uint32_t ci; uint64_t k; };
  const auto later = [](const Pending& a, const Pending& b) { return a.t != b.t ? a.t > b.t : a.seq > b.seq; };
  std::vector<Pending> heap;
  uint64_t seq = 0;
  const std::vector<bool> skip = unreferenced_fresh_calls(sc);
  for (uint32_t i = 0; i < sc.timeline.size(); ++i)
    if (!skip[i]) heap.push_back({sc.timeline[i].t, seq++, i, 0});
  std::make_heap(heap.begin(), heap.end(), later);
  std::unordered_map<std::string, uint64_t> alive;  // name -> sockets that carry it
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Pending e = heap.back();
    heap.pop_back();
    const Call& c = sc.timeline[e.ci];
    if (e.k + 1 < c.count) {
      heap.push_back({c.t + (e.k + 1) * c.every, seq++, e.ci, e.k + 1});
      std::push_heap(heap.begin(), heap.end(), later);
    }
    if (c.op == Op::sysctl) continue;
    const std::string n = sock_name(c.sock, e.k);
    const bool creates = c.op == Op::socket || c.op == Op::bind || c.op == Op::connect || c.op == Op::listen ||
                         c.op == Op::send;
    const bool fresh = c.creates && c.count > 1;  // the runner makes a new socket without a lookup
    auto it = alive.find(n);
    const bool live = !fresh && it != alive.end();
    if (!live) {
      if (!creates)
        fail(c.path, fmt::format("socket '{}' does not exist at {} (not created yet, or closed)", n, format_duration(e.t)));
      if (c.netns < 0)
        fail(c.path, fmt::format("\"host\" is needed to create socket '{}' again at {} (it was closed)", n,
                                 format_duration(e.t)));
      ++alive[n];
    } else if (c.op == Op::socket) {
      fail(c.path + ".sock", fmt::format("socket '{}' exists already at {}", n, format_duration(e.t)));
    }
    if (c.op == Op::accept) ++alive[sock_name(c.as, e.k)];
    if (c.op == Op::close && live && --it->second == 0) alive.erase(it);
  }
}

Scenario parse_scenario(const json& root, const std::string& file, const Limits& lim,
                        const std::string& kernel_override) {
  Obj o(root, "$", {"name", "description", "kernel", "seed", "machines", "external", "links", "workloads", "timeline", "comment", "oracle"});
  if (o.has("oracle")) {  // read by tools/kernel-oracle; portsim only checks its shape
    Obj orc(o.at("oracle"), o.sub("oracle"), {"checkable", "compare", "notes"});
    if (orc.has("checkable") && !orc.at("checkable").is_boolean())
      fail(orc.sub("checkable"), "expected true or false, got " + show(orc.at("checkable")));
  }
  Scenario sc;
  sc.file = file;
  sc.name = o.str_or("name", "");
  sc.description = o.str_or("description", "");
  net::kernel_profile kernel = net::default_kernel_profile();
  if (!kernel_override.empty()) {
    std::string err;
    auto k = net::find_kernel_profile(kernel_override, err);
    if (!k) fail("--kernel", err);
    kernel = *k;
  } else if (o.has("kernel")) {
    kernel = parse_kernel(o, "kernel");
  }
  sc.kernel = kernel.name;
  if (o.has("seed")) sc.seed = o.uint("seed", 0, UINT64_MAX);
  const json& ms = o.at("machines");
  if (!ms.is_array() || ms.empty()) fail(o.sub("machines"), "expected a non-empty array of machines");
  if (ms.size() > lim.machines)
    fail(o.sub("machines"), fmt::format("{} machines, more than the limit of {} (--no-limits lifts it)", ms.size(), lim.machines));
  std::unordered_map<std::string, int> hosts;
  std::vector<std::string_view> host_names;
  std::set<std::string> machine_names;
  for (size_t i = 0; i < ms.size(); ++i) {
    const std::string p = fmt::format("$.machines[{}]", i);
    sc.machines.push_back(parse_machine(ms[i], p, kernel, !kernel_override.empty()));
    if (!machine_names.insert(sc.machines.back().name).second)
      fail(p + ".name", "machine '" + sc.machines.back().name + "' is defined twice");
  }
  std::vector<size_t> machine_of_ns;
  for (const auto& m : sc.machines)
    for (const auto& ns : m.netns) {
      machine_of_ns.push_back(size_t(&m - sc.machines.data()));
      if (hosts.count(ns.name)) fail("$.machines", "host (netns) name '" + ns.name + "' is used twice");
      const int id = int(hosts.size());
      hosts[ns.name] = id;
    }
  for (const auto& [n, id] : hosts) host_names.push_back(n);
  if (o.has("external")) {
    const json& ex = o.at("external");
    if (!ex.is_array()) fail(o.sub("external"), "expected an array of \"addr:port\", \"addr:*\" or {\"endpoint\", …}");
    for (size_t i = 0; i < ex.size(); ++i) sc.externals.push_back(parse_external(ex[i], fmt::format("$.external[{}]", i)));
  }
  if (o.has("links")) {
    const json& ls = o.at("links");
    if (!ls.is_array()) fail(o.sub("links"), "expected an array of {\"between\": [\"a\", \"b\"], \"delay\", \"jitter\", \"loss\"}");
    for (size_t i = 0; i < ls.size(); ++i) {
      const std::string p = fmt::format("$.links[{}]", i);
      Obj lo(ls[i], p, {"between", "delay", "jitter", "loss", "comment"});
      const json& b = lo.at("between");
      if (!b.is_array() || b.size() != 2 || !b[0].is_string() || !b[1].is_string())
        fail(lo.sub("between"), "expected two host names, e.g. [\"client\", \"server\"] (the same twice: loopback), got " + show(b));
      LinkSpec l;
      for (int k = 0; k < 2; ++k) {
        const std::string h = b[size_t(k)].get<std::string>();
        auto it = hosts.find(h);
        if (it == hosts.end()) fail(lo.sub("between"), fmt::format("no host (netns) named '{}'{}", h, did_you_mean(h, host_names)));
        (k ? l.b : l.a) = it->second;
      }
      parse_path(lo, l.path);
      sc.links.push_back(l);
    }
  }
  if (o.has("workloads")) {
    const json& ws = o.at("workloads");
    if (!ws.is_array()) fail(o.sub("workloads"), "expected an array of workload generators");
    std::set<std::string> names;
    for (size_t i = 0; i < ws.size(); ++i) {
      sc.workloads.push_back(parse_workload(ws[i], fmt::format("$.workloads[{}]", i), hosts, host_names));
      if (!names.insert(sc.workloads.back().name).second)
        fail(fmt::format("$.workloads[{}].name", i), "workload '" + sc.workloads.back().name + "' is defined twice");
    }
  }
  // A scenario made of workloads alone needs no timeline.
  if (!o.has("timeline") && sc.workloads.empty())
    fail("$", "missing required key 'timeline' (an array of calls; it may be left out when there are workloads)");
  static const json kNoCalls = json::array();
  const json& tl = o.has("timeline") ? o.at("timeline") : kNoCalls;
  if (!tl.is_array()) fail(o.sub("timeline"), "expected an array of calls");
  Names names;
  for (size_t i = 0; i < tl.size(); ++i) {
    const std::string p = fmt::format("$.timeline[{}]", i);
    Call c = parse_call(tl[i], p, names, hosts, host_names);
    if (c.op == Op::sysctl) {  // a sysctl the host's kernel lacks cannot be written there
      const net::kernel_profile& k = sc.machines[machine_of_ns[size_t(c.netns)]].kernel;
      if (const net::sysctl_spec* sp = k.sysctl(c.sysctl.name); sp && !sp->exists)
        fail(p + ".name", fmt::format("{} does not exist in Linux {} (writing it fails there with ENOENT)",
                                      c.sysctl.name, k.name));
    }
    if (!sc.timeline.empty() && c.t < sc.timeline.back().t)
      fail(p + ".t", fmt::format("time {} is before the previous call's {}", format_duration(c.t),
                                 format_duration(sc.timeline.back().t)));
    sc.timeline.push_back(std::move(c));
  }
  check_limits(sc, lim);
  check_name_lifetimes(sc);
  return sc;
}

size_t utf8_length(std::string_view s, size_t i) {  // a valid sequence at s[i]: its length, else 0
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned c = b(i);
  size_t n;
  unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte (RFC 3629 table)
  if (c >= 0x20 && c < 0x7F) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
  else return 0;
  if (i + n > s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return n;
}

// Where nlohmann's parser would go wrong before it reports: nesting past kMaxJsonDepth (its
// error path recurses) and numbers beyond a double's range (it throws out_of_range, not a
// parse error). Scans strings and comments the way its lexer does; the offset of the culprit
// and what to say, or nothing.
std::optional<std::pair<size_t, std::string>> prescan(const std::string& t) {
  int depth = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '"') {
      for (++i; i < t.size() && t[i] != '"'; ++i)
        if (t[i] == '\\') ++i;
    } else if (c == '/' && i + 1 < t.size() && t[i + 1] == '/') {
      while (i < t.size() && t[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < t.size() && t[i + 1] == '*') {
      const size_t end = t.find("*/", i + 2);
      if (end == std::string::npos) return std::nullopt;  // the parser reports the open comment
      i = end + 1;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return std::make_pair(i, fmt::format("nested deeper than {} levels", kMaxJsonDepth));
    } else if (c == ']' || c == '}') {
      depth = std::max(depth - 1, 0);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t e = i + 1;
      while (e < t.size() && (std::isdigit(static_cast<unsigned char>(t[e])) || t[e] == '.' || t[e] == 'e' ||
                              t[e] == 'E' || t[e] == '+' || t[e] == '-'))
        ++e;
      const std::string num = t.substr(i, e - i);
      if (std::isinf(std::strtod(num.c_str(), nullptr)))
        return std::make_pair(i, fmt::format("number {} is beyond the range of a double (about 1.8e308)",
                                             num.size() > 40 ? num.substr(0, 37) + "..." : num));
      i = e - 1;
    }
  }
  return std::nullopt;
}

std::string line_col(const std::string& text, size_t at) {  // 1-based line:column of byte `at`
  size_t line = 1, col = 1;
  for (size_t i = 0; i < at && i < text.size(); ++i) {
    if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
  }
  return fmt::format("{}:{}", line, col);
}

}  // namespace

// Repeated creating calls ("c{i}" with "host") whose names no other call can name: the runner
// makes each of their sockets without a lookup, so they cannot fail the lifetime check and need
// not be replayed by it (a 2.8 M-connect exhaustion would otherwise expand every repetition).
// Conservative: a call is kept when another call's name could start with its prefix or the other
// way round.
std::vector<bool> unreferenced_fresh_calls(const Scenario& sc) {
  const auto literal = [](const std::string& n) {
    const size_t at = n.find("{i}");
    return std::pair<std::string_view, bool>{std::string_view(n).substr(0, at), at != std::string::npos};
  };
  // Every call's sock and "as", literal part, sorted; and those of "{i}" names apart. Sorted,
  // the names starting with a prefix are contiguous: O(n log n) over the timeline, not O(n^2)
  // (10^4 calls made the quadratic scan cost seconds).
  std::vector<std::string_view> names, pattern_names;
  for (const Call& c : sc.timeline) {
    if (c.op == Op::sysctl) continue;
    for (const std::string* n : {&c.sock, &c.as}) {
      if (n == &c.as && c.as.empty()) continue;
      const auto [lit, pattern] = literal(*n);
      names.push_back(lit);
      if (pattern) pattern_names.push_back(lit);
    }
  }
  std::sort(names.begin(), names.end());
  std::sort(pattern_names.begin(), pattern_names.end());
  std::vector<bool> skip(sc.timeline.size(), false);
  for (size_t i = 0; i < sc.timeline.size(); ++i) {
    const Call& c = sc.timeline[i];
    const bool creates = c.op == Op::socket || c.op == Op::bind || c.op == Op::connect || c.op == Op::listen ||
                         c.op == Op::send;
    if (!(creates && c.creates && c.count > 1 && c.netns >= 0 && c.as.empty())) continue;
    const auto [a, pattern] = literal(c.sock);
    if (!pattern) continue;
    // Names b that clash: b starts with a, or b is a "{i}" name whose literal a starts with
    // (then, b not starting with a, a proper prefix of a). The call's own name is one of them.
    size_t clashes = 0;
    for (auto it = std::lower_bound(names.begin(), names.end(), a);
         it != names.end() && it->substr(0, a.size()) == a && clashes < 2; ++it)
      ++clashes;
    for (size_t len = 0; len < a.size() && clashes < 2; ++len) {
      const auto [lo, hi] = std::equal_range(pattern_names.begin(), pattern_names.end(), a.substr(0, len));
      clashes += size_t(hi - lo);
    }
    skip[i] = clashes <= 1;
  }
  return skip;
}

std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (const size_t n = utf8_length(s, i)) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += fmt::format("\\x{:02X}", static_cast<unsigned char>(s[i]));
      ++i;
    }
  }
  return out;
}

uint64_t estimate_memory(const Scenario& sc) {
  uint64_t bytes = 16u << 20;  // the program, the engine and the trace buffer
  for (const auto& m : sc.machines) {
    bytes += net::INET_TABLE_PERTURB_SIZE * sizeof(uint32_t) + sizeof(net::machine);
    // bhash (a bucket index per port), the connect() skip bitmap and the reserved ports.
    bytes += m.netns.size() * (65536 * sizeof(uint32_t) + 2 * 65536 / 8 + sizeof(net::netns));
  }
  for (const auto& c : sc.timeline) {
    bytes += sizeof(Call) + c.path.size() + c.sock.size();
    if (c.creates || c.op == Op::accept) bytes += c.count * (sizeof(net::sock) + 64);  // + ehash slot, name index
    if (c.expect_total && c.expect_total->distinct_ports) bytes += 65536 / 8;
  }
  for (const auto& w : sc.workloads) bytes += w.pool * (sizeof(net::sock) + 64) + w.to.size() * sizeof(net::endpoint);
  return bytes;
}

LoadResult load_scenario_text(const std::string& text, const std::string& file, const Limits& limits,
                              const std::string& kernel_override) {
  LoadResult r;
  json root;
  if (auto bad = prescan(text)) {
    r.error = Diag{printable(fmt::format("{}:{}: invalid JSON: {}", file, line_col(text, bad->first), bad->second))};
    return r;
  }
  try {
    root = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    // nlohmann reports a byte offset (1-based, the last byte read); turn it into line:column.
    std::string what = e.what();
    if (auto at = what.find("syntax error"); at != std::string::npos) what = what.substr(at);
    r.error = Diag{printable(fmt::format("{}:{}: invalid JSON: {}", file, line_col(text, e.byte ? e.byte - 1 : 0), what))};
    return r;
  } catch (const json::exception& e) {  // prescan() should have caught it; no position known
    r.error = Diag{printable(fmt::format("{}: invalid JSON: {}", file, e.what()))};
    return r;
  }
  try {
    r.scenario = parse_scenario(root, file, limits, kernel_override);
  } catch (const LoadError& e) {
    r.error = Diag{printable(fmt::format("{}: {}: {}", file, e.path, e.message))};
  }
  return r;
}

bool read_scenario_file(const std::string& path, std::string& text, std::string& error) {
  auto os_error = [&](int err) {
    error = printable(fmt::format("{}: cannot open the scenario file: {}", path == "-" ? "<stdin>" : path,
                                  std::strerror(err)));
    return false;
  };
  const bool from_stdin = path == "-";  // the scenario on standard input
  const int fd = from_stdin ? ::dup(STDIN_FILENO) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return os_error(errno);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return os_error(EISDIR);
  }
  text.clear();
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return os_error(err);
    }
    if (n == 0) break;
    if (text.size() + size_t(n) > kMaxScenarioBytes) {
      ::close(fd);
      error = printable(fmt::format("{}: the scenario file is larger than {} MiB", path, kMaxScenarioBytes >> 20));
      return false;
    }
    text.append(buf, size_t(n));
  }
  ::close(fd);
  return true;
}

LoadResult load_scenario_file(const std::string& path, const Limits& limits, const std::string& kernel_override) {
  std::string text, error;
  if (!read_scenario_file(path, text, error)) return {std::nullopt, Diag{error}};
  return load_scenario_text(text, path == "-" ? "<stdin>" : path, limits, kernel_override);
}

}  // namespace portsim::scenario
