// The replay loop: one engine event per call repetition (the next repetition is scheduled when
// the current one runs) and one per armed timer.
#include "portsim/scenario/runner.h"

#include <fmt/format.h>

#include <cerrno>
#include <unordered_map>
#include <unordered_set>
#include <cmath>

#include "portsim/base/errno_name.h"
#include "portsim/net/af_inet.h"
#include "portsim/net/inet_connection_sock.h"
#include "portsim/net/secure_seq.h"

namespace portsim::scenario {

namespace {
enum EventKind : uint8_t { kCall = 0, kTimer = 1, kPacket = 2, kArrival = 3, kWlClose = 4, kPoolOpen = 5, kPoolClose = 6, kSample = 7 };
constexpr uint32_t kNoCall = UINT32_MAX;
constexpr size_t kMaxFailuresShown = 20;

// Which name a sock answers to: the call that named it and the repetition.
struct NameRef {
  uint32_t call = kNoCall;
  uint32_t k = 0;
  bool as = false;  // named by an accept's "as"
};


}  // namespace

struct Runner::Outcome {
  int err = 0;
  bool has_connect = false, has_bind = false;
  net::connect_info ci;
  net::bind_info bi;
  net::sock_id sk = net::kNone;
  net::sock_id accepted = net::kNone;
};


struct Pending {
  uint32_t call;
  uint64_t k;
  Nanos t_start;
};

struct Runner::Impl final : net::timer_sink, net::wire, net::app_events {
  Runner& r;
  std::vector<net::segment> pkts;  // segments in flight (event payloads)
  std::vector<uint32_t> free_pkts;
  std::map<std::pair<int, int>, std::pair<PathSpec, Random>> links;  // (a <= b) → path
  std::vector<Random> ext_random;
  std::unordered_map<net::sock_id, Pending> pending;  // blocking connects awaiting the handshake
  std::unordered_map<net::sock_id, net::connect_info> pending_info;  // their autobind details

  // Workload generators (WorkloadSpec): per workload its RNG and counters; per generated
  // connection a slot that its hold-then-close event names.
  struct WlState {
    Random rnd;
    uint64_t next_dest = 0;
    std::vector<net::sock_id> pool;
    uint64_t requests = 0, requests_failed = 0;
  };
  std::vector<WlState> wl;
  struct WlConn { net::sock_id sk; uint32_t w; };
  std::vector<WlConn> wl_conns;
  std::vector<uint32_t> free_wl_conns;
  std::unordered_map<net::sock_id, uint32_t> wl_pending;  // generated connects awaiting the handshake
  std::unordered_map<net::sock_id, uint32_t> wl_of_sock;   // generated sock -> workload
  std::unordered_set<net::sock_id> auto_children;         // server children the generator accepted
  net::sock_id in_connect = net::kNone;                    // the socket whose connect() is running

  net::connect_result connect(net::sock_id sk, const net::endpoint& to) {
    in_connect = sk;
    auto r = net::inet_stream_connect(r_world(), sk, to);
    in_connect = net::kNone;
    return r;
  }
  net::world& r_world();

  void peer_closed(net::sock_id sk) override;

  // The name no longer refers to a socket (closed).
  void forget(uint32_t ci, uint64_t k, const std::string& n, net::sock_id sk) {
    pending.erase(sk);
    pending_info.erase(sk);
    if (auto it = plain.find(n); it != plain.end() && it->second == sk) plain.erase(it);
    (void)ci; (void)k;
    if (sk < name_of_sock.size()) {
      const NameRef& ref = name_of_sock[sk];
      if (ref.call != kNoCall && !ref.as && ref.k < inst[ref.call].size() && inst[ref.call][ref.k] == sk)
        inst[ref.call][ref.k] = net::kNone;
      if (ref.call != kNoCall && ref.as) {
        auto& v = inst[ref.call];
        if (ref.k < v.size() && v[ref.k] == sk) v[ref.k] = net::kNone;
      }
    }
  }
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

  // The path a segment takes: its link (or loopback) and the random stream that draws
  // its jitter and loss. Unlinked hosts and loopback are zero-delay and lossless.
  std::pair<const PathSpec*, Random*> path_of(const net::segment& seg, int to_ns, int ext) {
    if (ext >= 0) return {&r.sc_.externals[size_t(ext)].path, &ext_random[size_t(ext)]};
    const int a = std::min<int>(seg.from_ns, to_ns), b = std::max<int>(seg.from_ns, to_ns);
    auto it = links.find({a, b});
    if (it == links.end()) return {nullptr, nullptr};
    return {&it->second.first, &it->second.second};
  }

