// --pcap: every segment of a run as a capture file that tcpdump and Wireshark read.
// Nanosecond pcap (magic 0xa1b23c4d), LINKTYPE_RAW (101): each record is an IPv4 or IPv6
// header and a 20-byte TCP header (ports, seq/ack, flags, window, checksums), an 8-byte UDP
// header (empty payload), or an ICMP / ICMPv6 port unreachable quoting the datagram, stamped
// with the virtual time at which the segment left its host. Segments lost on a link are in it (they
// left); segments with no route are not. Written through OutputFile (complete or absent).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "portsim/base/output_file.h"
#include "portsim/net/observer.h"

namespace portsim::trace {

class PcapWriter final : public net::observer {
 public:
  explicit PcapWriter(std::string path);
  bool ok() const { return f_ != nullptr; }
  bool commit();
  void abandon() { out_.abandon(); f_ = nullptr; }
  int error() const { return out_.error(); }

  void bind_bucket(const net::world&, net::table_op, uint32_t) override {}
  void bind2_bucket(const net::world&, net::table_op, uint32_t) override {}
  void ehash(const net::world&, net::table_op, net::sock_id) override {}
  void state_change(const net::world&, net::sock_id, net::tcp_state, net::tcp_state) override {}
  bool explaining() const override { return false; }
  void explain(std::string_view, std::string_view) override {}
  void segment(const net::world&, const net::segment&, Nanos arrive, net::seg_fate) override;

 private:
  OutputFile out_;
  std::FILE* f_ = nullptr;
};

// The IPv4/IPv6 + TCP / UDP / ICMP bytes of one segment (no options, no payload): what
// PcapWriter stores.
std::vector<uint8_t> segment_packet(const net::segment& seg);
// RFC 1071: the one's complement of the one's-complement sum of n bytes as 16-bit big-endian
// words (an odd last byte padded with zero). Over a header that holds its checksum: 0.
uint16_t internet_checksum(const uint8_t* p, size_t n);

}  // namespace portsim::trace
