#include "portsim/trace/pcap.h"

#include <string>

#include "portsim/net/tcp.h"

namespace portsim::trace {

namespace {
constexpr uint32_t kPcapMagicNs = 0xa1b23c4d;  // pcap with nanosecond timestamps
constexpr uint32_t kLinktypeRaw = 101;         // LINKTYPE_RAW: the packet starts at the IP header
constexpr uint16_t kWindow = 64240;            // what Linux advertises in a SYN (tcp_select_initial_window, MSS 1460)

void put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}
void put32(std::vector<uint8_t>& b, uint32_t v) {
  put16(b, uint16_t(v >> 16));
  put16(b, uint16_t(v));
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
}  // namespace

std::vector<uint8_t> segment_packet(const net::segment& seg) {
  const bool v4 = seg.saddr.is_v4() && seg.daddr.is_v4();
  std::vector<uint8_t> b;
  b.reserve(60);
  if (v4) {  // IPv4, 20 bytes: DF set, TTL 64, protocol 6
    put16(b, 0x4500);
    put16(b, 40);
    put16(b, 0);       // id
    put16(b, 0x4000);  // DF
    put16(b, 0x4006);  // TTL 64, TCP
    put16(b, 0);       // header checksum, below
    put_addr(b, seg.saddr, true);
    put_addr(b, seg.daddr, true);
    const uint16_t c = fold(sum16(b.data(), 20));
    b[10] = uint8_t(c >> 8);
    b[11] = uint8_t(c);
  } else {  // IPv6, 40 bytes: payload 20, next header 6, hop limit 64
    put32(b, 0x60000000);
    put16(b, 20);
    put16(b, 0x0640);
    put_addr(b, seg.saddr, false);
    put_addr(b, seg.daddr, false);
  }
  const size_t tcp = b.size();
  put16(b, seg.sport);
  put16(b, seg.dport);
  put32(b, seg.seq);
  put32(b, seg.ack);
  put16(b, uint16_t(5u << 12 | seg.flags));  // data offset 5 words, flags
  put16(b, (seg.flags & net::TCPHDR_RST) ? 0 : kWindow);
  put16(b, 0);  // checksum, below
  put16(b, 0);  // urgent pointer
  // Pseudo-header: addresses, protocol, TCP length (20).
  const size_t alen = v4 ? 4 : 16;
  const uint8_t* src = b.data() + (v4 ? 12 : 8);
  uint32_t acc = sum16(src, 2 * alen);
  acc += 6 + 20;
  acc = sum16(b.data() + tcp, 20, acc);
  const uint16_t c = fold(acc);
  b[tcp + 16] = uint8_t(c >> 8);
  b[tcp + 17] = uint8_t(c);
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
  if (seg.proto != 0) return;  // TCP segments only: UDP datagrams and ICMP errors are not written yet
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