  void deliver(const net::segment& seg) {
    if (seg.to_ns == net::kExternalNs) net::external_rcv(r.w_, seg);
    else net::tcp_v4_rcv(r.w_, seg.to_ns, seg);
  }

  void xmit(const net::segment& in) override {
    net::segment seg = in;
    int ext = -1;
    if (seg.from_ns == net::kExternalNs) {  // an external host answers over its own path
      ext = r.w_.find_external(seg.saddr, seg.sport);
    } else if (const net::netns* dst = net::route_to(r.w_, r.w_.nets[seg.from_ns], seg.daddr)) {
      seg.to_ns = dst->id;
    } else {
      seg.to_ns = net::kExternalNs;
      ext = r.w_.find_external(seg.daddr, seg.dport);
    }
    const int to_ns = seg.to_ns == net::kExternalNs ? -1 : int(seg.to_ns);
    auto [path, rnd] = path_of(seg, to_ns, ext);
    Nanos delay = 0;
    bool lost = false;
    if (path) {
      delay = path->delay + (path->jitter ? Nanos(rnd->unit() * double(path->jitter)) : 0);
      lost = path->loss > 0 && rnd->unit() < path->loss;
    }
    const bool nowhere = seg.to_ns == net::kExternalNs && ext < 0 && seg.from_ns != net::kExternalNs;
    if (trace->tables()) {
      auto host = [&](uint16_t ns) { return ns == net::kExternalNs ? std::string("\"(external)\"") : trace::json_str(r.w_.nets[ns].name); };
      trace->record(r.w_.now, "pkt", fmt::format("\"from\":{},\"to\":{},\"src\":\"{}\",\"dst\":\"{}\",\"flags\":\"{}\",\"seq\":{},\"ack\":{},\"arrive\":{}{}",
          host(seg.from_ns), host(seg.to_ns), net::to_string(net::endpoint{seg.saddr, seg.sport}),
          net::to_string(net::endpoint{seg.daddr, seg.dport}), net::tcp_flags_str(seg.flags), seg.seq, seg.ack,
          r.w_.now + delay, lost ? ",\"lost\":true" : nowhere ? ",\"lost\":\"no route\"" : ""));
    }
    if (r.opt_.explain)
      fmt::print(stderr, "  {:<28} {} > {} {}{}\n", seg.from_ns == net::kExternalNs ? "(external host)" : "tcp_transmit_skb",
                 net::to_string(net::endpoint{seg.saddr, seg.sport}), net::to_string(net::endpoint{seg.daddr, seg.dport}),
                 net::tcp_flags_str(seg.flags),
                 lost ? " — lost on the link" : nowhere ? " — no route: dropped" : delay ? fmt::format(", arrives after {}", format_duration(delay)) : "");
    if (lost || nowhere) return;
    if (delay == 0) {  // zero-delay path: delivered within the sending call, same instant
      deliver(seg);
      return;
    }
    uint32_t slot;
    if (!free_pkts.empty()) { slot = free_pkts.back(); free_pkts.pop_back(); pkts[slot] = seg; }
    else { slot = uint32_t(pkts.size()); pkts.push_back(seg); }
    r.eng_.schedule({r.w_.now + delay, engine::Prio::Wire, kPacket, slot, 0});
  }

  void connect_done(net::sock_id sk, int err) override;

  std::string name(net::sock_id id) const {
    if (id >= name_of_sock.size() || name_of_sock[id].call == kNoCall) {
      auto it = generated_names.find(id);
      return it == generated_names.end() ? "" : it->second;
    }
    const NameRef& n = name_of_sock[id];
    const Call& c = r.sc_.timeline[n.call];
    return sock_name(n.as ? c.as : c.sock, n.k);
  }

