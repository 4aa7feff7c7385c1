// net/ipv4/tcp_output.c — building and sending segments, and tcp_connect().
#include <algorithm>

#include <fmt/format.h>

#include "portsim/net/observer.h"
#include "portsim/net/secure_seq.h"
#include "portsim/net/tcp.h"
#include "portsim/net/timer_wheel.h"
#include "tcp_internal.h"

namespace portsim::net {

std::string tcp_flags_str(uint8_t f) {
  std::string s;
  auto add = [&](uint8_t bit, const char* name) {
    if (!(f & bit)) return;
    if (!s.empty()) s += '|';
    s += name;
  };
  add(TCPHDR_SYN, "SYN");
  add(TCPHDR_FIN, "FIN");
  add(TCPHDR_RST, "RST");
  add(TCPHDR_ACK, "ACK");
  return s;
}

segment reverse_of(const segment& in, uint16_t from_ns) {
  segment out;
  out.saddr = in.daddr;
  out.daddr = in.saddr;
  out.sport = in.dport;
  out.dport = in.sport;
  out.from_ns = from_ns;
  out.to_ns = in.from_ns;
  return out;
}

segment segment_of(const sock& s) {
  segment seg;
  seg.saddr = s.rcv_saddr;
  seg.daddr = s.daddr;
  seg.sport = s.sport;  // inet_sport: an RST sent after tcp_set_state(CLOSE) gave the port back
  seg.dport = s.dport;
  seg.from_ns = s.netns;
  return seg;
}

// Sends a segment from sk with its current sequence state.
void tcp_send(world& w, sock_id id, uint8_t flags) {
  const sock& s = w.sk(id);
  // A pure ACK or an RST toward a quiet external peer: it would ignore it and nothing watches.
  if (s.peer_quiet && !(flags & (TCPHDR_SYN | TCPHDR_FIN))) return;
  segment seg = segment_of(s);
  // No data: a SYN (the ISN) and a FIN each occupy snd_nxt - 1.
  seg.seq = (flags & (TCPHDR_SYN | TCPHDR_FIN)) ? s.snd_nxt - 1 : s.snd_nxt;
  seg.ack = (flags & TCPHDR_ACK) ? s.rcv_nxt : 0;
  seg.seq_lazy = s.snd_lazy;
  seg.ack_lazy = (flags & TCPHDR_ACK) && s.rcv_lazy;
  seg.flags = flags;
  // Timestamps: a SYN offers them when net.ipv4.tcp_timestamps is on; afterwards both ends use
  // them only if both did (tstamp_ok, kept as ts_recent). RSTs carry none.
  if (flags == TCPHDR_SYN) seg.ts = w.ns_of(id).sys.tcp_timestamps != 0;
  else seg.ts = s.ts_recent && !(flags & TCPHDR_RST);
  if (w.net_wire) w.net_wire->xmit(seg);
}

// net/ipv4/tcp_output.c: tcp_send_fin() — the FIN takes a sequence number before it leaves,
// so an ACK that comes back within the send (zero-delay path) already acknowledges it.
void tcp_send_fin(world& w, sock_id id) {
  ++w.sk(id).snd_nxt;
  tcp_send(w, id, TCPHDR_FIN | TCPHDR_ACK);
}

// net/ipv4/tcp_ipv4.c: tcp_v4_send_reset() — a RST answering `in` (no socket needed).
void tcp_v4_send_reset(world& w, uint16_t ns, const segment& in) {
  if (in.flags & TCPHDR_RST) return;
  segment seg = reverse_of(in, ns);
  if (in.flags & TCPHDR_ACK) {
    seg.seq = in.ack;
    seg.seq_lazy = in.ack_lazy;
    seg.flags = TCPHDR_RST;
  } else {
    seg.ack = in.seq + ((in.flags & TCPHDR_SYN) ? 1 : 0) + ((in.flags & TCPHDR_FIN) ? 1 : 0);
    seg.ack_lazy = in.seq_lazy;
    seg.flags = TCPHDR_RST | TCPHDR_ACK;
  }
  if (w.net_wire) w.net_wire->xmit(seg);
}

// net/ipv4/tcp_ipv4.c: tcp_v4_init_seq() / tcp_v6_init_seq() — the ISN of a connection from
// (saddr, sport) to (daddr, dport) on machine `m`: secure_tcp_seq / secure_tcpv6_seq.
uint32_t tcp_init_seq(const siphash_key& net_secret, uint64_t realtime_ns, const inet_addr& saddr, uint16_t sport,
                      const inet_addr& daddr, uint16_t dport) {
  if (saddr.is_v4() && daddr.is_v4())
    return secure_tcp_seq(saddr.v4_host(), daddr.v4_host(), sport, dport, realtime_ns, net_secret);
  return secure_tcpv6_seq(saddr, daddr, sport, dport, realtime_ns, net_secret);
}

uint32_t tcp_init_seq(const world& w, uint16_t ns, const inet_addr& saddr, uint16_t sport, const inet_addr& daddr,
                      uint16_t dport) {
  const machine& m = w.machines[w.nets[ns].machine];
  return tcp_init_seq(m.net_secret, m.realtime_ns(w.now), saddr, sport, daddr, dport);
}

// The secret whoever sits in netns `ns` keys its ISNs with (kExternalNs: the external hosts').
static const siphash_key& isn_secret(const world& w, uint16_t ns) {
  return ns == kExternalNs ? w.external_secret : w.machines[w.nets[ns].machine].net_secret;
}

// The half of an IPv4 ISN that lazy ones leave out: secure_tcp_seq_hash() of the sender's 4-tuple.
static uint32_t isn_hash(const world& w, uint16_t ns, const inet_addr& saddr, uint16_t sport,
                         const inet_addr& daddr, uint16_t dport) {
  return secure_tcp_seq_hash(saddr.v4_host(), daddr.v4_host(), sport, dport, isn_secret(w, ns));
}

void tcp_seq_resolve(const world& w, sock& s) {
  if (s.snd_lazy) s.snd_nxt += isn_hash(w, s.netns, s.rcv_saddr, s.sport, s.daddr, s.dport);
  if (s.rcv_lazy) s.rcv_nxt += isn_hash(w, kExternalNs, s.daddr, s.dport, s.rcv_saddr, s.sport);
  s.snd_lazy = s.rcv_lazy = false;
}

segment tcp_seq_resolved(const world& w, const segment& in, uint16_t to_ns) {
  segment seg = in;
  if (seg.seq_lazy) seg.seq += isn_hash(w, seg.from_ns, seg.saddr, seg.sport, seg.daddr, seg.dport);
  if (seg.ack_lazy) seg.ack += isn_hash(w, to_ns, seg.daddr, seg.dport, seg.saddr, seg.sport);
  seg.seq_lazy = seg.ack_lazy = false;
  return seg;
}

void tcp_write_seq_init(world& w, sock& s, const inet_addr& daddr, uint16_t dport) {
  const int ext = s.rcv_saddr.is_v4() && daddr.is_v4() && s.daddr == daddr && s.sport == s.num
                      ? w.find_external(daddr, dport) : -1;
  if (ext >= 0 && w.externals[size_t(ext)].unwatched) {
    s.snd_nxt = seq_scale(0, w.machine_of(w.nets[s.netns]).realtime_ns(w.now));
    s.snd_lazy = true;
    return;
  }
  s.snd_nxt = tcp_init_seq(w, s.netns, s.rcv_saddr, s.num, daddr, dport);
}

void tcp_external_isn(const world& w, const segment& in, segment& out) {
  const uint64_t realtime = w.external_realtime0 + uint64_t(w.now);
  if (in.seq_lazy) {  // only an IPv4 connect starts lazy
    out.seq = seq_scale(0, realtime);
    out.seq_lazy = true;
    return;
  }
  out.seq = tcp_init_seq(w.external_secret, realtime, out.saddr, out.sport, out.daddr, out.dport);
}

// sk_reset_timer() / mod_timer(): the timer is due `after` from now, in jiffies, and runs at
// the tick its timer-wheel bucket expires (kernel/time/timer.c; see timer_wheel.h).
void arm_timer(world& w, sock_id id, timer_kind kind, Nanos after) {
  const uint32_t gen = ++w.sk(id).timer_gen;
  if (!w.timers) return;
  const machine& m = w.machine_of(w.ns_of(id));
  const uint64_t now_j = m.jiffies(w.now);
  const uint64_t expires = now_j + nanos_to_jiffies(after, m.hz);
  const uint64_t fire_j = timer_wheel_expiry(expires, now_j, m.hz);
  // The first instant at which jiffies reads fire_j.
  const unsigned __int128 num = (unsigned __int128)(fire_j - m.jiffies0) * kNsPerSec;
  const Nanos at = Nanos((num + m.hz - 1) / m.hz);
  w.timers->arm(at < w.now ? w.now : at, kind, id, gen);
}

uint32_t now_ms(const world& w) { return uint32_t(w.now / kNsPerMs); }

Nanos jiffies_to_nanos(world& w, sock_id id, uint64_t j) {
  const uint32_t hz = w.machine_of(w.ns_of(id)).hz;
  return Nanos(((unsigned __int128)j * kNsPerSec + hz - 1) / hz);
}

// The first RTT sample m (the handshake: SYN → SYN-ACK, or SYN-ACK → ACK): tcp_rtt_estimator()
// starts srtt = m, rttvar = max(2m, tcp_rto_min 200 ms), so tcp_set_rto() gives
// icsk_rto = m + max(2m, 200 ms), at most icsk_rto_max. Karn: after a retransmission there is
// no sample without timestamps, and tcp_init_metrics() falls back to TCP_TIMEOUT_FALLBACK (3 s);
// with timestamps the kernel measures from the last retransmission, which portsim does not
// keep, so it takes the fallback too.
void tcp_synack_rtt_meas(world& w, sock_id id) {
  sock& s = w.sk(id);
  if (s.retransmits) {
    s.rto_ms = 3000;
    return;
  }
  const uint64_t m_us = uint64_t(now_ms(w) - s.retrans_stamp) * 1000;
  const uint64_t rto_us = m_us + std::max<uint64_t>(2 * m_us, 200000);
  const uint32_t cap = s.rto_max_ms ? s.rto_max_ms : 120000;
  s.rto_ms = uint32_t(std::min<uint64_t>((rto_us + 999) / 1000, cap));
}

// net/ipv4/tcp_output.c: tcp_connect() — tcp_connect_init() sets icsk_rto =
// TCP_TIMEOUT_INIT (1 s); the SYN goes out and ICSK_TIME_RETRANS is armed for one RTO.
void tcp_connect(world& w, sock_id id) {
  sock& s = w.sk(id);
  s.rto_ms = TCP_TIMEOUT_INIT_MS;
  s.retransmits = 0;
  s.total_rto = 0;
  s.retrans_stamp = now_ms(w);
  s.snd_nxt += 1;  // tcp_connect_init(): snd_nxt = write_seq; the SYN takes one
  s.rcv_nxt = 0;
  s.rcv_lazy = false;
  s.peer_quiet = false;  // until this peer's SYN-ACK says otherwise
  // The kernel arms the timer, then sends. A zero-delay path answers inside tcp_send(), so we
  // arm afterwards, only if still waiting and nothing re-armed it meanwhile (an unacceptable
  // ACK re-arms it at TCP_TIMEOUT_MIN) — the same expiry, without a dead heap entry.
  const uint32_t gen = s.timer_gen;
  w.syn_sender = id;
  tcp_send(w, id, TCPHDR_SYN);
  w.syn_sender = kNone;
  if (w.sk(id).state == tcp_state::SYN_SENT && w.sk(id).timer_gen == gen)
    arm_timer(w, id, timer_kind::retransmit, Nanos(TCP_TIMEOUT_INIT_MS) * kNsPerMs);
}

}  // namespace portsim::net
