#include "portsim/trace/pcap.h"

#include <algorithm>
#include <string>

#include "portsim/net/tcp.h"

namespace portsim::trace {

namespace {
constexpr uint32_t kPcapMagicNs = 0xa1b23c4d;  // pcap with nanosecond timestamps
constexpr uint32_t kLinktypeRaw = 101;         // LINKTYPE_RAW: the packet starts at the IP header
constexpr uint16_t kWindow = 64240;            // what Linux advertises in a SYN (tcp_select_initial_window, MSS 1460)
constexpr uint8_t kTtl = 64;                   // sysctl_ip_default_ttl; IPv6 hop_limit default (IPV6_DEFAULT_HOPLIMIT)
constexpr uint8_t kProtoTcp = 6, kProtoIcmpv6 = 58;
constexpr size_t kTcpHdr = 20, kUdpHdr = 8, kIcmpHdr = 8, kIp4Hdr = 20, kIp6Hdr = 40;
// net/ipv4/icmp.c __icmp_send(): an error is at most 576 bytes (RFC 1812); net/ipv6/icmp.c
// icmp6_send(): at most IPV6_MIN_MTU, 1280. What is left of it quotes the offending packet.
constexpr size_t kIcmpQuoteRoom = 576 - kIp4Hdr - kIcmpHdr, kIcmp6QuoteRoom = 1280 - kIp6Hdr - kIcmpHdr;

// The IP header fields that differ between the kinds of packet the model sends.
struct ip_kind {
  uint8_t proto;  // IPv4 protocol / IPv6 next header
  uint8_t tos;    // IPv4 TOS / IPv6 traffic class
  bool df;        // IPv4 "don't fragment"
};
// TCP and UDP sockets: tos 0, DF (ip_dont_fragment(): IP_PMTUDISC_WANT by default).
constexpr ip_kind kTcpIp{kProtoTcp, 0, true}, kUdpIp{net::kProtoUdp, 0, true};
// net/ipv4/icmp.c __icmp_send(): tos = RT_TOS(iph->tos) | IPTOS_PREC_INTERNETCONTROL (0xc0) for an
// error; icmp_init() sets the per-CPU ICMP sockets' pmtudisc to IP_PMTUDISC_DONT: no DF.
constexpr ip_kind kIcmpIp{net::kProtoIcmp, 0xc0, false};
// net/ipv6/icmp.c icmp6_send(): traffic class from the ICMPv6 socket (0).
constexpr ip_kind kIcmp6Ip{kProtoIcmpv6, 0, false};

void put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}
void put32(std::vector<uint8_t>& b, uint32_t v) {
  put16(b, uint16_t(v >> 16));
  put16(b, uint16_t(v));
}
void set16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = uint8_t(v >> 8);
  b[at + 1] = uint8_t(v);
}
void put_addr(std::vector<uint8_t>& b, const net::inet_addr& a, bool v4) {
  if (v4) {
    put32(b, a.v4_host());
    return;
  }
  for (int i = 0; i < 8; ++i) b.push_back(uint8_t(a.hi >> (56 - 8 * i)));
  for (int i = 0; i < 8; ++i) b.push_back(uint8_t(a.lo >> (56 - 8 * i)));
}
// RFC 1071 one's-complement sum of 16-bit big-endian words.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += uint32_t(p[i]) << 8 | p[i + 1];
  if (n & 1) acc += uint32_t(p[n - 1]) << 8;
  return acc;
}
uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return uint16_t(~acc);
}
void le32(std::string& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(char(uint8_t(v >> (8 * i))));
}
void le16(std::string& b, uint16_t v) {
  b.push_back(char(uint8_t(v)));
  b.push_back(char(uint8_t(v >> 8)));
}

// The IPv4 (20 bytes, with its checksum) or IPv6 (40 bytes) header in front of `len` bytes of
// `k.proto`. IPv4 ID and IPv6 flow label are 0: not modelled (README "Pictures").
void put_ip_header(std::vector<uint8_t>& b, const net::inet_addr& src, const net::inet_addr& dst, bool v4,
                   const ip_kind& k, size_t len) {
  const size_t at = b.size();
  if (v4) {
    put16(b, uint16_t(0x4500 | k.tos));
    put16(b, uint16_t(kIp4Hdr + len));
    put16(b, 0);  // id
    put16(b, k.df ? 0x4000 : 0);
    put16(b, uint16_t(kTtl << 8 | k.proto));
    put16(b, 0);  // header checksum, below
    put_addr(b, src, true);
    put_addr(b, dst, true);
    set16(b, at + 10, fold(sum16(b.data() + at, kIp4Hdr)));
  } else {
    put32(b, 0x60000000u | uint32_t(k.tos) << 20);
    put16(b, uint16_t(len));
    put16(b, uint16_t(k.proto << 8 | kTtl));
    put_addr(b, src, false);
    put_addr(b, dst, false);
  }
}
// The sum of the pseudo-header (RFC 793 / RFC 768 for IPv4, RFC 8200 8.1 for IPv6) of the IP
// header that starts at `ip`: both addresses, the protocol and the upper-layer length.
uint32_t pseudo_sum(const std::vector<uint8_t>& b, size_t ip, bool v4, uint8_t proto, size_t len) {
  const uint32_t acc = v4 ? sum16(b.data() + ip + 12, 8) : sum16(b.data() + ip + 8, 32);
  return acc + proto + uint32_t(len);
}

