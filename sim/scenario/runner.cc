// The replay loop: one engine event per call repetition (the next repetition is scheduled when
// the current one runs), one per segment in flight (wire.cc), one per armed timer, and the
// workload generators' events (workload.cc).
#include "runner_impl.h"

#include "portsim/base/huge_pages.h"

#include "portsim/net/secure_seq.h"
#include "portsim/scenario/load.h"

#include <cstring>

namespace portsim::scenario {

namespace {
constexpr uint64_t kRealtimeBase = 1'700'000'000ull * kNsPerSec;
constexpr uint64_t kRealtimeSpan = 365ull * 86400 * kNsPerSec;
}  // namespace

void build_world(const Scenario& sc, uint64_t seed, net::world& w) {
  uint16_t ns_id = 0;
  for (const auto& ms : sc.machines) {
    net::machine m(ms.name, ms.hz, seed);
    m.kp = ms.kernel;
    Random boot(seed, "boot:" + ms.name);
    const Nanos uptime = ms.uptime.value_or(Nanos(boot.u64() % (3600 * kNsPerSec)));  // up to 1 h
    m.jiffies0 = ms.jiffies ? *ms.jiffies : initial_jiffies(ms.hz) + nanos_to_jiffies(uptime, ms.hz);
    if (ms.net_secret) {
      m.net_secret = *ms.net_secret;
    } else {
      m.net_secret = {boot.u64(), boot.u64()};  // net_get_random_once()
    }
    // CLOCK_REALTIME at t=0 (seq_scale's clock): a seeded instant in the year after
    // 2023-11-14 (1.7e9 s), from a stream of its own so that no other draw moves.
    Random clock(seed, "realtime:" + ms.name);
    m.realtime0 = kRealtimeBase + clock.u64() % kRealtimeSpan;
    m.table_perturb.assign(net::INET_TABLE_PERTURB_SIZE, 0);
    if (!ms.perturb_zero) {  // get_random_sleepable_once(table_perturb, …)
      Random tp(seed, "table_perturb:" + ms.name);
      for (auto& cell : m.table_perturb) cell = tp.u32();
    }
    for (const auto& [index, value] : ms.perturb_cells) m.table_perturb[index] = value;
    m.perturb_draws = ms.perturb_draws;
    m.connect_jiffies = ms.connect_jiffies;
    m.call_monotonic = ms.call_monotonic_ns;
    if (m.kp.hash == net::port_hash::md5) {  // ≤ 4.10: net_secret_init(), 16 random words
      Random md5(seed, "net_secret_md5:" + ms.name);
      for (auto& word : m.md5_secret) word = md5.u32();
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
      ns.sys = net::sysctl_defaults(ms.kernel);
      w.nets.push_back(std::move(ns));
    }
    // Every netns of the machine exists before its sysctls are written (a global one reaches all).
    const size_t first = w.nets.size() - ms.netns.size();
    for (size_t i = 0; i < ms.netns.size(); ++i)
      for (const auto& s : ms.netns[i].sysctls) (void)sysctl_set(w, uint16_t(first + i), s.name, s.value);  // validated at load
    for (size_t i = first; i < w.nets.size(); ++i)
      for (uint32_t p = 0; p < 65536; ++p) w.nets[i].connect_skip.assign(p, w.nets[i].sys.ip_local_reserved_ports.test(p));
  }
  std::vector<uint32_t> udp_entries;
  for (const auto& ms : sc.machines) udp_entries.push_back(ms.udp_hash_entries);
  net::udp_init(w, seed, udp_entries);
  Random ext(seed, "external-kernel");  // the kernel of the hosts outside the model
  w.external_secret = {ext.u64(), ext.u64()};
  w.external_realtime0 = kRealtimeBase + ext.u64() % kRealtimeSpan;
}

uint64_t estimate_trace_bytes(const Scenario& sc, bool calls_only, uint64_t trace_sample) {
  const double per_call = calls_only ? 300 : 3500;
  double calls = 0, generated = 0;
  for (const auto& c : sc.timeline) calls += double(c.count);
  for (const auto& ws : sc.workloads)
    generated += ws.pool ? ws.pool : ws.rate * double(ws.stop - ws.start) / double(kNsPerSec);
  const double bytes = (calls + generated / double(std::max<uint64_t>(trace_sample, 1))) * per_call;
  return bytes >= 1.8e19 ? UINT64_MAX : uint64_t(bytes);
}

// A sysctl write in netns `ns` under its machine's kernel. A sysctl that kernel keeps global
// (3.10: ip_local_port_range; < 3.16: ip_local_reserved_ports) is written for every netns of
// the machine — there is only one.
std::string sysctl_set(net::world& w, uint16_t ns, const std::string& name, const std::string& value) {
  const net::machine& m = w.machines[w.nets[ns].machine];
  const std::string err = net::sysctl_write(w.nets[ns].sys, m.kp, name, value, m.hz);
  if (!err.empty()) return err;
  const bool global = (name == "net.ipv4.ip_local_port_range" && !m.kp.netns_port_range) ||
                      (name == "net.ipv4.ip_local_reserved_ports" && !m.kp.netns_reserved_ports);
  if (global)
    for (auto& other : w.nets)
      if (other.machine == w.nets[ns].machine && other.id != ns) {
        (void)net::sysctl_write(other.sys, m.kp, name, value, m.hz);
        if (name == "net.ipv4.ip_local_reserved_ports" && other.bhash.size() == 65536)
          for (uint32_t p = 0; p < 65536; ++p) net::connect_skip_update(w, other, uint16_t(p));
      }
  return {};
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
  // Up to the default socket limit (10^7, README "Limits") and a little more: reserving costs
  // address space only for socks (untouched pages), 10.7 bytes per planned socket for ehash;
  // growing instead would copy both tables (peak RSS: old + new) at the worst moment.
  max_socks = std::min<uint64_t>(max_socks, 16u << 20);  // beyond that, tables grow as needed
  w_.socks.reserve(max_socks);
  w_.ehash.reserve(max_socks);
  advise_huge_pages(w_.socks.data(), max_socks * sizeof(net::sock));  // before the prefaulter maps them
  impl_->socks_prefault.start(w_.socks.data(), max_socks * sizeof(net::sock));
  for (const auto& ws : sc_.workloads) impl_->wl.push_back({Random(seed, "workload:" + ws.name), 0, {}, 0, 0});
  impl_->inst.resize(sc_.timeline.size());
  for (uint32_t ci = 0; ci < sc_.timeline.size(); ++ci) {
    const Call& c = sc_.timeline[ci];
    const std::string* pat = c.op == Op::accept ? &c.as : c.creates ? &c.sock : nullptr;
    if (pat && pat->find("{i}") != std::string::npos) impl_->patterns.add(*pat, ci);
  }
  impl_->ok_count.assign(sc_.timeline.size(), 0);
  impl_->err_count.resize(sc_.timeline.size());
  impl_->ports_seen.resize(sc_.timeline.size());
  impl_->trace = std::make_unique<trace::JsonlTrace>(opt_.trace_path,
                                                     [this](net::sock_id id) { return impl_->name(id); });
  if (opt_.explain) {
    impl_->explainer = std::make_unique<trace::Explainer>(opt_.explain_out, opt_.explain_filter);
    impl_->trace->set_explainer(impl_->explainer.get());
  }
  impl_->trace->set_calls_only(opt_.trace_calls_only);
  impl_->trace->set_on_alloc([this](net::sock_id id) {  // a reused id starts without a name
    if (id < impl_->name_of_sock.size()) impl_->name_of_sock[id] = {};
    impl_->generated_names.erase(id);
  });
  if (impl_->trace->enabled() || opt_.explain) impl_->tee.add(impl_->trace.get());
  if (!opt_.pcap_path.empty()) {
    impl_->pcap = std::make_unique<trace::PcapWriter>(opt_.pcap_path);
    impl_->tee.add(impl_->pcap.get());
  }
  if (!opt_.perfetto_path.empty()) {
    impl_->perfetto = std::make_unique<trace::PerfettoWriter>(opt_.perfetto_path, [this](net::sock_id id) { return impl_->name(id); });
    impl_->tee.add(impl_->perfetto.get());
  }
  impl_->tee.add(opt_.watch);
  if (!impl_->tee.empty()) w_.obs = impl_->tee.only() ? impl_->tee.only() : &impl_->tee;
  // Runner::Impl::quiet_instant(): an external endpoint on an instant path (no delay, jitter or
  // loss), with no observer at all (--explain always brings the trace's).
  for (size_t i = 0; i < w_.externals.size(); ++i) {
    const PathSpec& path = sc_.externals[i].path;
    w_.externals[i].unwatched = path.delay == 0 && path.jitter == 0 && path.loss == 0 && !w_.obs;
  }
  impl_->unnamed.assign(sc_.timeline.size(), false);
  if (!impl_->trace->enabled() && !opt_.explain && !w_.obs) impl_->unnamed = unreferenced_fresh_calls(sc_);
  impl_->plans.resize(sc_.timeline.size());
  for (uint32_t ci = 0; ci < sc_.timeline.size(); ++ci) {
    const Call& c = sc_.timeline[ci];
    Impl::CallPlan& p = impl_->plans[ci];
    p.creates = c.op == Op::socket || c.op == Op::bind || c.op == Op::connect || c.op == Op::listen || c.op == Op::send;
    p.fresh_rep = c.creates && c.count > 1;
    p.fresh_connect = p.fresh_rep && impl_->unnamed[ci] && c.op == Op::connect && !c.udp && !c.echo && c.opts.empty() &&
                      c.netns >= 0;
    p.connect = c.op == Op::connect;
    p.expect = c.expect.has_value();
    p.distinct_ports = c.expect_total && c.expect_total->distinct_ports;
    p.nonblock = c.nonblock;
    p.family = c.family;
    p.netns = uint16_t(std::max(c.netns, 0));
    p.cred = c.cred;
    p.count = c.count;
    p.t = c.t;
    p.every = c.every;
    p.addr = c.addr;
  }
  w_.timers = impl_.get();
  w_.net_wire = impl_.get();
  w_.app = impl_.get();
}

Runner::~Runner() = default;

// setsockopt(): the options portsim models, with the kernel's own refusals.
int apply_opt(const net::kernel_profile& k, net::world& w, net::sock_id id, const OptSetting& o) {
  net::sock& s = w.sk(id);
  // net/ipv4/ip_sockglue.c: an option this kernel does not know is ENOPROTOOPT.
  if ((o.opt == SockOpt::IP_BIND_ADDRESS_NO_PORT && !k.opt_bind_address_no_port) ||
      (o.opt == SockOpt::IP_LOCAL_PORT_RANGE && k.iplpr == net::iplpr_mode::absent))
    return ENOPROTOOPT;
  switch (o.opt) {
    case SockOpt::SO_REUSEADDR: s.reuse = o.value ? net::SK_CAN_REUSE : net::SK_NO_REUSE; return 0;
    case SockOpt::SO_REUSEPORT: s.reuseport = o.value != 0; return 0;
    case SockOpt::IP_BIND_ADDRESS_NO_PORT: s.bind_address_no_port = o.value != 0; return 0;
    case SockOpt::IPV6_V6ONLY:  // net/ipv6/ipv6_sockglue.c: do_ipv6_setsockopt()
      if (!s.v6) return ENOPROTOOPT;  // an AF_INET socket has no IPPROTO_IPV6 level
      if (s.num) return EINVAL;       // not once it has a port (inet_num)
      s.ipv6only = o.value != 0;
      return 0;
    case SockOpt::SO_LINGER: s.linger0 = o.value != 0; return 0;
    case SockOpt::TCP_SYNCNT:
      if (s.udp) return ENOPROTOOPT;  // udp_setsockopt → ip_setsockopt: level SOL_TCP is not SOL_IP
      s.syn_retries = uint8_t(o.value);
      return 0;
    case SockOpt::IP_LOCAL_PORT_RANGE: {
      // net/ipv4/ip_sockglue.c: both ends set and lo > hi → EINVAL.
      const uint32_t lo = o.value & 0xffff, hi = o.value >> 16;
      if (lo && hi && lo > hi) return EINVAL;
      w.set_local_port_range(id, o.value);
      return 0;
    }
  }
  return EINVAL;
}

net::world& Runner::Impl::r_world() { return r.w_; }

uint32_t ExaminedCounts::at_sorted(uint64_t i) const {
  for (size_t v = 0; v < counts.size(); ++v) {
    if (i < counts[v]) return uint32_t(v);
    i -= counts[v];
  }
  if (large.empty()) return counts.empty() ? 0 : uint32_t(counts.size() - 1);
  std::vector<uint32_t> l = large;
  const size_t at = std::min<size_t>(size_t(i), l.size() - 1);
  std::nth_element(l.begin(), l.begin() + ptrdiff_t(at), l.end());
  return l[at];
}

void Runner::Impl::connect_done(net::sock_id sk, int err) {
  // A blocking connect that finished inside its own call: the caller records it.
  if (sk == in_connect && !r.w_.sk(sk).connect_nonblock) return;
  if (auto wit = wl_pending.find(sk); wit != wl_pending.end()) {
    const WlPending p = wit->second;
    const uint32_t wi = p.w;
    wl_pending.erase(wit);
    r.record_connect(err, p.info, sk, {r.w_.sk(sk).daddr, r.w_.sk(sk).dport}, r.sc_.workloads[wi].name, p.k,
                     p.t_start);
    if (explainer) {  // the handshake's end: a one-line block
      explain_begin(r.w_.now, connect_result_line(r.w_, sk, err, name(sk)), name(sk));
      explain_end(r.w_.now, {}, err);
    }
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
    call_event(r.w_.now, r.w_.sk(sk).netns, "connect_done", name(sk), sk, err, "");
    if (trace->enabled())
      trace->record(r.w_.now, "connect_done", fmt::format("\"sk\":{},\"sock\":{},\"ret\":{}{}", trace->sk_id(sk), trace::json_str(name(sk)),
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

// A generated close (inet_put_port) touches a sock, its tb2 and its tb, none of them used since
// the connect: left to itself it waits for one after the other. So while an event runs, the
// close after next starts loading its sock and tb2 (the event carries the tb2), and the next
// close its tb (its sock and tb2 arrived meanwhile). Hints to the CPU only: whatever comes
// next, nothing changes. churn-random: +4-7 % events/s (README "Performance", session 10).
[[gnu::always_inline]] inline void Runner::prefetch_ahead() {
  const engine::Event* next[2];
  eng_.peek(next);
  if (next[1] && next[1]->kind == kWlClose) {
    w_.prefetch_sk(next[1]->a);
    w_.prefetch_tb2(uint32_t(next[1]->b));
  }
  if (next[0] && next[0]->kind == kWlClose) w_.prefetch_tb_of(next[0]->a);
}

// hold-1m's timeline calls take turns over 1 000 destinations: each connect finds its
// destination's memory cold (the bind bucket of its port, that port's bind2 bucket, the sock at
// its head, the ehash slot, the perturb cell, the bitmap word). Each call's last connect left a
// guess of where its next one will look (inet_hash_connect_guess); while one call runs, the
// calls 6, 3 and 1 places later start loading it, a stage each
// (world::prefetch_connect_guess). Hints only: a wrong guess costs wasted loads. hold-1m:
// README "Performance", session 11.
[[gnu::always_inline]] inline void Runner::prefetch_calls_ahead() {
  static constexpr size_t kAhead[3] = {5, 2, 0};  // peek_instant(k): k + 1 events ahead
  for (int stage = 1; stage <= 3; ++stage) {
    const engine::Event* e = eng_.peek_instant(kAhead[stage - 1]);
    if (e && e->kind == kCall) w_.prefetch_connect_guess(impl_->plans[e->a].guess, stage);
  }
}

void Runner::handle(const engine::Event& ev) {
  w_.now = ev.t;
  if (!rep_.runtime_error.empty()) return;
  if (impl_->trace->failed()) {  // a write error: no point in running on (run() reports it)
    eng_.stop();
    return;
  }
  if (ev.kind == kCall) {  // the timeline's calls: most events of a timeline run
    last_effective_ = ev.t;
    prefetch_calls_ahead();
    run_call(uint32_t(ev.a), ev.b);
    return;
  }
  prefetch_ahead();  // the generators' events and timers
  switch (ev.kind) {
    case kTimer: on_timer(ev); return;
    case kPacket: {
      last_effective_ = ev.t;
      const net::segment seg = impl_->pkts[ev.a];
      impl_->free_pkts.push_back(ev.a);
      if (impl_->explainer)
        impl_->explain_begin(ev.t, fmt::format("segment {} > {} {} arrives", net::to_string(net::endpoint{seg.saddr, seg.sport}),
                                               net::to_string(net::endpoint{seg.daddr, seg.dport}), net::tcp_flags_str(seg.flags)),
                             {});
      impl_->deliver(seg);
      impl_->explain_end(ev.t);
      return;
    }
    case kSample: take_sample(); return;
    case kSs: print_ss(opt_.ss_out, w_, opt_.ss, ev.t); return;
    default: break;
  }
  last_effective_ = ev.t;
  switch (ev.kind) {
    case kArrival: workload_arrival(ev.a, ev.b); return;
    case kWlClose: workload_close(ev.a, ev.b); return;
    case kPoolOpen: pool_open(ev.a); return;
    case kPoolClose: pool_close(ev.a); return;
    default: run_call(ev.a, ev.b); return;
  }
}

void Runner::on_timer(const engine::Event& ev) {
  const net::sock_id id = ev.a;
  const uint32_t gen = uint32_t(ev.b);
  const auto kind = net::timer_kind(ev.b >> 32);
  if (id >= w_.socks.size() || !w_.sk(id).alive || w_.sk(id).timer_gen != gen) return;  // cancelled
  last_effective_ = ev.t;
  if (w_.obs) w_.obs->timer(w_, kind, id);
  if (impl_->explainer) {
    const std::string who = impl_->name(id).empty() ? fmt::format("sk{}", impl_->trace->sk_id(id)) : impl_->name(id);
    impl_->explain_begin(ev.t,
                       fmt::format("{:<29} {}",
                                   kind == net::timer_kind::timewait    ? "tw_timer_handler"
                                   : kind == net::timer_kind::keepalive ? "tcp_keepalive_timer"
                                                                        : "tcp_retransmit_timer",
                                   who),
                       who);
  }
  switch (kind) {
    case net::timer_kind::timewait:
      if (w_.sk(id).state == net::tcp_state::TIME_WAIT) net::inet_twsk_kill(w_, id);
      break;
    case net::timer_kind::retransmit: net::tcp_retransmit_timer(w_, id); break;
    case net::timer_kind::keepalive: net::tcp_keepalive_timer(w_, id); break;
  }
  impl_->explain_end(ev.t);
}

void Runner::run_call(uint32_t ci, uint64_t k) {
  impl_->socks_prefault.advance(w_.socks.size() * sizeof(net::sock));  // the timeline's sockets
  const Impl::CallPlan& p = impl_->plans[ci];
  if (k + 1 < p.count) eng_.schedule({p.t + (k + 1) * p.every, engine::Prio::Call, kCall, ci, k + 1});
  if (p.fresh_connect) run_fresh_connect(ci, k, w_.now);
  else run_call_any(ci, k, sc_.timeline[ci], w_.now);
}

// run_call() of any call (the next repetition is scheduled).
void Runner::run_call_any(uint32_t ci, uint64_t k, const Call& c, Nanos now) {
  const Impl::CallPlan& plan = impl_->plans[ci];
  // A repeated creating call makes a fresh socket per repetition (the loader checked the names
  // are new), so the name is only formatted when a trace, a message or a lookup needs it.
  const bool fresh_instance = plan.fresh_rep && (impl_->inst[ci].size() <= k || impl_->inst[ci][k] == net::kNone);
  const std::string sname = fresh_instance && !impl_->verbose() ? std::string() : sock_name(c.sock, k);
  Outcome out;
  if (opt_.explain) {
    impl_->explain_begin(now, fmt::format("{} {}{}", op_name(c.op), c.op == Op::sysctl ? c.sysctl.name : sname,
                                          c.op == Op::bind || c.op == Op::connect || (c.op == Op::send && c.has_to)
                                              ? " " + net::to_string(c.addr)
                                          : c.op == Op::sysctl ? " " + c.sysctl.value : ""),
                         c.op == Op::sysctl ? std::string() : sname);
    impl_->explain_call = ci;
    impl_->explain_k = k;
  }
  net::sock_id sk = c.op == Op::sysctl || fresh_instance ? net::kNone : impl_->lookup(sname);
  if (c.op != Op::sysctl && sk == net::kNone) {
    // Without "host" a call only names a socket expected to exist: one an accept() should have
    // made (the loader cannot know that the accept fails) is not created on no host.
    if (!plan.creates || c.netns < 0) {  // sname is always formatted here: fresh_instance implies creates
      rep_.runtime_error = fmt::format("{}: {}: socket '{}' does not exist at {} ({})", sc_.file, c.path, sname,
                                       format_duration(now),
                                       plan.creates ? "the accept() that was to make it failed, or it was closed"
                                                    : "not created yet, or closed");
      impl_->explain_end(now);
      return;
    }
    sk = c.udp ? net::udp_socket(w_, uint16_t(c.netns), c.cred.uid, c.cred.cap_net_bind_service, c.family == net::family::inet6)
               : net::sys_socket(w_, uint16_t(c.netns), c.cred, c.family);
    if (c.echo) w_.udp.socks[sk].echo = true;
    if (!impl_->unnamed[ci]) impl_->set_name(sk, ci, uint32_t(k), false);
    for (const auto& o : c.opts)
      if (!out.err) out.err = apply_opt(w_.machine_of(w_.ns_of(sk)).kp, w_, sk, o);
  } else if (c.op == Op::socket) {
    rep_.runtime_error = fmt::format("{}: {}: socket '{}' exists already", sc_.file, c.path, sname);
    impl_->explain_end(now);
    return;
  } else if (!c.opts.empty() && c.op != Op::setsockopt) {
    for (const auto& o : c.opts)
      if (!out.err) out.err = apply_opt(w_.machine_of(w_.ns_of(sk)).kp, w_, sk, o);
  }
  out.sk = sk;
  // Exact replay: every timeline call takes its machine's next "call_monotonic_ns" (the guest's
  // clock when it began), each connect() call also its next "connect_jiffies".
  net::machine& m = w_.machine_of(c.op == Op::sysctl ? w_.nets[size_t(c.netns)] : w_.ns_of(sk));
  m.timeline_call_begin(now);
  net::machine* connect_m = c.op == Op::connect ? &m : nullptr;
  if (connect_m) connect_m->connect_call_begin();
  if (!out.err && c.op != Op::sysctl && w_.sk(sk).udp) {
    out.ui = {};
    const bool done = run_udp_call(ci, k, sk, sname, out);
    if (connect_m) connect_m->connect_call_end();
    if (!done) return;
    finish_call(ci, k, out, now);
    return;
  }
  if (!out.err && (c.op == Op::send || c.op == Op::recv)) {
    rep_.runtime_error = fmt::format("{}: {}: {} on '{}': send and recv are modelled for UDP sockets only", sc_.file, c.path,
                                     op_name(c.op), sname);
    impl_->explain_end(now);
    return;
  }
  if (!out.err) {
    switch (c.op) {
      case Op::socket: break;
      case Op::setsockopt: out.err = apply_opt(w_.machine_of(w_.ns_of(sk)).kp, w_, sk, c.opts.front()); break;
      case Op::bind:
        out.bi = {};
        out.err = net::inet_bind(w_, sk, c.addr, &out.bi);
        out.has_bind = c.addr.port == 0 && !w_.sk(sk).bind_address_no_port;
        break;
      case Op::listen:
        out.bi = {};
        out.has_bind = w_.sk(sk).num == 0;  // listen() autobinds an unbound socket: bind(0)'s search
        out.err = net::inet_listen(w_, sk, c.backlog, &out.bi);
        break;
      case Op::connect: {
        out.err = impl_->connect(sk, c.addr, c.nonblock, out.ci);
        connect_m->connect_call_end();
        out.has_connect = true;
        if (out.err == EINPROGRESS && !c.nonblock) {  // blocking: the outcome is recorded when it comes
          impl_->await_handshake(sk, ci, k, now, out.ci);
          if (opt_.explain) {  // the result comes as a block of its own when the handshake ends
            impl_->explain_call = kNoCall;
            impl_->explain_end(now, {}, EINPROGRESS);
          }
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
      case Op::send: case Op::recv: break;  // UDP only (above)
      case Op::close: {
        out.err = net::tcp_close(w_, sk);
        impl_->forget(sname.empty() ? sock_name(c.sock, k) : sname, sk);
        break;
      }
      case Op::sysctl: {
        net::netns& ns = w_.nets[size_t(c.netns)];
        const std::string msg = sysctl_set(w_, ns.id, c.sysctl.name, c.sysctl.value);
        out.err = msg.empty() ? 0 : EINVAL;
        if (!out.err) net::udp_sysctl_changed(w_, uint16_t(c.netns));
        if (!out.err && c.sysctl.name == "net.ipv4.ip_local_reserved_ports")
          for (uint32_t p = 0; p < 65536; ++p) net::connect_skip_update(w_, ns, uint16_t(p));
        break;
      }
    }
  }
  if (connect_m) connect_m->connect_call_end();
  finish_call(ci, k, out, now);
}

// run_call() of a CallPlan::fresh_connect call: what run_call does for it, without the
// questions whose answers the plan knows (the socket is new, unnamed, TCP, without options; an
// unnamed call means no trace, no --explain and no observer).
void Runner::run_fresh_connect(uint32_t ci, uint64_t k, Nanos now) {
  const Impl::CallPlan& c = impl_->plans[ci];  // the Call's fields, in one record
  const net::sock_id sk = net::sys_socket(w_, c.netns, c.cred, c.family);
  net::machine& m = w_.machines[w_.nets[c.netns].machine];
  m.timeline_call_begin(now);  // exact replay: the call's "call_monotonic_ns", "connect_jiffies"
  m.connect_call_begin();
  Outcome out;
  out.sk = sk;
  out.err = impl_->connect(sk, c.addr, c.nonblock, out.ci);
  m.connect_call_end();
  // The guess serves prefetch_calls_ahead() only when other calls of this instant run before
  // this call's next repetition (hold-1m's turns); alone, its destination's memory stays warm.
  const engine::Event* after = eng_.peek_instant(0);
  if (out.ci.autobind && after && after->kind == kCall && after->a != ci)
    impl_->plans[ci].guess = net::inet_hash_connect_guess(w_, sk);
  out.has_connect = true;
  if (out.err == EINPROGRESS && !c.nonblock) {  // blocking: the outcome is recorded when it comes
    impl_->await_handshake(sk, ci, k, now, out.ci);
    return;
  }
  finish_call_inline(ci, k, out, now);
}

// Outcome bookkeeping, expectations, trace and explanation of one call (at its completion).
// `o` is the caller's, completed here (a blocking connect's search result) rather than copied.
void Runner::finish_call(uint32_t ci, uint64_t k, Outcome& o, Nanos t_start) { finish_call_inline(ci, k, o, t_start); }

// finish_call(), inlined into the hot caller (run_fresh_connect).
[[gnu::always_inline]] inline void Runner::finish_call_inline(uint32_t ci, uint64_t k, Outcome& o, Nanos t_start) {
  const Impl::CallPlan& c = impl_->plans[ci];  // the Call's fields read here (observe_call() reads the Call)
  const net::sock_id sk = o.sk;
  if (!o.has_connect && !impl_->pending_info.empty()) {
    if (auto it = impl_->pending_info.find(sk); it != impl_->pending_info.end()) {
      o.ci = it->second;
      o.has_connect = true;
      impl_->pending_info.erase(it);
    }
  }
  ++rep_.calls;
  if (c.connect) {
    if (o.has_connect && o.ci.autobind) rep_.examined.add(uint32_t(std::min<uint64_t>(o.ci.examined, UINT32_MAX)));
    if (o.err != EINPROGRESS) count_connect(o.err);
  }
  const bool alive = sk != net::kNone && w_.sk(sk).alive;
  const uint16_t port = alive ? w_.sk(sk).num : 0;
  if (o.err) {
    count_call_error(ci, o.err);
  } else {
    ++rep_.calls_ok;
    ++impl_->ok_count[ci];
    if (c.distinct_ports && port) {
      auto& seen = impl_->ports_seen[ci];
      if (seen.empty()) seen.assign(65536, false);
      seen[port] = true;
    }
  }
  if (c.expect) check_expect(ci, k, o, port);
  // Without observers nothing below applies (a trace or --explain sets w_.obs; explain_call is
  // only ever set with --explain).
  if (w_.obs) observe_call(ci, k, o, t_start, alive, port);
}

// finish_call()'s count of a failed call (out of line: the common call succeeds).
void Runner::count_call_error(uint32_t ci, int err) {
  ++rep_.errors[std::string(errno_name(err))];
  ++impl_->err_count[ci][err];
}

// finish_call()'s part for the observers: the call event, the trace record, the explanation.
void Runner::observe_call(uint32_t ci, uint64_t k, const Outcome& o, Nanos t_start, bool alive, uint16_t port) {
  const Call& c = sc_.timeline[ci];
  const net::sock_id sk = o.sk;
  if (w_.obs->wants_calls()) {
    const int ns_idx = c.op == Op::sysctl ? c.netns : (alive ? int(w_.sk(sk).netns) : c.netns);
    const std::string detail = c.op == Op::bind ? "addr " + net::to_string(c.addr)
                               : c.op == Op::connect ? "to " + net::to_string(c.addr)
                               : c.op == Op::sysctl ? c.sysctl.name + " = " + c.sysctl.value
                                                    : std::string();
    impl_->call_event(t_start, uint16_t(std::max(ns_idx, 0)), op_name(c.op), sock_name(c.sock, k), sk, o.err, detail);
  }
  if (!impl_->verbose()) {
    if (impl_->explain_call == ci && impl_->explain_k == k) impl_->explain_call = kNoCall;
    return;
  }
  const std::string sname = sock_name(c.sock, k);
  std::string extra;
  if (c.op == Op::bind || c.op == Op::connect || (c.op == Op::send && c.has_to))
    extra = fmt::format(",\"{}\":\"{}\"", c.op == Op::bind ? "addr" : "to", net::to_string(c.addr));
  if (c.op == Op::accept && o.accepted != net::kNone)
    extra = fmt::format(",\"as\":{},\"remote\":\"{}\"", trace::json_str(sock_name(c.as, k)),
                        net::to_string(net::endpoint{w_.sk(o.accepted).daddr, w_.sk(o.accepted).dport}, w_.sk(o.accepted).v6));
  if (c.op == Op::sysctl)
    extra = fmt::format(",\"name\":{},\"value\":{}", trace::json_str(c.sysctl.name), trace::json_str(c.sysctl.value));
  if (impl_->trace->enabled()) {
    std::string body = fmt::format("\"call\":{},", ci);
    if (c.count > 1) body += fmt::format("\"rep\":{},", k);
    if (t_start != w_.now) body += fmt::format("\"t_start\":{},", t_start);
    const int ns_idx = c.op == Op::sysctl ? c.netns : (alive ? int(w_.sk(sk).netns) : c.netns);
    body += fmt::format("\"host\":{},\"op\":\"{}\"", trace::json_str(w_.nets[size_t(std::max(ns_idx, 0))].name), op_name(c.op));
    if (o.udp) body += ",\"type\":\"udp\"";
    if (c.op != Op::sysctl) body += fmt::format(",\"sock\":{},\"sk\":{}", trace::json_str(sname), impl_->trace->sk_id(sk));
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
    if (o.has_udp && o.ui.autobind) {
      const auto& u = o.ui;
      body += fmt::format(",\"rand\":{},\"first\":{},\"stride\":{},\"range\":[{},{}],\"remaining\":{},\"slots\":{},\"examined\":{}",
                          u.rand, u.first, u.stride, u.low, u.high, u.remaining, u.slots, u.examined);
    }
    if (o.has_bind && o.bi.examined) {
      const auto& b = o.bi;
      body += fmt::format(",\"offset\":{},\"half\":{},\"pass\":{},\"relax\":{},\"examined\":{}", b.offset, b.half,
                          b.pass, b.relax, b.examined);
      if (!o.err) body += fmt::format(",\"range\":[{},{}]", b.low, b.high - 1);
    }
    impl_->trace->record(w_.now, "call", body);
  }
  if (opt_.explain) {
    const bool own_block = impl_->explain_call == ci && impl_->explain_k == k;
    if (own_block) impl_->explain_call = kNoCall;
    explain_call(c, sname, o, port, own_block);
  }
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

void Runner::explain_call(const Call& c, const std::string& sname, const Outcome& o, uint16_t port, bool own_block) {
  const std::string result = fmt::format("{} {} = {}", op_name(c.op), c.op == Op::sysctl ? c.sysctl.name : sname,
                                         o.err ? fmt::format("-1 {}", errno_name(o.err))
                                         : port ? fmt::format("0 (local port {})", port) : std::string("0"));
  if (own_block) {  // the call's block is still open: its result line closes it
    impl_->explain_end(w_.now, result, o.err);
  } else {  // a blocking connect completing later: a one-line block
    impl_->explain_begin(w_.now, result, c.op == Op::sysctl ? std::string() : sname);
    impl_->explain_end(w_.now, {}, o.err);
  }
}

// A server child is established: when its client is a generated connection (found through
// the 4-tuple in the client's namespace), the generator's server accept()s it at once, so the
// accept queue never fills with them. Over a link with delay this is one ACK after the
// client's connect() returned.
void Runner::Impl::accept_ready(net::sock_id listener, net::sock_id child) {
  net::world& w = r.w_;
  const net::sock& c = w.sk(child);
  bool generated = false;
  if (auto it = accept_when_ready.find(child); it != accept_when_ready.end()) {
    generated = it->second == net::endpoint{c.daddr, c.dport};  // not a later sock in that slot
    accept_when_ready.erase(it);
  }
  if (!generated) {  // the handshake ended inside the generated connect() (no delay)
    const net::netns* client_ns = net::route_to(w, w.nets[c.netns], c.daddr);
    if (!client_ns) return;
    const net::sock_id client = net::inet_ehash_lookup(w, client_ns->id, c.daddr, c.dport, c.rcv_saddr, c.num);
    if (client == net::kNone || !wl_of_sock.count(client)) return;
  }
  std::erase(w.listening[listener].accept_queue, child);
  auto_children.insert(child);
}

// EOF seen by an application: a generated client closes its socket (server-first close), and
// the generator's server side closes a child whose client closed first.
void Runner::Impl::peer_closed(net::sock_id sk) {
  if (wl_of_sock.count(sk)) {
    wl_of_sock.erase(sk);
    net::tcp_close(r.w_, sk);
  } else if (auto c = auto_children.find(sk); c != auto_children.end()) {
    auto_children.erase(c);
    net::tcp_close(r.w_, sk);
  }
}

RunReport Runner::run() {
  if (!impl_->trace->ok()) {
    rep_.runtime_error = fmt::format("{}: cannot open the trace file for writing: {}", opt_.trace_path,
                                     std::strerror(impl_->trace->error()));
    return rep_;
  }
  if (impl_->pcap && !impl_->pcap->ok()) {
    rep_.runtime_error = fmt::format("{}: cannot open the pcap file for writing: {}", opt_.pcap_path,
                                     std::strerror(impl_->pcap->error()));
    return rep_;
  }
  if (impl_->perfetto && !impl_->perfetto->ok()) {
    rep_.runtime_error = fmt::format("{}: cannot open the Perfetto file for writing: {}", opt_.perfetto_path,
                                     std::strerror(impl_->perfetto->error()));
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
  for (const Nanos t : opt_.ss_at) eng_.schedule({t, engine::Prio::Observe, kSs, 0, 0});
  for (uint32_t i = 0; i < sc_.timeline.size(); ++i)
    eng_.schedule({sc_.timeline[i].t, engine::Prio::Call, kCall, i, 0});
  eng_.run(*this, opt_.stop_at, opt_.max_events);
  impl_->socks_prefault.stop();
  rep_.events = eng_.events_run();
  for (const auto& st : impl_->wl) {
    rep_.requests += st.requests;
    rep_.requests_failed += st.requests_failed;
  }
  rep_.virtual_end = last_effective_;  // cancelled timers left in the queue do not count
  rep_.st = w_.st;
  rep_.udp = w_.udp.st;
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
  if (w_.obs) w_.obs->finish(w_, rep_.virtual_end);
  if (!rep_.runtime_error.empty()) {
    impl_->trace->abandon();
    if (impl_->pcap) impl_->pcap->abandon();
    if (impl_->perfetto) impl_->perfetto->abandon();
    return rep_;
  }
  if (!impl_->trace->commit())
    rep_.runtime_error = fmt::format("{}: cannot write the trace: {}", opt_.trace_path, std::strerror(impl_->trace->error()));
  else if (impl_->pcap && !impl_->pcap->commit())
    rep_.runtime_error = fmt::format("{}: cannot write the pcap file: {}", opt_.pcap_path, std::strerror(impl_->pcap->error()));
  else if (impl_->perfetto && !impl_->perfetto->commit())
    rep_.runtime_error =
        fmt::format("{}: cannot write the Perfetto file: {}", opt_.perfetto_path, std::strerror(impl_->perfetto->error()));
  return rep_;
}

}  // namespace portsim::scenario
