// The runner's UDP side: timeline calls on datagram sockets and the UDP workload generator
// (a query per arrival: a new connected socket, one datagram, closed at the reply or after
// `hold`). The kernel model is in sim/net/udp.cc.
#include "runner_impl.h"

#include "portsim/net/udp.h"

namespace portsim::scenario {

// One timeline call on a UDP socket. Returns false when it ended the run (bad input).
bool Runner::run_udp_call(uint32_t ci, uint64_t k, net::sock_id sk, const std::string& sname, Outcome& out) {
  const Call& c = sc_.timeline[ci];
  out.udp = true;
  switch (c.op) {
    case Op::socket: break;
    case Op::setsockopt: out.err = apply_opt(w_.machine_of(w_.ns_of(sk)).kp, w_, sk, c.opts.front()); break;
    case Op::bind:
      out.err = net::udp_bind(w_, sk, c.addr, &out.ui);
      out.has_udp = out.ui.autobind;
      break;
    case Op::connect:
      out.err = net::udp_connect(w_, sk, c.addr, &out.ui);
      out.has_udp = out.ui.autobind;
      if (out.ui.autobind) rep_.examined.add(uint32_t(std::min<uint64_t>(out.ui.examined, UINT32_MAX)));
      break;
    case Op::send:
      out.err = net::udp_sendmsg(w_, sk, c.has_to ? std::optional<net::endpoint>(c.addr) : std::nullopt, &out.ui);
      out.has_udp = out.ui.autobind;
      break;
    case Op::recv: out.err = net::udp_recvmsg(w_, sk); break;
    case Op::listen: case Op::accept: out.err = EOPNOTSUPP; break;  // inet_listen / sock_no_accept
    case Op::shutdown:  // inet_shutdown: an unconnected datagram socket → ENOTCONN
      out.err = w_.sk(sk).state == net::tcp_state::ESTABLISHED ? 0 : ENOTCONN;
      break;
    case Op::close:
      net::udp_close(w_, sk);
      impl_->forget(sname.empty() ? sock_name(c.sock, k) : sname, sk);
      break;
    case Op::sysctl: break;  // never on a socket
  }
  return true;
}

// A UDP query of workload wi: socket, options, optional bind, connect (autobind: EAGAIN when
// no port is free), one datagram. The socket closes at the answer (or ICMP error) or after hold.
net::sock_id Runner::workload_udp(uint32_t wi, uint64_t k) {
  const WorkloadSpec& ws = sc_.workloads[wi];
  const net::endpoint& to = next_dest(wi);
  const bool v6 = !(to.addr.is_v4() && (!ws.bind || ws.bind->addr.is_v4()));
  const net::sock_id sk = net::udp_socket(w_, uint16_t(ws.netns), 0, true, v6);
  if (impl_->trace->enabled() || opt_.explain) impl_->set_generated_name(sk, ws.name, k);
  int err = 0;
  for (const auto& o : ws.opts)
    if (!err) err = apply_opt(w_.machine_of(w_.ns_of(sk)).kp, w_, sk, o);
  if (!err && ws.bind) err = net::udp_bind(w_, sk, *ws.bind);
  net::udp_port_info ui;
  if (!err) err = net::udp_connect(w_, sk, to, &ui);
  if (ui.autobind) rep_.examined.add(uint32_t(std::min<uint64_t>(ui.examined, UINT32_MAX)));
  count_connect(err);
  ++w_.udp.st.queries;
  if (impl_->trace->enabled() && !(opt_.trace_sample > 1 && k % opt_.trace_sample)) {
    std::string body = fmt::format("\"workload\":{},\"rep\":{},\"host\":{},\"op\":\"connect\",\"type\":\"udp\",\"sock\":{},\"sk\":{},\"to\":\"{}\"",
                                   trace::json_str(ws.name), k, trace::json_str(w_.nets[size_t(ws.netns)].name),
                                   trace::json_str(fmt::format("{}#{}", ws.name, k)), impl_->trace->sk_id(sk), net::to_string(to));
    body += err ? fmt::format(",\"ret\":-1,\"errno\":\"{}\"", errno_name(err)) : std::string(",\"ret\":0");
    body += fmt::format(",\"local\":\"{}\"", endpoint_str(w_.sk(sk)));
    if (ui.autobind)
      body += fmt::format(",\"rand\":{},\"first\":{},\"stride\":{},\"slots\":{},\"examined\":{}", ui.rand, ui.first, ui.stride,
                          ui.slots, ui.examined);
    impl_->trace->record(w_.now, "call", body);
  }
  if (err) {
    ++w_.udp.st.queries_failed;
    net::udp_close(w_, sk);
    return net::kNone;
  }
  impl_->wl_of_sock.set(sk, wi);
  const uint32_t gen = w_.sk(sk).timer_gen;
  (void)net::udp_sendmsg(w_, sk, std::nullopt);  // a zero-delay answer closes the socket in here
  if (!w_.sk(sk).alive || w_.sk(sk).timer_gen != gen) return net::kNone;
  eng_.schedule({w_.now + ws.hold, engine::Prio::Call, kWlClose, sk, uint64_t(wi) << 32 | gen});
  return sk;
}

// A datagram or an ICMP error reached a UDP socket: a generated query is over (answered or
// refused) and its socket closes.
void Runner::Impl::udp_ready(net::sock_id sk) {
  const uint32_t wi = wl_of_sock.get(sk);
  if (wi == net::kNone || !r.sc_.workloads[wi].udp) return;
  wl_of_sock.erase(sk);
  net::world& w = r.w_;
  if (w.sk(sk).sk_err) ++w.udp.st.queries_refused;
  else ++w.udp.st.queries_answered;
  net::udp_close(w, sk);
}

}  // namespace portsim::scenario
