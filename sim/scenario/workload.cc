// Workload generators: arrivals in virtual time, hold-then-close, pools, and the per-run
// counters that sweeps report.
#include "runner_impl.h"

namespace portsim::scenario {

// --- workload generators -------------------------------------------------------------------

Nanos Runner::next_gap(uint32_t wi) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  auto& st = impl_->wl[wi];
  // 1e9 / rate, divided once per workload (0 until then; an infinite rate's 0 is recomputed).
  if (st.mean_gap_ns == 0) st.mean_gap_ns = 1e9 / ws.rate;
  const double mean_ns = st.mean_gap_ns;
  // Saturating: a tiny rate's gap (1e9 / 1e-300 ns) lands after every stop, not in the past.
  if (!ws.poisson) return nanos_from_double(mean_ns);
  const double u = st.rnd.unit();
  return nanos_from_double(-std::log1p(-u) * mean_ns);
}

const net::endpoint& Runner::next_dest(uint32_t wi) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  auto& st = impl_->wl[wi];
  if (ws.pick_random) return ws.to[st.rnd.u32_below(uint32_t(ws.to.size()))];
  const uint64_t i = st.next_dest;  // round-robin: the index wraps without a division
  st.next_dest = i + 1 == ws.to.size() ? 0 : i + 1;
  return ws.to[i];
}

// One generated connect (socket, options, optional bind, connect). Returns the sock or kNone.
net::sock_id Runner::workload_connect(uint32_t wi, uint64_t k) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  if (ws.udp) return workload_udp(wi, k);  // udp_calls.cc
  const net::endpoint& to = next_dest(wi);
  const auto fam = to.addr.is_v4() && (!ws.bind || ws.bind->addr.is_v4()) ? net::family::inet : net::family::inet6;
  const net::sock_id sk = net::sys_socket(w_, uint16_t(ws.netns), {}, fam);
  impl_->wl_of_sock.set(sk, wi);
  if (impl_->trace->enabled() || opt_.explain) impl_->set_generated_name(sk, ws.name, k);
  if (opt_.explain) impl_->explain_begin(w_.now, fmt::format("connect {}#{} {}", ws.name, k, net::to_string(to)),
                                         fmt::format("{}#{}", ws.name, k));
  int err = 0;
  for (const auto& o : ws.opts)
    if (!err) err = apply_opt(w_.machine_of(w_.ns_of(sk)).kp, w_, sk, o);
  if (!err && ws.bind) err = net::inet_bind(w_, sk, *ws.bind);
  // connect() unless an option or the bind failed; its autobind details are read in place.
  const net::connect_result cr = err ? net::connect_result{err, {}} : impl_->connect(sk, to);
  err = cr.err;
  const net::connect_info& info = cr.info;
  if (info.autobind) rep_.examined.add(uint32_t(std::min<uint64_t>(info.examined, UINT32_MAX)));
  if (opt_.explain) {
    if (err == EINPROGRESS) impl_->explain_end(w_.now, {}, EINPROGRESS);  // the result is a block of its own
    else impl_->explain_end(w_.now, connect_result_line(w_, sk, err, fmt::format("{}#{}", ws.name, k)), err);
  }
  if (err == EINPROGRESS) {  // recorded when the handshake ends (Impl::connect_done)
    impl_->wl_pending[sk] = {wi, k, info, w_.now};
    return sk;
  }
  record_connect(err, info, sk, to, ws.name, k, w_.now);
  if (err) {
    impl_->wl_of_sock.erase(sk);
    net::tcp_close(w_, sk);
    return net::kNone;
  }
  workload_established(wi, sk);
  return sk;
}

// The generated connection is up on the client side: unless it belongs to a pool, its close is
// scheduled after the hold time. Its server side is accepted when the server's child is
// established and joins the accept queue (Impl::accept_ready). Over a link with delay that is
// one ACK after this point, when the client may have closed already: the child, still in
// SYN_RECV, is noted here so that it is recognised then.
void Runner::workload_established(uint32_t wi, net::sock_id sk) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  const net::sock& s = w_.sk(sk);
  if (const net::netns* dst = workload_external_only(wi) ? nullptr : net::route_to(w_, w_.nets[s.netns], s.daddr)) {
    const net::sock_id child = net::inet_ehash_lookup(w_, dst->id, s.daddr, s.dport, s.rcv_saddr, s.num);
    if (child != net::kNone && w_.sk(child).state == net::tcp_state::SYN_RECV)
      impl_->accept_when_ready[child] = net::endpoint{s.rcv_saddr, s.num};
  }
  if (ws.pool) return;
  Nanos hold = ws.hold;
  if (ws.hold_exp) hold = nanos_from_double(-std::log1p(-impl_->wl[wi].rnd.unit()) * double(ws.hold));
  // The event carries s.tb2 as well: a hint, Runner::prefetch_ahead loads it with the sock.
  eng_.schedule({sat_add(w_.now, hold), engine::Prio::Call, kWlClose, sk, uint64_t(wi) << 32 | s.tb2});
}