// IP + 20-byte TCP header (no options, no payload): ports, seq/ack, flags, window, checksum.
void tcp_packet(std::vector<uint8_t>& b, const net::segment& seg, bool v4) {
  const size_t ip = b.size();
  put_ip_header(b, seg.saddr, seg.daddr, v4, kTcpIp, kTcpHdr);
  const size_t tcp = b.size();
  put16(b, seg.sport);
  put16(b, seg.dport);
  put32(b, seg.seq);
  put32(b, seg.ack);
  put16(b, uint16_t(5u << 12 | seg.flags));  // data offset 5 words, flags
  put16(b, (seg.flags & net::TCPHDR_RST) ? 0 : kWindow);
  put16(b, 0);  // checksum, below
  put16(b, 0);  // urgent pointer
  set16(b, tcp + 16, fold(sum16(b.data() + tcp, kTcpHdr, pseudo_sum(b, ip, v4, kProtoTcp, kTcpHdr))));
}

// IP + 8-byte UDP header of a datagram from src:sport to dst:dport. The model carries no data
// sizes: the payload is empty (length 8). net/ipv4/udp.c udp_send_skb(): a checksum that comes
// out 0 is sent as 0xffff (CSUM_MANGLED_0; 0 would mean "no checksum", RFC 768).
void udp_datagram(std::vector<uint8_t>& b, const net::inet_addr& src, uint16_t sport, const net::inet_addr& dst,
                  uint16_t dport, bool v4) {
  const size_t ip = b.size();
  put_ip_header(b, src, dst, v4, kUdpIp, kUdpHdr);
  const size_t udp = b.size();
  put16(b, sport);
  put16(b, dport);
  put16(b, uint16_t(kUdpHdr));
  put16(b, 0);  // checksum, below
  const uint16_t c = fold(sum16(b.data() + udp, kUdpHdr, pseudo_sum(b, ip, v4, net::kProtoUdp, kUdpHdr)));
  set16(b, udp + 6, c ? c : 0xffff);
}
void udp_packet(std::vector<uint8_t>& b, const net::segment& seg, bool v4) {
  udp_datagram(b, seg.saddr, seg.sport, seg.daddr, seg.dport, v4);
}

// ICMP port unreachable (IPv4 type 3 code 3, RFC 792; ICMPv6 type 1 code 4, RFC 4443 3.1) from
// the host with the closed port back to the sender. The segment carries the error's addresses
// and the offending datagram's ports reversed (udp_rcv: reverse_of), so the quoted datagram
// went from daddr:dport to saddr:sport. __icmp_send / icmp6_send quote the offending packet
// from its IP header on, as much as fits (all of it: an empty datagram is 28 / 48 bytes).
// ICMPv4's checksum covers the ICMP message; ICMPv6's adds the pseudo-header (RFC 4443 2.3).
void icmp_packet(std::vector<uint8_t>& b, const net::segment& seg, bool v4) {
  std::vector<uint8_t> quote;
  udp_datagram(quote, seg.daddr, seg.dport, seg.saddr, seg.sport, v4);
  quote.resize(std::min(quote.size(), v4 ? kIcmpQuoteRoom : kIcmp6QuoteRoom));
  const size_t len = kIcmpHdr + quote.size();
  const size_t ip = b.size();
  put_ip_header(b, seg.saddr, seg.daddr, v4, v4 ? kIcmpIp : kIcmp6Ip, len);
  const size_t icmp = b.size();
  put16(b, v4 ? 0x0303 : 0x0104);  // type, code
  put16(b, 0);  // checksum, below
  put32(b, 0);  // unused
  b.insert(b.end(), quote.begin(), quote.end());
  const uint32_t acc = v4 ? 0 : pseudo_sum(b, ip, false, kProtoIcmpv6, len);
  set16(b, icmp + 2, fold(sum16(b.data() + icmp, len, acc)));
}
}  // namespace

uint16_t internet_checksum(const uint8_t* p, size_t n) { return fold(sum16(p, n)); }

std::vector<uint8_t> segment_packet(const net::segment& seg) {
  const bool v4 = seg.saddr.is_v4() && seg.daddr.is_v4();
  std::vector<uint8_t> b;
  b.reserve(kIp6Hdr + kIcmpHdr + kIp6Hdr + kUdpHdr);
  switch (seg.proto) {
    case net::kProtoUdp: udp_packet(b, seg, v4); break;
    case net::kProtoIcmp: icmp_packet(b, seg, v4); break;
    default: tcp_packet(b, seg, v4); break;
  }
  return b;
}

PcapWriter::PcapWriter(std::string path) {
  if (!out_.open(path)) return;
  f_ = out_.get();
  std::string h;
  le32(h, kPcapMagicNs);
  le16(h, 2);  // version 2.4
  le16(h, 4);
  le32(h, 0);  // thiszone
  le32(h, 0);  // sigfigs
  le32(h, 65535);  // snaplen
  le32(h, kLinktypeRaw);
  out_.write(h.data(), h.size());
}

bool PcapWriter::commit() {
  if (!f_) return false;
  f_ = nullptr;
  return out_.commit();
}

void PcapWriter::segment(const net::world& w, const net::segment& seg, Nanos, net::seg_fate fate) {
  if (!f_ || fate == net::seg_fate::no_route) return;  // never left the host
  const std::vector<uint8_t> p = segment_packet(seg);
  std::string r;
  le32(r, uint32_t(w.now / kNsPerSec));
  le32(r, uint32_t(w.now % kNsPerSec));
  le32(r, uint32_t(p.size()));
  le32(r, uint32_t(p.size()));
  r.append(reinterpret_cast<const char*>(p.data()), p.size());
  out_.write(r.data(), r.size());
}

}  // namespace portsim::trace
