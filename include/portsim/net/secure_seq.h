// net/core/secure_seq.c: the SipHash port offset that decides where connect() starts looking,
// and the initial sequence numbers (secure_tcp_seq).
#pragma once
#include <array>
#include <cstdint>

#include "portsim/base/siphash.h"
#include "portsim/net/inet_addr.h"

namespace portsim::net {

// include/net/secure_seq.h: EPHEMERAL_PORT_SHUFFLE_PERIOD = 10 * HZ ("tcp: resalt the secret
// every 10 seconds", 4dfa9b438ee3, 5.18).
constexpr uint32_t ephemeral_timeseed(uint64_t jiffies, uint32_t hz) {
  return uint32_t(jiffies / (10ull * hz));
}

// net/core/secure_seq.c: secure_ipv4_port_ephemeral() — siphash_4u32(saddr, daddr, dport,
// timeseed) keyed by net_secret. Addresses in host order here; the kernel hashes them as stored
// (network byte order), which is what this function reproduces on a little-endian machine.
uint64_t secure_ipv4_port_ephemeral(uint32_t saddr, uint32_t daddr, uint16_t dport,
                                    uint32_t timeseed, const siphash_key& net_secret);

// net/core/secure_seq.c: secure_ipv6_port_ephemeral() — siphash() over the 38 bytes
// saddr(16) ‖ daddr(16) ‖ timeseed (u32, host order) ‖ dport (network order).
uint64_t secure_ipv6_port_ephemeral(const inet_addr& saddr, const inet_addr& daddr, uint16_t dport,
                                    uint32_t timeseed, const siphash_key& net_secret);

// The older port offsets, by era (kernel_profile.h: port_hash). Addresses in host order.
// ≤ 4.10 net/core/secure_seq.c: md5_transform() of {saddr, daddr, dport ^ secret[14],
// secret[15]} keyed by the 16 net_secret words; hash[0] is the offset (32 bit).
uint32_t secure_ipv4_port_ephemeral_md5(uint32_t saddr, uint32_t daddr, uint16_t dport,
                                        const std::array<uint32_t, 16>& net_secret);
// ≤ 4.10 IPv6: md5_transform() of saddr, keyed by net_secret plus daddr (words 0-3) and dport
// (word 4). Layout recalled from the 3.x source, not checked byte for byte (only the seeded
// start point depends on it).
uint32_t secure_ipv6_port_ephemeral_md5(const inet_addr& saddr, const inet_addr& daddr, uint16_t dport,
                                        const std::array<uint32_t, 16>& net_secret);
// 4.11 (7cd23e5300c1) to the 2022 changes: siphash_3u32(saddr, daddr, dport) — 64 bits; the
// kernel returned it as u32 until b2d057560b81. IPv6: siphash over saddr ‖ daddr ‖ dport (34 bytes).
uint64_t secure_ipv4_port_ephemeral_noseed(uint32_t saddr, uint32_t daddr, uint16_t dport,
                                           const siphash_key& net_secret);
uint64_t secure_ipv6_port_ephemeral_noseed(const inet_addr& saddr, const inet_addr& daddr, uint16_t dport,
                                           const siphash_key& net_secret);

// net/core/secure_seq.c: seq_scale() — the hash plus ktime_get_real_ns() >> 6 (a 64 ns clock,
// wrapping every 274 s). `realtime_ns` is the machine's CLOCK_REALTIME (machine::realtime_ns).
constexpr uint32_t seq_scale(uint32_t hash, uint64_t realtime_ns) { return hash + uint32_t(realtime_ns >> 6); }

// net/core/secure_seq.c: secure_tcp_seq() — the low 32 bits of siphash_3u32(saddr, daddr,
// sport << 16 | dport) keyed by net_secret (addresses and ports as stored, network order),
// through seq_scale(). Arguments are from the sender's side: its own address and port first.
// (Later kernels fold this into secure_tcp_seq_and_ts_off(); the seq half is unchanged.)
uint32_t secure_tcp_seq(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint64_t realtime_ns,
                        const siphash_key& net_secret);
// secure_tcp_seq() without seq_scale()'s clock: the hash half alone (secure_tcp_seq is this
// plus uint32(realtime_ns >> 6)). portsim adds it late for ISNs nobody has looked at yet.
uint32_t secure_tcp_seq_hash(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport,
                             const siphash_key& net_secret);

// net/core/secure_seq.c: secure_tcpv6_seq() — siphash() over the 36 bytes saddr(16) ‖
// daddr(16) ‖ sport(2) ‖ dport(2, network order), through seq_scale().
uint32_t secure_tcpv6_seq(const inet_addr& saddr, const inet_addr& daddr, uint16_t sport, uint16_t dport,
                          uint64_t realtime_ns, const siphash_key& net_secret);

}  // namespace portsim::net