// Does no destination of workload wi lead into a namespace of the model (every one external, or
// unroutable)? Then a connection of it has no server child to look for. Decided once per
// workload: its destinations and the namespaces' addresses do not change during a run. Only
// for AF_INET workloads to specified addresses, whose sockets' daddr is the destination itself.
bool Runner::workload_external_only(uint32_t wi) {
  auto& st = impl_->wl[wi];
  if (st.external_only < 0) {
    const WorkloadSpec& ws = sc_.workloads[wi];
    bool ext = !ws.bind || ws.bind->addr.is_v4();
    for (size_t i = 0; ext && i < ws.to.size(); ++i)
      ext = ws.to[i].addr.is_v4() && !ws.to[i].addr.is_any() && !net::route_to(w_, w_.nets[size_t(ws.netns)], ws.to[i].addr);
    st.external_only = ext;
  }
  return st.external_only;
}

void Runner::workload_arrival(uint32_t wi, uint64_t k) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  const Nanos next = sat_add(w_.now, next_gap(wi));
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

// The chosen side of a generated TCP connection closes.
[[gnu::always_inline]] inline void Runner::workload_close_tcp(const WorkloadSpec& ws, net::sock_id sk) {
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

// The hold is over: the chosen side closes.
void Runner::workload_close(net::sock_id sk, uint64_t wl_gen) {
  const uint32_t wi = uint32_t(wl_gen >> 32), gen = uint32_t(wl_gen);  // gen: UDP's; TCP's tb2 hint
  if (!w_.sk(sk).alive) return;
  const WorkloadSpec& ws = sc_.workloads[wi];
  if (ws.udp) {  // no answer within hold: the resolver gives up and closes
    if (w_.sk(sk).timer_gen != gen || !impl_->wl_of_sock.count(sk)) return;  // closed at the answer
    impl_->wl_of_sock.erase(sk);
    ++w_.udp.st.queries_timeout;
    net::udp_close(w_, sk);
    return;
  }
  if (!opt_.explain) return workload_close_tcp(ws, sk);
  const Nanos t = w_.now;  // the close's --explain block
  impl_->explain_begin(t, fmt::format("close {} ({})", impl_->name(sk),
                                      ws.close == WorkloadSpec::Closer::server ? "the server closes"
                                      : ws.close == WorkloadSpec::Closer::rst  ? "the client resets: SO_LINGER 0"
                                                                                : "the client closes"),
                       impl_->name(sk));
  workload_close_tcp(ws, sk);
  impl_->explain_end(t);
}

void Runner::pool_open(uint32_t wi) {
  auto& st = impl_->wl[wi];
  for (uint32_t i = 0; i < sc_.workloads[wi].pool; ++i) st.pool.push_back(workload_connect(wi, i));
}

void Runner::pool_close(uint32_t wi) {
  impl_->explain_begin(w_.now, fmt::format("close the pool of {}", sc_.workloads[wi].name), {});
  for (net::sock_id p : impl_->wl[wi].pool)
    if (p != net::kNone && w_.sk(p).alive) {
      impl_->wl_of_sock.erase(p);
      net::tcp_close(w_, p);
    }
  impl_->wl[wi].pool.clear();
  impl_->explain_end(w_.now);
}

void Runner::take_sample() {
  const uint64_t bound = w_.tbs.size() - w_.free_tbs.size();
  rep_.samples.push_back({w_.now, w_.st.established, w_.st.time_wait, bound, rep_.connects_ok, rep_.connect_errors});
  if (!eng_.empty()) eng_.schedule({sat_add(w_.now, opt_.sample_every), engine::Prio::Timer, kSample, 0, 0});
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

// Bookkeeping shared by generated connects at their outcome (at once, or when a handshake over
// a link with delay ends): counts, the first EADDRNOTAVAIL, the trace record of arrival k.
void Runner::record_connect(int err, const net::connect_info& info, net::sock_id sk, const net::endpoint& to,
                            const std::string& wname, uint64_t k, Nanos t_start) {
  count_connect(err);
  if (w_.obs && w_.obs->wants_calls()) impl_->call_event(w_.now, w_.sk(sk).netns, "connect", fmt::format("{}#{}", wname, k), sk, err,
                                "to " + net::to_string(to));
  if (!impl_->trace->enabled() || (opt_.trace_sample > 1 && k % opt_.trace_sample)) return;
  std::string body = fmt::format("\"workload\":{},\"rep\":{},", trace::json_str(wname), k);
  if (t_start != w_.now) body += fmt::format("\"t_start\":{},", t_start);
  body += fmt::format("\"host\":{},\"op\":\"connect\",\"sock\":{},\"sk\":{},\"to\":\"{}\"",
                                 trace::json_str(w_.ns_of(sk).name),
                                 trace::json_str(fmt::format("{}#{}", wname, k)), impl_->trace->sk_id(sk), net::to_string(to));
  body += err ? fmt::format(",\"ret\":-1,\"errno\":\"{}\"", errno_name(err)) : std::string(",\"ret\":0");
  if (w_.sk(sk).alive) body += fmt::format(",\"local\":\"{}\"", endpoint_str(w_.sk(sk)));
  if (info.autobind)
    body += fmt::format(",\"port_offset\":\"{:#018x}\",\"perturb_index\":{},\"offset\":{},\"pass\":{},\"i\":{},\"examined\":{}",
                        info.port_offset, info.index, info.offset, info.pass, info.i, info.examined);
  impl_->trace->record(w_.now, "call", body);
}

}  // namespace portsim::scenario
