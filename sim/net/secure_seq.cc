#include "portsim/net/secure_seq.h"

#include "portsim/base/md5.h"

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

// net/core/secure_seq.c (3.10 … 4.10): secure_ipv4_port_ephemeral().
uint32_t secure_ipv4_port_ephemeral_md5(uint32_t saddr, uint32_t daddr, uint16_t dport,
                                        const std::array<uint32_t, 16>& net_secret) {
  std::array<uint32_t, 4> hash{as_stored(saddr), as_stored(daddr),
                               uint32_t(__builtin_bswap16(dport)) ^ net_secret[14], net_secret[15]};
  md5_transform(hash, net_secret);
  return hash[0];
}

// net/core/secure_seq.c (3.10 … 4.10): secure_ipv6_port_ephemeral().
uint32_t secure_ipv6_port_ephemeral_md5(const inet_addr& saddr, const inet_addr& daddr, uint16_t dport,
                                        const std::array<uint32_t, 16>& net_secret) {
  auto word = [](const inet_addr& a, int i) {  // the i-th __be32 of the address, as a LE CPU loads it
    const uint64_t half = i < 2 ? a.hi : a.lo;
    return as_stored(uint32_t(half >> (i % 2 ? 0 : 32)));
  };
  std::array<uint32_t, 4> hash{word(saddr, 0), word(saddr, 1), word(saddr, 2), word(saddr, 3)};
  std::array<uint32_t, 16> secret = net_secret;
  for (int i = 0; i < 4; ++i) secret[size_t(i)] += word(daddr, i);
  secret[4] += uint32_t(__builtin_bswap16(dport));
  md5_transform(hash, secret);
  return hash[0];
}

// net/core/secure_seq.c (4.11, 7cd23e5300c1): siphash_3u32(saddr, daddr, dport) — siphash()
// of the three words as 12 little-endian bytes.
uint64_t secure_ipv4_port_ephemeral_noseed(uint32_t saddr, uint32_t daddr, uint16_t dport,
                                           const siphash_key& net_secret) {
  const uint32_t w[3] = {as_stored(saddr), as_stored(daddr), uint32_t(__builtin_bswap16(dport))};
  uint8_t m[12];
  for (int i = 0; i < 12; ++i) m[i] = uint8_t(w[i / 4] >> (8 * (i % 4)));
  return siphash(m, sizeof m, net_secret);
}

uint64_t secure_ipv6_port_ephemeral_noseed(const inet_addr& saddr, const inet_addr& daddr, uint16_t dport,
                                           const siphash_key& net_secret) {
  uint8_t m[34];
  auto put_addr = [](uint8_t* p, const inet_addr& a) {
    for (int i = 0; i < 8; ++i) p[i] = uint8_t(a.hi >> (56 - 8 * i));
    for (int i = 0; i < 8; ++i) p[8 + i] = uint8_t(a.lo >> (56 - 8 * i));
  };
  put_addr(m, saddr);
  put_addr(m + 16, daddr);
  m[32] = uint8_t(dport >> 8);  // __be16
  m[33] = uint8_t(dport);
  return siphash(m, sizeof m, net_secret);
}

// net/core/secure_seq.c: secure_tcp_seq() and seq_scale() (6.18).
uint32_t secure_tcp_seq_hash(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport,
                             const siphash_key& net_secret) {
  const uint32_t ports = uint32_t(__builtin_bswap16(sport)) << 16 | __builtin_bswap16(dport);  // __be16s
  return uint32_t(siphash_3u32(as_stored(saddr), as_stored(daddr), ports, net_secret));
}

uint32_t secure_tcp_seq(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint64_t realtime_ns,
                        const siphash_key& net_secret) {
  return seq_scale(secure_tcp_seq_hash(saddr, daddr, sport, dport, net_secret), realtime_ns);
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