  void set_name(net::sock_id id, uint32_t call, uint32_t k, bool as) {
    generated_names.erase(id);
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

  std::unordered_map<net::sock_id, std::string> generated_names;  // only when tracing
  void set_generated_name(net::sock_id id, const std::string& wname, uint64_t k) {
    if (name_of_sock.size() > id) name_of_sock[id] = {};
    generated_names[id] = fmt::format("{}#{}", wname, k);
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
  const uint64_t seed = opt_.seed.value_or(sc_.seed);
  build_world(sc_, seed, w_);
  for (const auto& x : sc_.externals) w_.add_external(x.ep);
  for (size_t i = 0; i < sc_.externals.size(); ++i)
    impl_->ext_random.emplace_back(seed, "external:" + std::to_string(i));
  for (const auto& l : sc_.links) {
    const int a = std::min(l.a, l.b), b = std::max(l.a, l.b);
    impl_->links.insert_or_assign({a, b}, std::make_pair(l.path, Random(seed, fmt::format("link:{}-{}", w_.nets[size_t(a)].name, w_.nets[size_t(b)].name))));
  }
  // Room for every socket the timeline can create, so the hot loop never reallocates.
  uint64_t max_socks = 0;
  for (const auto& c : sc_.timeline)
    if (c.op == Op::socket || c.op == Op::bind || c.op == Op::connect || c.op == Op::listen || c.op == Op::accept)
      max_socks += c.count;
  max_socks = std::min<uint64_t>(max_socks, 4u << 20);  // beyond that, tables grow as needed
  w_.socks.reserve(max_socks);
  w_.ehash.reserve(max_socks);
  for (const auto& ws : sc_.workloads) impl_->wl.push_back({Random(seed, "workload:" + ws.name), 0, {}, 0, 0});
  impl_->inst.resize(sc_.timeline.size());
  impl_->ok_count.assign(sc_.timeline.size(), 0);
  impl_->err_count.resize(sc_.timeline.size());
  impl_->ports_seen.resize(sc_.timeline.size());
  impl_->trace = std::make_unique<trace::JsonlTrace>(
      opt_.trace_path, [this](net::sock_id id) { return impl_->name(id); }, opt_.explain);
  impl_->trace->set_calls_only(opt_.trace_calls_only);
  impl_->trace->set_on_alloc([this](net::sock_id id) {  // a reused id starts without a name
    if (id < impl_->name_of_sock.size()) impl_->name_of_sock[id] = {};
    impl_->generated_names.erase(id);
  });
  if (impl_->trace->enabled() || opt_.explain) w_.obs = impl_->trace.get();
  w_.timers = impl_.get();
  w_.net_wire = impl_.get();
  w_.app = impl_.get();
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
    case SockOpt::SO_LINGER: s.linger0 = o.value != 0; return 0;
    case SockOpt::TCP_SYNCNT: s.syn_retries = uint8_t(o.value); return 0;
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

net::world& Runner::Impl::r_world() { return r.w_; }

void Runner::Impl::connect_done(net::sock_id sk, int err) {
  if (sk == in_connect) return;  // finished inside its own connect() call: the caller records it
  if (auto wit = wl_pending.find(sk); wit != wl_pending.end()) {
    const uint32_t wi = wit->second;
    wl_pending.erase(wit);
    r.record_connect(err, {}, sk, {r.w_.sk(sk).daddr, r.w_.sk(sk).dport}, r.sc_.workloads[wi].name, 0);
    if (err) {
      wl_of_sock.erase(sk);
      net::tcp_close(r.w_, sk);
    } else {
      r.workload_established(wi, sk);
    }
    return;
  }
  auto it = pending.find(sk);
  if (it == pending.end()) {  // a non-blocking connect: its outcome is a record of its own
    if (trace->enabled())
      trace->record(r.w_.now, "connect_done", fmt::format("\"sk\":{},\"sock\":{},\"ret\":{}{}", sk, trace::json_str(name(sk)),
                                                          err ? -1 : 0, err ? fmt::format(",\"errno\":\"{}\"", errno_name(err)) : ""));
    return;
  }
  const Pending p = it->second;
  pending.erase(it);
  Outcome out;
  out.err = err;
  out.sk = sk;
  out.has_connect = false;
  r.finish_call(p.call, p.k, out, p.t_start);
}

void Runner::handle(const engine::Event& ev) {
  w_.now = ev.t;
  if (!rep_.runtime_error.empty()) return;
  switch (ev.kind) {
    case kTimer: on_timer(ev); return;
    case kPacket: {
      last_effective_ = ev.t;
      const net::segment seg = impl_->pkts[ev.a];
      impl_->free_pkts.push_back(ev.a);
      impl_->deliver(seg);
      return;
    }
    case kSample: take_sample(); return;
    default: break;
  }
  last_effective_ = ev.t;
  switch (ev.kind) {
    case kArrival: workload_arrival(ev.a, ev.b); return;
    case kWlClose: workload_close(ev.a); return;
    case kPoolOpen: pool_open(ev.a); return;
    case kPoolClose: pool_close(ev.a); return;
    default: run_call(ev.a, ev.b); return;
  }
}

// --- workload generators -------------------------------------------------------------------

Nanos Runner::next_gap(uint32_t wi) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  const double mean_ns = 1e9 / ws.rate;
  if (!ws.poisson) return Nanos(std::llround(mean_ns));
  const double u = impl_->wl[wi].rnd.unit();
  return Nanos(std::llround(-std::log1p(-u) * mean_ns));
}

const net::endpoint& Runner::next_dest(uint32_t wi) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  auto& st = impl_->wl[wi];
  if (ws.pick_random) return ws.to[st.rnd.u32_below(uint32_t(ws.to.size()))];
  return ws.to[st.next_dest++ % ws.to.size()];
}

// One generated connect (socket, options, optional bind, connect). Returns the sock or kNone.
net::sock_id Runner::workload_connect(uint32_t wi, uint64_t k) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  const net::sock_id sk = net::sys_socket(w_, uint16_t(ws.netns), {});
  impl_->wl_of_sock[sk] = wi;
  if (impl_->trace->enabled() || opt_.explain) impl_->set_generated_name(sk, ws.name, k);
  int err = 0;
  for (const auto& o : ws.opts)
    if (!err) err = apply_opt(w_.sk(sk), o);
  if (!err && ws.bind) err = net::inet_bind(w_, sk, *ws.bind);
  net::connect_info info;
  const net::endpoint& to = next_dest(wi);
  if (!err) {
    const auto cr = impl_->connect(sk, to);
    err = cr.err;
    info = cr.info;
  }
  record_connect(err, info, sk, to, ws.name, k);
  if (err == EINPROGRESS) {
    impl_->wl_pending[sk] = wi;
    return sk;
  }
  if (err) {
    impl_->wl_of_sock.erase(sk);
    net::tcp_close(w_, sk);
    return net::kNone;
  }
  workload_established(wi, sk);
  return sk;
}

// The generated connection is up: the server side accepts it (in-model servers), and unless
// it belongs to a pool, its close is scheduled after the hold time.
void Runner::workload_established(uint32_t wi, net::sock_id sk) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  const net::sock& s = w_.sk(sk);
  if (const net::netns* dst = net::route_to(w_, w_.nets[s.netns], s.daddr)) {
    const net::sock_id child = net::inet_ehash_lookup(w_, dst->id, s.daddr, s.dport, s.rcv_saddr, s.num);
    if (child != net::kNone) {  // accept() it at once
      if (const net::sock_id l = w_.sk(child).listener; l != net::kNone && w_.listening.count(l))
        std::erase(w_.listening[l].accept_queue, child);
      impl_->auto_children.insert(child);
    }
  }
  if (ws.pool) return;
  Nanos hold = ws.hold;
  if (ws.hold_exp) hold = Nanos(std::llround(-std::log1p(-impl_->wl[wi].rnd.unit()) * double(ws.hold)));
  uint32_t slot;
  if (!impl_->free_wl_conns.empty()) {
    slot = impl_->free_wl_conns.back();
    impl_->free_wl_conns.pop_back();
    impl_->wl_conns[slot] = {sk, wi};
  } else {
    slot = uint32_t(impl_->wl_conns.size());
    impl_->wl_conns.push_back({sk, wi});
  }
  eng_.schedule({w_.now + hold, engine::Prio::Call, kWlClose, slot, 0});
}

