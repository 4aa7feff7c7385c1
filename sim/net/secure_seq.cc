#include "portsim/net/secure_seq.h"

namespace portsim::net {

namespace {
// The u32 a little-endian CPU reads from 4 bytes stored in network order.
constexpr uint32_t as_stored(uint32_t host) { return __builtin_bswap32(host); }
}  // namespace

// net/core/secure_seq.c: secure_ipv4_port_ephemeral() (6.18).
uint64_t secure_ipv4_port_ephemeral(uint32_t saddr, uint32_t daddr, uint16_t dport,
                                    uint32_t timeseed, const siphash_key& net_secret) {
  const uint32_t dport_word = __builtin_bswap16(dport);  // __be16 zero-extended
  return siphash_4u32(as_stored(saddr), as_stored(daddr), dport_word, timeseed, net_secret);
}

// net/core/secure_seq.c: secure_ipv6_port_ephemeral() (6.18).
uint64_t secure_ipv6_port_ephemeral(const inet_addr& saddr, const inet_addr& daddr, uint16_t dport,
                                    uint32_t timeseed, const siphash_key& net_secret) {
  uint8_t m[38];
  auto put_addr = [](uint8_t* p, const inet_addr& a) {
    for (int i = 0; i < 8; ++i) p[i] = uint8_t(a.hi >> (56 - 8 * i));
    for (int i = 0; i < 8; ++i) p[8 + i] = uint8_t(a.lo >> (56 - 8 * i));
  };
  put_addr(m, saddr);
  put_addr(m + 16, daddr);
  for (int i = 0; i < 4; ++i) m[32 + i] = uint8_t(timeseed >> (8 * i));  // little-endian u32
  m[36] = uint8_t(dport >> 8);                                            // __be16
  m[37] = uint8_t(dport);
  return siphash(m, sizeof m, net_secret);
}

// net/core/secure_seq.c: secure_tcp_seq() and seq_scale() (6.18).
uint32_t secure_tcp_seq(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint64_t realtime_ns,
                        const siphash_key& net_secret) {
  const uint32_t ports = uint32_t(__builtin_bswap16(sport)) << 16 | __builtin_bswap16(dport);  // __be16s
  const uint32_t hash = uint32_t(siphash_3u32(as_stored(saddr), as_stored(daddr), ports, net_secret));
  return seq_scale(hash, realtime_ns);
}

// net/core/secure_seq.c: secure_tcpv6_seq() (6.18).
uint32_t secure_tcpv6_seq(const inet_addr& saddr, const inet_addr& daddr, uint16_t sport, uint16_t dport,
                          uint64_t realtime_ns, const siphash_key& net_secret) {
  uint8_t m[36];
  auto put_addr = [](uint8_t* p, const inet_addr& a) {
    for (int i = 0; i < 8; ++i) p[i] = uint8_t(a.hi >> (56 - 8 * i));
    for (int i = 0; i < 8; ++i) p[8 + i] = uint8_t(a.lo >> (56 - 8 * i));
  };
  put_addr(m, saddr);
  put_addr(m + 16, daddr);
  m[32] = uint8_t(sport >> 8);
  m[33] = uint8_t(sport);
  m[34] = uint8_t(dport >> 8);
  m[35] = uint8_t(dport);
  return seq_scale(uint32_t(siphash(m, sizeof m, net_secret)), realtime_ns);
}

}  // namespace portsim::net
