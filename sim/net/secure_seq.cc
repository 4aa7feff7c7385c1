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

}  // namespace portsim::net
