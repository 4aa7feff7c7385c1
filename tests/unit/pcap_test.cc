// --pcap's packet bytes (sim/trace/pcap.cc segment_packet) against what Linux put on the wire:
// a live capture on this machine (6.18.44, 2026-11-30, `unshare -n`, lo up, `tcpdump -i lo -w`,
// python3 sending one empty datagram from an unconnected UDP socket to the closed port 5999 of
// 127.0.0.1 and of ::1; bytes copied from `tcpdump -xx`). Fields portsim does not model are masked
// and named: the IPv4 ID, the IPv6 flow label, and every checksum (a field that depends on a
// masked one, or that loopback leaves partial: CHECKSUM_PARTIAL). Checksums are checked on
// their own: RFC 1071 (the example of its section 3), and the UDP checksums that tcpdump computed
// for the live datagrams ("[bad udp cksum 0xfe1b -> 0x4b10!]": the correct value after the arrow).
#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <vector>

#include "portsim/net/tcp.h"
#include "portsim/trace/pcap.h"

namespace {

using namespace portsim;
using bytes = std::vector<uint8_t>;

const net::inet_addr kLo4 = net::inet_addr::v4(0x7f000001), kLo6{0, 1};

net::segment udp(const net::inet_addr& a, uint16_t sport, uint16_t dport) {
  net::segment s;
  s.proto = net::kProtoUdp;
  s.saddr = s.daddr = a;
  s.sport = sport;
  s.dport = dport;
  return s;
}
// What udp_rcv() sends for it: reverse_of (addresses and ports swapped), proto ICMP.
net::segment icmp_for(const net::segment& d) {
  net::segment s = d;
  s.proto = net::kProtoIcmp;
  std::swap(s.saddr, s.daddr);
  std::swap(s.sport, s.dport);
  return s;
}
// The bytes with the positions in `masked` zeroed.
bytes mask(bytes b, const std::set<size_t>& masked) {
  for (size_t i : masked) b.at(i) = 0;
  return b;
}
uint16_t at16(const bytes& b, size_t i) { return uint16_t(b.at(i) << 8 | b.at(i + 1)); }
// An IPv6 pseudo-header (RFC 8200 8.1) for `len` bytes of next header `nh` between the
// addresses of the IPv6 header at `ip`, followed by those bytes.
bytes with_pseudo6(const bytes& b, size_t ip, uint8_t nh, size_t len) {
  bytes p;
  p.reserve(40 + len);
  p.insert(p.end(), b.begin() + long(ip) + 8, b.begin() + long(ip) + 40);
  for (const uint8_t x : {0, 0, int(len >> 8), int(len & 0xff), 0, 0, 0, int(nh)}) p.push_back(x);
  p.insert(p.end(), b.begin() + long(ip) + 40, b.begin() + long(ip) + 40 + long(len));
  return p;
}

// tcpdump -xx of the live capture, Ethernet header (14 bytes of the lo capture) left out.
const bytes kLiveUdp4 = {0x45, 0x00, 0x00, 0x1c, 0x2e, 0x7f, 0x40, 0x00, 0x40, 0x11, 0x0e, 0x50, 0x7f, 0x00,
                         0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x9f, 0x5c, 0x17, 0x6f, 0x00, 0x08, 0xfe, 0x1b};
const bytes kLiveIcmp4 = {0x45, 0xc0, 0x00, 0x38, 0x0a, 0x65, 0x00, 0x00, 0x40, 0x01, 0x71, 0x9e, 0x7f, 0x00,
                          0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x03, 0x03, 0x48, 0x0d, 0x00, 0x00, 0x00, 0x00,
                          0x45, 0x00, 0x00, 0x1c, 0x2e, 0x7f, 0x40, 0x00, 0x40, 0x11, 0x0e, 0x50, 0x7f, 0x00,
                          0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x9f, 0x5c, 0x17, 0x6f, 0x00, 0x08, 0xfe, 0x1b};
bytes ip6(uint32_t vtcfl, uint16_t plen, uint8_t nh) {
  bytes b = {uint8_t(vtcfl >> 24), uint8_t(vtcfl >> 16), uint8_t(vtcfl >> 8), uint8_t(vtcfl),
             uint8_t(plen >> 8),   uint8_t(plen),         nh,                  64};
  for (int a = 0; a < 2; ++a)  // ::1, ::1
    for (int i = 0; i < 16; ++i) b.push_back(i == 15 ? 1 : 0);
  return b;
}
bytes cat(bytes a, const bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
const bytes kLiveUdp6 = cat(ip6(0x60079879, 8, 17), {0x9a, 0xb5, 0x17, 0x6f, 0x00, 0x08, 0x00, 0x1b});
const bytes kLiveIcmp6 = cat(cat(ip6(0x600cbf94, 56, 58), {0x01, 0x04, 0x42, 0x75, 0x00, 0x00, 0x00, 0x00}), kLiveUdp6);

}  // namespace

TEST_CASE("internet_checksum: RFC 1071 section 3's example and its odd-length rule", "[pcap]") {
  // RFC 1071 3: 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (end-around carry); the checksum is ~ddf2.
  const bytes ex = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(trace::internet_checksum(ex.data(), ex.size()) == 0x220d);
  // RFC 1071 1(2): an odd count is padded with a zero byte.
  const bytes odd = {0x00, 0x01, 0xf2};
  CHECK(trace::internet_checksum(odd.data(), odd.size()) == uint16_t(~(0x0001 + 0xf200)));
  // A header holding its own correct checksum sums to 0 (RFC 1071 1(3)): the live one does.
  CHECK(trace::internet_checksum(kLiveUdp4.data(), 20) == 0);
}

TEST_CASE("UDP over IPv4: the live datagram's header, ID aside", "[pcap]") {
  const bytes b = trace::segment_packet(udp(kLo4, 40796, 5999));
  // tos 0, length 28, DF, TTL 64, protocol 17, addresses, ports, UDP length 8.
  CHECK(mask(b, {4, 5, 10, 11, 26, 27}) == mask(kLiveUdp4, {4, 5, 10, 11, 26, 27}));
  CHECK(at16(b, 4) == 0);                                 // IP ID: not modelled (live: 0x2e7f)
  CHECK(trace::internet_checksum(b.data(), 20) == 0);     // IPv4 header checksum
  CHECK(at16(b, 26) == 0x4b10);                            // tcpdump's correct value for the live datagram
}

TEST_CASE("UDP over IPv6: the live datagram's header, flow label aside", "[pcap]") {
  const bytes b = trace::segment_packet(udp(kLo6, 39605, 5999));
  const std::set<size_t> unmodelled = {1, 2, 3, 46, 47};  // flow label (live 0x79879), checksum
  CHECK(mask(b, unmodelled) == mask(kLiveUdp6, unmodelled));
  CHECK(at16(b, 46) == 0x4db8);  // tcpdump's correct value for the live datagram
}

TEST_CASE("UDP: a checksum that comes out 0 is sent as 0xffff", "[pcap]") {
  // net/ipv4/udp.c udp_send_skb(): CSUM_MANGLED_0 (RFC 768: 0 means "no checksum"). Pseudo-header
  // 7f00+0001+7f00+0001+0011+0008 plus length 0008 and sport 0x1000 fold to 0x0e24; dport 0xf1db
  // brings the sum to 0xffff, whose complement is 0.
  const bytes b = trace::segment_packet(udp(kLo4, 0x1000, 0xf1db));
  CHECK(at16(b, 26) == 0xffff);
}

TEST_CASE("ICMP port unreachable over IPv4: the live error, quote included", "[pcap]") {
  const net::segment d = udp(kLo4, 40796, 5999);
  const bytes b = trace::segment_packet(icmp_for(d));
  // Outer: tos 0xc0, length 56, no DF, TTL 64, protocol 1; type 3 code 3; then the datagram's
  // 28 bytes. Masked: both IDs (live 0x0a65, 0x2e7f), both header checksums, the ICMP checksum,
  // the quoted UDP checksum (live: loopback's partial 0xfe1b).
  const std::set<size_t> unmodelled = {4, 5, 10, 11, 22, 23, 32, 33, 38, 39, 54, 55};
  REQUIRE(b.size() == kLiveIcmp4.size());
  CHECK(mask(b, unmodelled) == mask(kLiveIcmp4, unmodelled));
  CHECK(trace::internet_checksum(b.data(), 20) == 0);                   // outer IPv4 header
  CHECK(trace::internet_checksum(b.data() + 20, b.size() - 20) == 0);  // ICMP (RFC 792: message only)
  // The quote is the datagram portsim wrote for d, byte for byte.
  const bytes sent = trace::segment_packet(d);
  CHECK(bytes(b.begin() + 28, b.end()) == sent);
}

TEST_CASE("ICMPv6 port unreachable: the live error, quote included", "[pcap]") {
  const net::segment d = udp(kLo6, 39605, 5999);
  const bytes b = trace::segment_packet(icmp_for(d));
  // Outer: traffic class 0, payload 56, next header 58, hop limit 64; type 1 code 4; then the
  // datagram's 48 bytes. Masked: both flow labels (live 0xcbf94, 0x79879), both checksums.
  const std::set<size_t> unmodelled = {1, 2, 3, 42, 43, 49, 50, 51, 94, 95};
  REQUIRE(b.size() == kLiveIcmp6.size());
  CHECK(mask(b, unmodelled) == mask(kLiveIcmp6, unmodelled));
  // RFC 4443 2.3: the checksum covers the pseudo-header and the ICMPv6 message.
  const bytes p = with_pseudo6(b, 0, 58, 56);
  CHECK(trace::internet_checksum(p.data(), p.size()) == 0);
  // The live error's checksum verifies the same way (a check of with_pseudo6 itself).
  const bytes live = with_pseudo6(kLiveIcmp6, 0, 58, 56);
  CHECK(trace::internet_checksum(live.data(), live.size()) == 0);
  CHECK(bytes(b.begin() + 48, b.end()) == trace::segment_packet(d));
}
