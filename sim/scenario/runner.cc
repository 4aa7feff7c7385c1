// The replay loop: one engine event per call repetition (the next repetition is scheduled when
// the current one runs) and one per armed timer.
#include "portsim/scenario/runner.h"

#include <fmt/format.h>

#include <cerrno>
#include <unordered_map>

#include "portsim/base/errno_name.h"
#include "portsim/net/af_inet.h"
#include "portsim/net/inet_connection_sock.h"
#include "portsim/net/secure_seq.h"

namespace portsim::scenario {

namespace {
enum EventKind : uint8_t { kCall = 0, kTimer = 1 };
constexpr uint32_t kNoCall = UINT32_MAX;
constexpr size_t kMaxFailuresShown = 20;

// Which name a sock answers to: the call that named it and the repetition.
struct NameRef {
  uint32_t call = kNoCall;
  uint32_t k = 0;
  bool as = false;  // named by an accept's "as"
};

struct Outcome {
  int err = 0;
  bool has_connect = false, has_bind = false;
  net::connect_info ci;
  net::bind_info bi;
  net::sock_id sk = net::kNone;
};
}  // namespace

struct Runner::Impl final : net::timer_sink {
  Runner& r;
  std::unordered_map<std::string, net::sock_id> plain;       // single names
  std::vector<std::vector<net::sock_id>> inst;               // per call: sockets of "{i}" names
  std::vector<NameRef> name_of_sock;                         // by sock id
  std::vector<uint64_t> ok_count;                            // per call, for expect_total
  std::vector<std::map<int, uint64_t>> err_count;
  std::vector<std::vector<bool>> ports_seen;
  std::unique_ptr<trace::JsonlTrace> trace;

  explicit Impl(Runner& rr) : r(rr) {}

  void arm(Nanos when, net::timer_kind kind, net::sock_id sk, uint32_t gen) override {
    r.eng_.schedule({when, engine::Prio::Timer, kTimer, sk, (uint64_t(kind) << 32) | gen});
  }

  std::string name(net::sock_id id) const {
    if (id >= name_of_sock.size() || name_of_sock[id].call == kNoCall) return "";
    const NameRef& n = name_of_sock[id];
    const Call& c = r.sc_.timeline[n.call];
    return sock_name(n.as ? c.as : c.sock, n.k);
  }

  void set_name(net::sock_id id, uint32_t call, uint32_t k, bool as) {
    if (name_of_sock.size() <= id) name_of_sock.resize(id + 1);
    name_of_sock[id] = {call, k, as};
    const Call& c = r.sc_.timeline[call];
    const std::string& pat = as ? c.as : c.sock;
    if (pat.find("{i}") == std::string::npos) {
      plain[pat] = id;
    } else {
      auto& v = inst[call];
      if (v.size() <= k) v.resize(k + 1, net::kNone);
      v[k] = id;
    }
  }