void Runner::workload_arrival(uint32_t wi, uint64_t k) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  const Nanos next = w_.now + next_gap(wi);
  if (next < ws.stop) eng_.schedule({next, engine::Prio::Call, kArrival, wi, k + 1});
  if (ws.pool) {  // a request over the pool: served when a pooled connection is up
    auto& st = impl_->wl[wi];
    ++st.requests;
    bool up = false;
    for (net::sock_id p : st.pool) up = up || (p != net::kNone && w_.sk(p).alive && w_.sk(p).state == net::tcp_state::ESTABLISHED);
    if (!up) ++st.requests_failed;
    return;
  }
  workload_connect(wi, k);
}

// The hold is over: the chosen side closes.
void Runner::workload_close(uint32_t slot) {
  const auto [sk, wi] = impl_->wl_conns[slot];
  impl_->free_wl_conns.push_back(slot);
  if (!w_.sk(sk).alive) return;
  const WorkloadSpec& ws = sc_.workloads[wi];
  switch (ws.close) {
    case WorkloadSpec::Closer::client:
      impl_->wl_of_sock.erase(sk);
      net::tcp_close(w_, sk);
      return;
    case WorkloadSpec::Closer::rst:
      impl_->wl_of_sock.erase(sk);
      w_.sk(sk).linger0 = true;
      net::tcp_close(w_, sk);
      return;
    case WorkloadSpec::Closer::server: {
      const net::sock& s = w_.sk(sk);
      const net::netns* dst = net::route_to(w_, w_.nets[s.netns], s.daddr);
      const net::sock_id child = dst ? net::inet_ehash_lookup(w_, dst->id, s.daddr, s.dport, s.rcv_saddr, s.num) : net::kNone;
      if (child != net::kNone) {
        impl_->auto_children.erase(child);
        net::tcp_close(w_, child);
      } else if (!dst) {
        net::external_close(w_, sk);
      }
      return;  // the client closes when it sees the FIN (peer_closed)
    }
  }
}

