// The wire of a run: where each segment goes (routing), over which path (a link, a host's
// loopback, or an external endpoint's path), how late it arrives and whether it is lost — all
// draws from the seed. A zero-delay path delivers inside the sending call.
#include "runner_impl.h"

#include "portsim/base/assert.h"
#include "portsim/net/udp.h"

namespace portsim::scenario {

// The path a segment takes: its link (or loopback) and the random stream that draws
// its jitter and loss. Unlinked hosts and loopback are zero-delay and lossless.
std::pair<const PathSpec*, Random*> Runner::Impl::path_of(const net::segment& seg, int to_ns, int ext) {
  if (ext >= 0) return {&r.sc_.externals[size_t(ext)].path, &ext_random[size_t(ext)]};
  const int a = std::min<int>(seg.from_ns, to_ns), b = std::max<int>(seg.from_ns, to_ns);
  auto it = links.find({a, b});
  if (it == links.end()) return {nullptr, nullptr};
  return {&it->second.first, &it->second.second};
}

// External endpoint `ext` is reached at once and for sure (no delay, jitter or loss on its
// path) and nothing watches the wire (no trace, pcap or --explain): a segment to or from it
// draws nothing and records nothing, so it goes straight to its receiver — the same calls, in
// the same order, as the general path below.
bool Runner::Impl::quiet_instant(int ext) const { return ext >= 0 && r.w_.externals[size_t(ext)].unwatched; }

// What a quiet instant external endpoint sends that its receiver may answer without recording
// (segment::quiet): its SYN-ACK. Both instant branches of xmit() below mark it.
static bool quiet_answer(const net::segment& seg) { return seg.proto == 0 && (seg.flags & net::TCPHDR_SYN); }

void Runner::Impl::deliver(const net::segment& seg) {
  switch (seg.proto) {
    case net::kProtoUdp:
      if (seg.to_ns == net::kExternalNs) net::udp_external_rcv(r.w_, seg);
      else net::udp_rcv(r.w_, seg.to_ns, seg);
      return;
    case net::kProtoIcmp:
      if (seg.to_ns != net::kExternalNs) net::udp_err(r.w_, seg.to_ns, seg);
      return;
    default: break;
  }
  if (seg.to_ns == net::kExternalNs) net::external_rcv(r.w_, seg);
  else net::tcp_v4_rcv(r.w_, seg.to_ns, seg);
}

// The trace's "flags" of a packet: TCP flags, "UDP", or the ICMP error.
static std::string pkt_flags(const net::segment& seg) {
  if (seg.proto == net::kProtoUdp) return "UDP";
  if (seg.proto == net::kProtoIcmp) return "ICMP_PORT_UNREACH";
  return net::tcp_flags_str(seg.flags);
}

void Runner::Impl::xmit(const net::segment& in) {
  int ext = -1;
  uint16_t routed = in.to_ns;
  if (in.from_ns == net::kExternalNs) {  // an external host answers over its own path
    ext = r.w_.find_external(in.saddr, in.sport);
    if (quiet_instant(ext)) {
      if (!quiet_answer(in)) return deliver(in);
      net::segment q = in;
      q.quiet = true;
      return deliver(q);
    }
  } else if (const net::netns* dst = net::route_to(r.w_, r.w_.nets[in.from_ns], in.daddr)) {
    routed = dst->id;
  } else {
    routed = net::kExternalNs;
    ext = r.w_.find_external(in.daddr, in.dport);
    if (quiet_instant(ext)) {  // a segment toward an external host names it already
      PORTSIM_ASSERT(in.to_ns == net::kExternalNs, "segment to an external host routed to netns {}", in.to_ns);
      if (in.proto != 0) return deliver(in);
      // Its answer comes back over the same instant path (find_external() of the answer's source
      // is `ext` again): handed to the receiver here, as the branch above would.
      net::segment reply;
      if (!net::external_reply(r.w_, r.w_.externals[size_t(ext)], in, reply)) return;
      reply.quiet = quiet_answer(reply);
      return net::tcp_v4_rcv(r.w_, reply.to_ns, reply);
    }
  }
  // Copy the segment only when routing changed its destination (a segment toward or from an
  // external host already names it) or it carries a lazy ISN (net::tcp_seq_resolved: only the
  // quiet instant path above takes those as they are): no 56-byte copy per packet on the hot path.
  net::segment routed_copy;
  const net::segment* sp = &in;
  if (in.seq_lazy || in.ack_lazy) {
    routed_copy = net::tcp_seq_resolved(r.w_, in, routed);
    routed_copy.to_ns = routed;
    sp = &routed_copy;
  } else if (routed != in.to_ns) {
    routed_copy = in;
    routed_copy.to_ns = routed;
    sp = &routed_copy;
  }
  const net::segment& seg = *sp;
  const int to_ns = seg.to_ns == net::kExternalNs ? -1 : int(seg.to_ns);
  auto [path, rnd] = path_of(seg, to_ns, ext);
  Nanos delay = 0;
  bool lost = false;
  if (path) {
    // delay and jitter are at most kMaxScenarioTime each (checked at load): no wrap.
    delay = path->delay + (path->jitter ? Nanos(rnd->unit() * double(path->jitter)) : 0);
    lost = path->loss > 0 && rnd->unit() < path->loss;
  }
  const bool nowhere = seg.to_ns == net::kExternalNs && ext < 0 && seg.from_ns != net::kExternalNs;
  if (r.w_.obs)
    r.w_.obs->segment(r.w_, seg, r.w_.now + delay,
                      lost ? net::seg_fate::lost : nowhere ? net::seg_fate::no_route : net::seg_fate::delivered);
  if (explainer && explainer->wanted())
    explainer->step(seg.from_ns == net::kExternalNs ? "(external host)"
                    : seg.proto == net::kProtoUdp ? "udp_send_skb"
                    : seg.proto == net::kProtoIcmp ? "icmp_send" : "tcp_transmit_skb",
                    fmt::format("{} > {} {}{}", net::to_string(net::endpoint{seg.saddr, seg.sport}),
                                net::to_string(net::endpoint{seg.daddr, seg.dport}), pkt_flags(seg),
                                lost ? " — lost on the link" : nowhere ? " — no route: dropped"
                                : delay ? fmt::format(", arrives after {}", format_duration(delay)) : ""));
  if (lost || nowhere) return;
  if (delay == 0) {  // zero-delay path: delivered within the sending call, same instant
    deliver(seg);
    return;
  }
  uint32_t slot;
  if (!free_pkts.empty()) { slot = free_pkts.back(); free_pkts.pop_back(); pkts[slot] = seg; }
  else { slot = uint32_t(pkts.size()); pkts.push_back(seg); }
  r.eng_.schedule({sat_add(r.w_.now, delay), engine::Prio::Wire, kPacket, slot, 0});
}

}  // namespace portsim::scenario