  // The sock a name refers to now; kNone if never created (or closed).
  net::sock_id lookup(const std::string& n) const {
    if (auto it = plain.find(n); it != plain.end()) return it->second;
    for (uint32_t ci = 0; ci < r.sc_.timeline.size(); ++ci) {
      const Call& c = r.sc_.timeline[ci];
      for (const std::string* pat : {&c.sock, &c.as}) {
        const size_t at = pat->find("{i}");
        if (at == std::string::npos || inst[ci].empty()) continue;
        const std::string pre = pat->substr(0, at), suf = pat->substr(at + 3);
        if (n.size() <= pre.size() + suf.size() || n.compare(0, pre.size(), pre) ||
            n.compare(n.size() - suf.size(), suf.size(), suf))
          continue;
        const std::string mid = n.substr(pre.size(), n.size() - pre.size() - suf.size());
        if (mid.empty() || mid.size() > 9 || mid.find_first_not_of("0123456789") != std::string::npos) continue;
        const uint64_t k = std::stoull(mid);
        if (k < inst[ci].size() && inst[ci][k] != net::kNone) return inst[ci][k];
      }
    }
    return net::kNone;
  }
};

void build_world(const Scenario& sc, uint64_t seed, net::world& w) {
  uint16_t ns_id = 0;
  for (const auto& ms : sc.machines) {
    net::machine m(ms.name, ms.hz, seed);
    Random boot(seed, "boot:" + ms.name);
    const Nanos uptime = ms.uptime.value_or(Nanos(boot.u64() % (3600 * kNsPerSec)));  // up to 1 h
    m.jiffies0 = initial_jiffies(ms.hz) + nanos_to_jiffies(uptime, ms.hz);
    if (ms.net_secret) {
      m.net_secret = *ms.net_secret;
    } else {
      m.net_secret = {boot.u64(), boot.u64()};  // net_get_random_once()
    }
    m.table_perturb.assign(net::INET_TABLE_PERTURB_SIZE, 0);
    if (!ms.perturb_zero) {  // get_random_sleepable_once(table_perturb, …)
      Random tp(seed, "table_perturb:" + ms.name);
      for (auto& cell : m.table_perturb) cell = tp.u32();
    }
    const uint32_t mi = uint32_t(w.machines.size());
    w.machines.push_back(std::move(m));
    for (const auto& nss : ms.netns) {
      net::netns ns;
      ns.name = nss.name;
      ns.id = ns_id++;
      ns.machine = mi;
      ns.addrs = nss.addrs;
      ns.bhash.assign(65536, net::kNone);
      for (const auto& s : nss.sysctls) (void)net::sysctl_write(ns.sys, s.name, s.value);  // validated at load
      for (uint32_t p = 0; p < 65536; ++p) ns.connect_skip.assign(p, ns.sys.ip_local_reserved_ports.test(p));
      w.nets.push_back(std::move(ns));
    }
  }
}

Runner::Runner(const Scenario& sc, RunOptions opt) : sc_(sc), opt_(std::move(opt)) {
  impl_ = std::make_unique<Impl>(*this);
  build_world(sc_, opt_.seed.value_or(sc_.seed), w_);
  impl_->inst.resize(sc_.timeline.size());
  impl_->ok_count.assign(sc_.timeline.size(), 0);
  impl_->err_count.resize(sc_.timeline.size());
  impl_->ports_seen.resize(sc_.timeline.size());
  impl_->trace = std::make_unique<trace::JsonlTrace>(
      opt_.trace_path, [this](net::sock_id id) { return impl_->name(id); }, opt_.explain);
  if (impl_->trace->enabled() || opt_.explain) w_.obs = impl_->trace.get();
  w_.timers = impl_.get();
}

Runner::~Runner() = default;

namespace {

std::string endpoint_str(const net::sock& s) { return net::to_string(net::endpoint{s.rcv_saddr, s.num}); }

// setsockopt(): the options portsim models, with the kernel's own refusals.
int apply_opt(net::sock& s, const OptSetting& o) {
  switch (o.opt) {
    case SockOpt::SO_REUSEADDR: s.reuse = o.value ? net::SK_CAN_REUSE : net::SK_NO_REUSE; return 0;
    case SockOpt::SO_REUSEPORT: s.reuseport = o.value != 0; return 0;
    case SockOpt::IP_BIND_ADDRESS_NO_PORT: s.bind_address_no_port = o.value != 0; return 0;
    case SockOpt::IPV6_V6ONLY: s.ipv6only = o.value != 0; return 0;
    case SockOpt::IP_LOCAL_PORT_RANGE: {
      // net/ipv4/ip_sockglue.c: both ends set and lo > hi → EINVAL.
      const uint32_t lo = o.value & 0xffff, hi = o.value >> 16;
      if (lo && hi && lo > hi) return EINVAL;
      s.local_port_range = o.value;
      return 0;
    }
  }
  return EINVAL;
}

}  // namespace

void Runner::handle(const engine::Event& ev) {
  w_.now = ev.t;
  if (!rep_.runtime_error.empty()) return;
  if (ev.kind == kTimer) {
    const net::sock_id id = ev.a;
    const uint32_t gen = uint32_t(ev.b);
    if (id < w_.socks.size() && w_.sk(id).alive && w_.sk(id).timer_gen == gen &&
        w_.sk(id).state == net::tcp_state::TIME_WAIT) {
      if (impl_->trace->enabled())
        impl_->trace->record(ev.t, "timer", fmt::format("\"kind\":\"timewait\",\"sk\":{},\"sock\":{}", id,
                                                        trace::json_str(impl_->name(id))));
      net::inet_twsk_kill(w_, id);
    }
    return;
  }
  const uint32_t ci = ev.a;
  const uint64_t k = ev.b;
  const Call& c = sc_.timeline[ci];
  if (k + 1 < c.count) eng_.schedule({c.t + (k + 1) * c.every, engine::Prio::Call, kCall, ci, k + 1});

  const bool creates = c.op == Op::socket || c.op == Op::bind || c.op == Op::connect || c.op == Op::listen;
  // A repeated creating call makes a fresh socket per repetition (the loader checked the names
  // are new), so the name is only formatted when a trace, a message or a lookup needs it.
  const bool fresh_instance = creates && c.count > 1 && (impl_->inst[ci].size() <= k || impl_->inst[ci][k] == net::kNone);
  const std::string sname = fresh_instance && !impl_->trace->enabled() && !opt_.explain ? std::string() : sock_name(c.sock, k);
  Outcome out;
  net::sock_id sk = c.op == Op::sysctl || fresh_instance ? net::kNone : impl_->lookup(sname);
  if (c.op != Op::sysctl && sk == net::kNone) {
    if (!creates) {  // sname is always formatted here: fresh_instance implies creates
      rep_.runtime_error = fmt::format("{}: {}: socket '{}' does not exist at {} (not created yet, or closed)",
                                       sc_.file, c.path, sname, format_duration(ev.t));
      return;
    }
    sk = net::sys_socket(w_, uint16_t(c.netns), c.cred);
    impl_->set_name(sk, ci, uint32_t(k), false);
    for (const auto& o : c.opts)
      if (!out.err) out.err = apply_opt(w_.sk(sk), o);
  } else if (c.op == Op::socket) {
    rep_.runtime_error = fmt::format("{}: {}: socket '{}' exists already", sc_.file, c.path, sname);
    return;
  } else if (!c.opts.empty() && c.op != Op::setsockopt) {
    for (const auto& o : c.opts)
      if (!out.err) out.err = apply_opt(w_.sk(sk), o);
  }
  out.sk = sk;
  std::string extra;  // op-specific trace fields, formatted only when someone reads them
  const bool verbose = impl_->trace->enabled() || opt_.explain;
  if (!out.err) {
    switch (c.op) {
      case Op::socket: break;
      case Op::setsockopt: out.err = apply_opt(w_.sk(sk), c.opts.front()); break;
      case Op::bind:
        out.err = net::inet_bind(w_, sk, c.addr, &out.bi);
        out.has_bind = c.addr.port == 0 && !w_.sk(sk).bind_address_no_port;
        if (verbose) extra = fmt::format(",\"addr\":\"{}\"", net::to_string(c.addr));
        break;
      case Op::listen: out.err = net::inet_listen(w_, sk, c.backlog); break;
      case Op::connect: {
        const net::connect_result cr = net::inet_stream_connect(w_, sk, c.addr, sc_.externals);
        out.err = cr.err;
        out.ci = cr.info;
        out.has_connect = cr.info.autobind || cr.info.port_offset || cr.err != EISCONN;
        if (verbose) extra = fmt::format(",\"to\":\"{}\"", net::to_string(c.addr));
        break;
      }
      case Op::accept: {
        auto it = w_.accept_queue.find(sk);
        if (w_.sk(sk).state != net::tcp_state::LISTEN) out.err = EINVAL;
        else if (it == w_.accept_queue.end() || it->second.empty()) out.err = EAGAIN;
        else {
          const net::sock_id child = it->second.front();
          it->second.erase(it->second.begin());
          impl_->set_name(child, ci, uint32_t(k), true);
          extra = fmt::format(",\"as\":{},\"remote\":\"{}\"", trace::json_str(sock_name(c.as, k)),
                              net::to_string(net::endpoint{w_.sk(child).daddr, w_.sk(child).dport}));
        }
        break;
      }
      case Op::close: {
        out.err = net::tcp_close(w_, sk);
        const std::string& pat = c.sock;
        if (pat.find("{i}") == std::string::npos) impl_->plain.erase(pat);
        else if (impl_->inst[ci].size() > k) impl_->inst[ci][k] = net::kNone;
        if (impl_->plain.count(sname)) impl_->plain.erase(sname);
        // the creator's instance table may hold it too
        for (auto& v : impl_->inst)
          for (auto& s : v)
            if (s == sk && !w_.sk(sk).alive) s = net::kNone;
        break;
      }
      case Op::sysctl: {
        net::netns& ns = w_.nets[size_t(c.netns)];
        const std::string msg = net::sysctl_write(ns.sys, c.sysctl.name, c.sysctl.value);
        out.err = msg.empty() ? 0 : EINVAL;
        if (!out.err && c.sysctl.name == "net.ipv4.ip_local_reserved_ports")
          for (uint32_t p = 0; p < 65536; ++p) net::connect_skip_update(w_, ns, uint16_t(p));
        extra = fmt::format(",\"name\":{},\"value\":{}", trace::json_str(c.sysctl.name), trace::json_str(c.sysctl.value));
        break;
      }
    }
  }

  // Outcome bookkeeping and expectations.
  ++rep_.calls;
  if (out.err) ++rep_.errors[std::string(errno_name(out.err))];
  else ++rep_.calls_ok;
  const bool alive = sk != net::kNone && w_.sk(sk).alive;
  const uint16_t port = alive ? w_.sk(sk).num : 0;
  if (out.err) ++impl_->err_count[ci][out.err];
  else ++impl_->ok_count[ci];
  if (!out.err && c.expect_total && c.expect_total->distinct_ports && port) {
    auto& seen = impl_->ports_seen[ci];
    if (seen.empty()) seen.assign(65536, false);
    seen[port] = true;
  }
  if (c.expect) {
    const Expect& e = *c.expect;
    std::string why;
    const std::string got = out.err ? std::string(errno_name(out.err)) : fmt::format("OK (port {})", port);
    if (e.err && *e.err != out.err)
      why = fmt::format("expected {}, got {}", *e.err ? errno_name(*e.err) : "OK", got);
    else if ((e.port || e.port_in || e.parity) && (out.err || !port))
      why = fmt::format("expected a local port, got {}", out.err ? got : "no port");
    else if (e.port && *e.port != port)
      why = fmt::format("expected port {}, got {}", *e.port, port);
    else if (e.port_in && (port < e.port_in->first || port > e.port_in->second))
      why = fmt::format("expected a port in [{}, {}], got {}", e.port_in->first, e.port_in->second, port);
    else if (e.parity && (port & 1) != *e.parity)
      why = fmt::format("expected an {} port, got {}", *e.parity ? "odd" : "even", port);
    ++rep_.expectations;
    if (!why.empty()) {
      ++rep_.expectation_failures;
      if (rep_.failures.size() < kMaxFailuresShown)
        rep_.failures.push_back(fmt::format("{}: {} ({} {} at {}): {}", sc_.file, c.path, op_name(c.op),
                                            c.op == Op::sysctl ? c.sysctl.name : sock_name(c.sock, k), format_duration(ev.t), why));
    }
  }

  if (impl_->trace->enabled()) {
    std::string body = fmt::format("\"i\":{},", ci);
    if (c.count > 1) body += fmt::format("\"rep\":{},", k);
    const int ns_idx = c.op == Op::sysctl ? c.netns : int(w_.sk(sk).netns);
    body += fmt::format("\"host\":{},\"op\":\"{}\"", trace::json_str(w_.nets[size_t(ns_idx)].name), op_name(c.op));
    if (c.op != Op::sysctl) body += fmt::format(",\"sock\":{},\"sk\":{}", trace::json_str(sname), sk);
    body += extra;
    body += out.err ? fmt::format(",\"ret\":-1,\"errno\":\"{}\"", errno_name(out.err)) : std::string(",\"ret\":0");
    if (alive && c.op != Op::close) body += fmt::format(",\"local\":\"{}\"", endpoint_str(w_.sk(sk)));
    if (out.has_connect && out.ci.autobind) {
      const auto& i = out.ci;
      body += fmt::format(",\"port_offset\":\"{:#018x}\",\"timeseed\":{},\"perturb_index\":{},\"perturb\":{},"
                          "\"offset\":{},\"range\":[{},{}],\"remaining\":{},\"step\":{},\"pass\":{},\"i\":{},"
                          "\"examined\":{},\"perturb_inc\":{}",
                          i.port_offset, i.timeseed, i.index, i.perturb, i.offset, i.low, i.high - 1, i.remaining,
                          i.step, i.pass, i.i, i.examined, i.perturb_inc);
      if (i.tw_recycled) body += ",\"tw_recycled\":true";
    }
    if (out.has_bind && out.bi.examined) {
      const auto& b = out.bi;
      body += fmt::format(",\"offset\":{},\"half\":{},\"pass\":{},\"relax\":{},\"examined\":{}", b.offset, b.half,
                          b.pass, b.relax, b.examined);
      if (!out.err) body += fmt::format(",\"range\":[{},{}]", b.low, b.high - 1);
    }
    impl_->trace->record(ev.t, "call", body);
  }
  if (opt_.explain) {
    const bool has_addr = c.op == Op::bind || c.op == Op::connect;
    fmt::print(stderr, "{} {} {}{} = {}\n", format_duration(ev.t), op_name(c.op),
               c.op == Op::sysctl ? c.sysctl.name : sname,
               has_addr ? " " + net::to_string(c.addr) : c.op == Op::sysctl ? " " + c.sysctl.value : "",
               out.err ? fmt::format("-1 {}", errno_name(out.err)) : fmt::format("0 (local port {})", port));
    if (out.has_connect && out.ci.autobind) {
      const auto& i = out.ci;
      fmt::print(stderr, "  {:<28} port_offset = siphash(saddr, daddr, dport, timeseed {}) = {:#018x}\n",
                 "secure_ipv4_port_ephemeral", i.timeseed, i.port_offset);
      fmt::print(stderr, "  {:<28} range [{}, {}], remaining {}, step {}; index = {} (low 16 bits)\n",
                 "__inet_hash_connect", i.low, i.high - 1, i.remaining, i.step, i.index);
      fmt::print(stderr, "  {:<28} offset = (table_perturb[{}] {} + {}) % {} {}= {}\n", "__inet_hash_connect", i.index,
                 i.perturb, uint32_t(i.port_offset >> 32), i.remaining, i.step == 2 ? "made even " : "", i.offset);
      if (out.err)
        fmt::print(stderr, "  {:<28} {} candidates examined in both passes, none free: EADDRNOTAVAIL\n",
                   "__inet_hash_connect", i.examined);
      else
        fmt::print(stderr, "  {:<28} pass {} found port {} at i = {} ({} candidates in all); "
                           "table_perturb[{}] += {}\n",
                   "__inet_hash_connect", i.pass, port, i.i, i.examined, i.index, i.perturb_inc);
    }
    if (out.has_bind && out.bi.examined)
      fmt::print(stderr, "  {:<28} odd offset {} first{}; {} candidates examined{}\n", "inet_csk_find_open_port",
                 out.bi.offset, out.bi.half ? (out.bi.half == 1 ? ", lower half" : ", upper half") : "",
                 out.bi.examined, out.bi.relax ? " (ip_autobind_reuse relaxed pass)" : "");
  }
}

RunReport Runner::run() {
  for (uint32_t i = 0; i < sc_.timeline.size(); ++i)
    eng_.schedule({sc_.timeline[i].t, engine::Prio::Call, kCall, i, 0});
  eng_.run(*this);
  rep_.events = eng_.events_run();
  rep_.virtual_end = eng_.now();
  rep_.st = w_.st;
  // Totals over repeated calls.
  for (uint32_t ci = 0; ci < sc_.timeline.size(); ++ci) {
    const Call& c = sc_.timeline[ci];
    if (!c.expect_total) continue;
    const ExpectTotal& t = *c.expect_total;
    std::vector<std::string> why;
    if (t.ok && *t.ok != impl_->ok_count[ci]) why.push_back(fmt::format("ok {} (expected {})", impl_->ok_count[ci], *t.ok));
    for (const auto& [err, n] : t.errors) {
      auto it = impl_->err_count[ci].find(err);
      const uint64_t got = it == impl_->err_count[ci].end() ? 0 : it->second;
      if (got != n) why.push_back(fmt::format("{} {} (expected {})", errno_name(err), got, n));
    }
    if (t.distinct_ports) {
      uint64_t d = 0;
      for (bool b : impl_->ports_seen[ci]) d += b;
      if (d != *t.distinct_ports) why.push_back(fmt::format("distinct ports {} (expected {})", d, *t.distinct_ports));
    }
    ++rep_.expectations;
    if (!why.empty()) {
      ++rep_.expectation_failures;
      std::string msg = fmt::format("{}: {}.expect_total ({} {} x{}):", sc_.file, c.path, op_name(c.op), c.sock, c.count);
      for (const auto& w : why) msg += " " + w + ";";
      msg.pop_back();
      if (rep_.failures.size() < kMaxFailuresShown) rep_.failures.push_back(msg);
    }
  }
  if (!rep_.runtime_error.empty()) impl_->trace->abandon();
  else if (!impl_->trace->commit()) rep_.runtime_error = fmt::format("{}: cannot write the trace", opt_.trace_path);
  return rep_;
}

}  // namespace portsim::scenario