void Runner::pool_open(uint32_t wi) {
  auto& st = impl_->wl[wi];
  for (uint32_t i = 0; i < sc_.workloads[wi].pool; ++i) st.pool.push_back(workload_connect(wi, i));
}

void Runner::pool_close(uint32_t wi) {
  for (net::sock_id p : impl_->wl[wi].pool)
    if (p != net::kNone && w_.sk(p).alive) {
      impl_->wl_of_sock.erase(p);
      net::tcp_close(w_, p);
    }
  impl_->wl[wi].pool.clear();
}

void Runner::take_sample() {
  const uint64_t bound = w_.tbs.size() - w_.free_tbs.size();
  rep_.samples.push_back({w_.now, w_.st.established, w_.st.time_wait, bound});
  if (!eng_.empty()) eng_.schedule({w_.now + opt_.sample_every, engine::Prio::Timer, kSample, 0, 0});
}

void Runner::count_connect(int err) {
  ++rep_.connects;
  if (!err) {
    ++rep_.connects_ok;
    return;
  }
  ++rep_.connect_errors[std::string(errno_name(err))];
  if (err == EADDRNOTAVAIL && !rep_.first_eaddrnotavail) rep_.first_eaddrnotavail = w_.now;
}

// Bookkeeping shared by generated connects: counts, the first EADDRNOTAVAIL, candidates.
void Runner::record_connect(int err, const net::connect_info& info, net::sock_id sk, const net::endpoint& to,
                            const std::string& wname, uint64_t k) {
  if (info.autobind) rep_.examined.push_back(uint32_t(std::min<uint64_t>(info.examined, UINT32_MAX)));
  if (err == EINPROGRESS) return;
  count_connect(err);
  if (!impl_->trace->enabled() || (opt_.trace_sample > 1 && k % opt_.trace_sample)) return;
  std::string body = fmt::format("\"workload\":{},\"rep\":{},\"host\":{},\"op\":\"connect\",\"sock\":{},\"sk\":{},\"to\":\"{}\"",
                                 trace::json_str(wname), k, trace::json_str(w_.ns_of(sk).name),
                                 trace::json_str(fmt::format("{}#{}", wname, k)), sk, net::to_string(to));
  body += err ? fmt::format(",\"ret\":-1,\"errno\":\"{}\"", errno_name(err)) : std::string(",\"ret\":0");
  if (w_.sk(sk).alive) body += fmt::format(",\"local\":\"{}\"", endpoint_str(w_.sk(sk)));
  if (info.autobind)
    body += fmt::format(",\"port_offset\":\"{:#018x}\",\"perturb_index\":{},\"offset\":{},\"pass\":{},\"i\":{},\"examined\":{}",
                        info.port_offset, info.index, info.offset, info.pass, info.i, info.examined);
  impl_->trace->record(w_.now, "call", body);
}

void Runner::on_timer(const engine::Event& ev) {
  const net::sock_id id = ev.a;
  const uint32_t gen = uint32_t(ev.b);
  const auto kind = net::timer_kind(ev.b >> 32);
  if (id >= w_.socks.size() || !w_.sk(id).alive || w_.sk(id).timer_gen != gen) return;  // cancelled
  last_effective_ = ev.t;
  if (impl_->trace->tables())
    impl_->trace->record(ev.t, "timer", fmt::format("\"kind\":\"{}\",\"sk\":{},\"sock\":{}",
                                                    kind == net::timer_kind::timewait ? "timewait" : "retransmit", id,
                                                    trace::json_str(impl_->name(id))));
  if (opt_.explain)
    fmt::print(stderr, "{} {:<29} {}\n", format_duration(ev.t),
               kind == net::timer_kind::timewait ? "tw_timer_handler" : "tcp_retransmit_timer",
               impl_->name(id).empty() ? fmt::format("sk{}", id) : impl_->name(id));
  switch (kind) {
    case net::timer_kind::timewait:
      if (w_.sk(id).state == net::tcp_state::TIME_WAIT) net::inet_twsk_kill(w_, id);
      return;
    case net::timer_kind::retransmit: net::tcp_retransmit_timer(w_, id); return;
  }
}

void Runner::run_call(uint32_t ci, uint64_t k) {
  const Nanos now = w_.now;
  const Call& c = sc_.timeline[ci];
  if (k + 1 < c.count) eng_.schedule({c.t + (k + 1) * c.every, engine::Prio::Call, kCall, ci, k + 1});

  const bool creates = c.op == Op::socket || c.op == Op::bind || c.op == Op::connect || c.op == Op::listen;
  // A repeated creating call makes a fresh socket per repetition (the loader checked the names
  // are new), so the name is only formatted when a trace, a message or a lookup needs it.
  const bool fresh_instance = c.creates && c.count > 1 && (impl_->inst[ci].size() <= k || impl_->inst[ci][k] == net::kNone);
  const bool verbose = impl_->trace->enabled() || opt_.explain;
  const std::string sname = fresh_instance && !verbose ? std::string() : sock_name(c.sock, k);
  Outcome out;
  if (opt_.explain)
    fmt::print(stderr, "{} {} {}{}\n", format_duration(now), op_name(c.op), c.op == Op::sysctl ? c.sysctl.name : sname,
               c.op == Op::bind || c.op == Op::connect ? " " + net::to_string(c.addr)
               : c.op == Op::sysctl ? " " + c.sysctl.value : "");
  net::sock_id sk = c.op == Op::sysctl || fresh_instance ? net::kNone : impl_->lookup(sname);
  if (c.op != Op::sysctl && sk == net::kNone) {
    if (!creates) {  // sname is always formatted here: fresh_instance implies creates
      rep_.runtime_error = fmt::format("{}: {}: socket '{}' does not exist at {} (not created yet, or closed)",
                                       sc_.file, c.path, sname, format_duration(now));
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
  if (!out.err) {
    switch (c.op) {
      case Op::socket: break;
      case Op::setsockopt: out.err = apply_opt(w_.sk(sk), c.opts.front()); break;
      case Op::bind:
        out.err = net::inet_bind(w_, sk, c.addr, &out.bi);
        out.has_bind = c.addr.port == 0 && !w_.sk(sk).bind_address_no_port;
        break;
      case Op::listen:
        out.has_bind = w_.sk(sk).num == 0;  // listen() autobinds an unbound socket: bind(0)'s search
        out.err = net::inet_listen(w_, sk, c.backlog, &out.bi);
        break;
      case Op::connect: {
        const net::connect_result cr = impl_->connect(sk, c.addr);
        out.err = cr.err;
        out.ci = cr.info;
        out.has_connect = true;
        if (cr.err == EINPROGRESS && !c.nonblock) {  // blocking: the outcome is recorded when it comes
          impl_->pending[sk] = {ci, k, now};
          impl_->pending_info[sk] = cr.info;
          return;
        }
        break;
      }
      case Op::accept: {
        net::sock_id child = net::kNone;
        out.err = net::inet_csk_accept(w_, sk, child);
        if (!out.err) {
          impl_->set_name(child, ci, uint32_t(k), true);
          out.accepted = child;
        }
        break;
      }
      case Op::shutdown: out.err = net::tcp_shutdown(w_, sk); break;
      case Op::close: {
        out.err = net::tcp_close(w_, sk);
        impl_->forget(ci, k, sname.empty() ? sock_name(c.sock, k) : sname, sk);
        break;
      }
      case Op::sysctl: {
        net::netns& ns = w_.nets[size_t(c.netns)];
        const std::string msg = net::sysctl_write(ns.sys, c.sysctl.name, c.sysctl.value);
        out.err = msg.empty() ? 0 : EINVAL;
        if (!out.err && c.sysctl.name == "net.ipv4.ip_local_reserved_ports")
          for (uint32_t p = 0; p < 65536; ++p) net::connect_skip_update(w_, ns, uint16_t(p));
        break;
      }
    }
  }
  finish_call(ci, k, out, now);
}

// Outcome bookkeeping, expectations, trace and explanation of one call (at its completion).
void Runner::finish_call(uint32_t ci, uint64_t k, const Outcome& out, Nanos t_start) {
  const Call& c = sc_.timeline[ci];
  const net::sock_id sk = out.sk;
  Outcome o = out;
  if (!o.has_connect) {
    if (auto it = impl_->pending_info.find(sk); it != impl_->pending_info.end()) {
      o.ci = it->second;
      o.has_connect = true;
      impl_->pending_info.erase(it);
    }
  }
  ++rep_.calls;
  if (c.op == Op::connect && o.has_connect && o.ci.autobind)
    rep_.examined.push_back(uint32_t(std::min<uint64_t>(o.ci.examined, UINT32_MAX)));
  if (c.op == Op::connect && o.err != EINPROGRESS) count_connect(o.err);
  if (o.err) ++rep_.errors[std::string(errno_name(o.err))];
  else ++rep_.calls_ok;
  const bool alive = sk != net::kNone && w_.sk(sk).alive;
  const uint16_t port = alive ? w_.sk(sk).num : 0;
  if (o.err) ++impl_->err_count[ci][o.err];
  else ++impl_->ok_count[ci];
  if (!o.err && c.expect_total && c.expect_total->distinct_ports && port) {
    auto& seen = impl_->ports_seen[ci];
    if (seen.empty()) seen.assign(65536, false);
    seen[port] = true;
  }
  if (c.expect) check_expect(ci, k, o, port);
  const bool verbose = impl_->trace->enabled() || opt_.explain;
  if (!verbose) return;
  const std::string sname = sock_name(c.sock, k);
  std::string extra;
  if (c.op == Op::bind || c.op == Op::connect)
    extra = fmt::format(",\"{}\":\"{}\"", c.op == Op::bind ? "addr" : "to", net::to_string(c.addr));
  if (c.op == Op::accept && o.accepted != net::kNone)
    extra = fmt::format(",\"as\":{},\"remote\":\"{}\"", trace::json_str(sock_name(c.as, k)),
                        net::to_string(net::endpoint{w_.sk(o.accepted).daddr, w_.sk(o.accepted).dport}));
  if (c.op == Op::sysctl)
    extra = fmt::format(",\"name\":{},\"value\":{}", trace::json_str(c.sysctl.name), trace::json_str(c.sysctl.value));
  if (impl_->trace->enabled()) {
    std::string body = fmt::format("\"call\":{},", ci);
    if (c.count > 1) body += fmt::format("\"rep\":{},", k);
    if (t_start != w_.now) body += fmt::format("\"t_start\":{},", t_start);
    const int ns_idx = c.op == Op::sysctl ? c.netns : (alive ? int(w_.sk(sk).netns) : c.netns);
    body += fmt::format("\"host\":{},\"op\":\"{}\"", trace::json_str(w_.nets[size_t(std::max(ns_idx, 0))].name), op_name(c.op));
    if (c.op != Op::sysctl) body += fmt::format(",\"sock\":{},\"sk\":{}", trace::json_str(sname), sk);
    body += extra;
    body += o.err ? fmt::format(",\"ret\":-1,\"errno\":\"{}\"", errno_name(o.err)) : std::string(",\"ret\":0");
    if (alive && c.op != Op::close) body += fmt::format(",\"local\":\"{}\"", endpoint_str(w_.sk(sk)));
    if (o.has_connect && o.ci.autobind) {
      const auto& i = o.ci;
      body += fmt::format(",\"port_offset\":\"{:#018x}\",\"timeseed\":{},\"perturb_index\":{},\"perturb\":{},"
                          "\"offset\":{},\"range\":[{},{}],\"remaining\":{},\"step\":{},\"pass\":{},\"i\":{},"
                          "\"examined\":{},\"perturb_inc\":{}",
                          i.port_offset, i.timeseed, i.index, i.perturb, i.offset, i.low, i.high - 1, i.remaining,
                          i.step, i.pass, i.i, i.examined, i.perturb_inc);
      if (i.tw_recycled) body += ",\"tw_recycled\":true";
    }
    if (o.has_bind && o.bi.examined) {
      const auto& b = o.bi;
      body += fmt::format(",\"offset\":{},\"half\":{},\"pass\":{},\"relax\":{},\"examined\":{}", b.offset, b.half,
                          b.pass, b.relax, b.examined);
      if (!o.err) body += fmt::format(",\"range\":[{},{}]", b.low, b.high - 1);
    }
    impl_->trace->record(w_.now, "call", body);
  }
  if (opt_.explain) explain_call(c, sname, o, port);
}

void Runner::check_expect(uint32_t ci, uint64_t k, const Outcome& o, uint16_t port) {
  const Call& c = sc_.timeline[ci];
  const Expect& e = *c.expect;
  std::string why;
  const std::string got = o.err ? std::string(errno_name(o.err)) : fmt::format("OK (port {})", port);
  if (e.err && *e.err != o.err)
    why = fmt::format("expected {}, got {}", *e.err ? errno_name(*e.err) : "OK", got);
  else if ((e.port || e.port_in || e.parity) && (o.err || !port))
    why = fmt::format("expected a local port, got {}", o.err ? got : "no port");
  else if (e.port && *e.port != port)
    why = fmt::format("expected port {}, got {}", *e.port, port);
  else if (e.port_in && (port < e.port_in->first || port > e.port_in->second))
    why = fmt::format("expected a port in [{}, {}], got {}", e.port_in->first, e.port_in->second, port);
  else if (e.parity && (port & 1) != *e.parity)
    why = fmt::format("expected an {} port, got {}", *e.parity ? "odd" : "even", port);
  else if (e.at && (w_.now < e.at->first || w_.now > e.at->second))
    why = e.at->first == e.at->second
              ? fmt::format("expected it to complete at {}, it completed at {}", format_duration(e.at->first), format_duration(w_.now))
              : fmt::format("expected it to complete in [{}, {}], it completed at {}", format_duration(e.at->first),
                            format_duration(e.at->second), format_duration(w_.now));
  ++rep_.expectations;
  if (why.empty()) return;
  ++rep_.expectation_failures;
  if (rep_.failures.size() < kMaxFailuresShown)
    rep_.failures.push_back(fmt::format("{}: {} ({} {} at {}): {}", sc_.file, c.path, op_name(c.op),
                                        c.op == Op::sysctl ? c.sysctl.name : sock_name(c.sock, k),
                                        format_duration(w_.now), why));
}

void Runner::explain_call(const Call& c, const std::string& sname, const Outcome& o, uint16_t port) {
  fmt::print(stderr, "{} {} {} = {}\n", format_duration(w_.now), op_name(c.op),
             c.op == Op::sysctl ? c.sysctl.name : sname,
             o.err ? fmt::format("-1 {}", errno_name(o.err)) : port ? fmt::format("0 (local port {})", port) : std::string("0"));
}

// EOF seen by an application: a generated client closes its socket (server-first close), and
// the generator's server side closes a child whose client closed first.
void Runner::Impl::peer_closed(net::sock_id sk) {
  if (auto it = wl_of_sock.find(sk); it != wl_of_sock.end()) {
    wl_of_sock.erase(it);
    net::tcp_close(r.w_, sk);
  } else if (auto c = auto_children.find(sk); c != auto_children.end()) {
    auto_children.erase(c);
    net::tcp_close(r.w_, sk);
  }
}

RunReport Runner::run() {
  if (!impl_->trace->ok()) {
    rep_.runtime_error = fmt::format("{}: cannot open the trace file for writing", opt_.trace_path);
    return rep_;
  }
  for (uint32_t wi = 0; wi < sc_.workloads.size(); ++wi) {
    const WorkloadSpec& ws = sc_.workloads[wi];
    if (ws.pool) {
      eng_.schedule({ws.start, engine::Prio::Call, kPoolOpen, wi, 0});
      eng_.schedule({ws.stop, engine::Prio::Call, kPoolClose, wi, 0});
      const Nanos first_request = ws.start + 1;  // just after the pool opens
      if (first_request < ws.stop) eng_.schedule({first_request, engine::Prio::Call, kArrival, wi, 0});
    } else {
      eng_.schedule({ws.start, engine::Prio::Call, kArrival, wi, 0});
    }
  }
  if (opt_.sample_every) eng_.schedule({0, engine::Prio::Timer, kSample, 0, 0});
  for (uint32_t i = 0; i < sc_.timeline.size(); ++i)
    eng_.schedule({sc_.timeline[i].t, engine::Prio::Call, kCall, i, 0});
  eng_.run(*this);
  rep_.events = eng_.events_run();
  for (const auto& st : impl_->wl) {
    rep_.requests += st.requests;
    rep_.requests_failed += st.requests_failed;
  }
  rep_.virtual_end = last_effective_;  // cancelled timers left in the queue do not count
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
