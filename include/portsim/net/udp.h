// UDP: net/ipv4/udp.c and net/ipv6/udp.c (port selection udp_lib_get_port, delivery
// __udp4_lib_lookup / __udp6_lib_lookup, ICMP errors), net/ipv4/datagram.c
// (ip4_datagram_connect), net/ipv4/af_inet.c (inet_dgram_connect, inet_autobind,
// inet_send_prepare) and net/core/sock_reuseport.c (group selection). See sim/net/udp.cc.
#pragma once
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "portsim/base/random.h"
#include "portsim/net/inet_addr.h"
#include "portsim/net/sock.h"

namespace portsim::net {

struct world;
struct segment;

// include/linux/udp.h: UDP_HTABLE_SIZE_MIN (256 without CONFIG_BASE_SMALL) and
// UDP_HTABLE_SIZE_MAX (65536). The live machine's table: dmesg "UDP hash table entries: 16384"
// (alloc_large_system_hash: one slot per 2 MiB of memory, rounded up to a power of two).
inline constexpr uint32_t UDP_HTABLE_SIZE_MIN = 256;
inline constexpr uint32_t UDP_HTABLE_SIZE_MAX = 65536;
inline constexpr uint32_t kUdpHashEntriesDefault = 16384;

// The per-socket part of struct udp_sock that portsim models (kept beside struct sock so TCP
// sockets stay small).
struct udp_sock {
  int64_t hash_seq = 0;    // position in the primary chain: larger = nearer the head
  int64_t hash2_seq = 0;   // position in the hash2 chain (head: +n; v6 reuseport tail: -n)
  uint32_t group = kNone;  // sk_reuseport_cb: index into udp_world::groups
  uint32_t rx = 0;         // datagrams queued, not yet read
  bool echo = false;       // the scenario's server application answers each datagram
};

// struct sock_reuseport: socks[] in the order they joined (a leaver is replaced by the last).
struct reuseport_group {
  std::vector<sock_id> socks;
  bool has_conns = false;  // reuseport_has_conns(): a member connected
};

struct udp_netns {
  // Hashed sockets per local port (65536 entries once the netns hashes its first socket), and
  // per port how many of them are not IPv6-only: a wildcard IPv4 socket without
  // SO_REUSEADDR/SO_REUSEPORT conflicts exactly with those, which lets a full range be
  // rejected at one array read per candidate.
  std::vector<std::vector<sock_id>> by_port;
  std::vector<uint16_t> visible4;
  uint32_t hash_mix = 0;   // net_hash_mix(net)
  // For such sockets and the netns range: per hash chain (port mod table size) the number of
  // in-range, non-reserved ports and of those free, and a bitmap of chains with a free port.
  // The walk then jumps straight to the first chain (in the kernel's order) that has one,
  // counting the candidates it skips exactly. Not a kernel structure.
  struct chain_cache {
    bool valid = false;
    uint32_t low = 0, high = 0, entries = 0;
    std::vector<uint32_t> free, prefix;  // prefix[r]: in-range ports of chains < r
    std::vector<uint64_t> nonempty;
  } cache;
  const std::vector<sock_id>* port(uint16_t p) const {
    return by_port.empty() || by_port[p].empty() ? nullptr : &by_port[p];
  }
};

struct udp_machine {
  uint32_t hash_entries = kUdpHashEntriesDefault;  // udptable->mask + 1
  uint32_t ehash_secret = 0, ehash6_secret = 0, ipv6_hash_secret = 0;  // net_get_random_once
  Random random{0, "udp"};  // get_random_u32() of udp_lib_get_port, a named stream of the seed
};

struct udp_stats {
  uint64_t datagrams = 0, delivered = 0, icmp_unreach = 0, refused = 0;
  uint64_t autobinds = 0, autobind_fail = 0, examined = 0;
  // UDP workloads: queries sent, answered, refused (ICMP), failed at connect, timed out.
  uint64_t queries = 0, queries_answered = 0, queries_refused = 0, queries_failed = 0, queries_timeout = 0;
};

struct udp_world {
  std::unordered_map<sock_id, udp_sock> socks;
  std::vector<udp_netns> nets;          // by netns id
  std::vector<udp_machine> machines;    // by machine index
  std::vector<reuseport_group> groups;
  std::vector<uint32_t> free_groups;
  int64_t seq = 0;
  udp_stats st;
};

// What one udp_lib_get_port(sk, 0) search did (trace and --explain).
struct udp_port_info {
  bool autobind = false;      // a port-0 search ran
  uint32_t rand = 0;          // get_random_u32()
  uint32_t low = 0, high = 0, remaining = 0;
  uint32_t first = 0;         // reciprocal_scale(rand, remaining) + low
  uint32_t stride = 0;        // (rand | 1) * (mask + 1), low 16 bits
  uint32_t slots = 0;         // chains (values of first) visited
  uint64_t examined = 0;      // candidates tested (in range, not in the bitmap, not reserved, …)
  sock_id blocker = kNone;    // explicit bind: the socket that holds the port
  bool hash2 = false;         // explicit bind decided on the hash2 chains (count > 10)
};

// Set up the UDP side of a world: one udp_machine per machine (hash size, secrets, random
// stream), one udp_netns per netns. Called once the machines and namespaces exist.
void udp_init(world& w, uint64_t seed, const std::vector<uint32_t>& hash_entries);

// A sysctl of netns ns changed (range, reserved ports): portsim's chain cache is rebuilt.
void udp_sysctl_changed(world& w, uint16_t ns);

// net/socket.c: socket(AF_INET[6], SOCK_DGRAM, 0).
sock_id udp_socket(world& w, uint16_t ns, uint32_t uid, bool cap_net_bind_service, bool v6);

// net/ipv4/udp.c: udp_lib_get_port() (udp_v4_get_port / udp_v6_get_port). 0, or EADDRINUSE.
int udp_lib_get_port(world& w, sock_id sk, uint16_t snum, udp_port_info* info = nullptr);

// net/ipv4/af_inet.c: __inet_bind() (and __inet6_bind) for a datagram socket.
int udp_bind(world& w, sock_id sk, const endpoint& addr, udp_port_info* info = nullptr);

// net/ipv4/af_inet.c: inet_dgram_connect() → inet_autobind (EAGAIN when no port) →
// ip4_datagram_connect / ip6_datagram_connect.
int udp_connect(world& w, sock_id sk, const endpoint& to, udp_port_info* info = nullptr);

// net/ipv4/af_inet.c: inet_sendmsg() → inet_send_prepare (autobind, EAGAIN) → udp_sendmsg.
// `to` absent: send() on a connected socket.
int udp_sendmsg(world& w, sock_id sk, const std::optional<endpoint>& to, udp_port_info* info = nullptr);

// net/ipv4/udp.c: udp_recvmsg() without blocking: a pending error (sock_error), a datagram,
// or EAGAIN.
int udp_recvmsg(world& w, sock_id sk);

// net/ipv4/udp.c: udp_lib_close() → udp_lib_unhash(); the socket is freed.
void udp_close(world& w, sock_id sk);

// net/ipv4/udp.c: __udp4_lib_lookup() / net/ipv6/udp.c: __udp6_lib_lookup() — the socket a
// datagram saddr:sport → daddr:dport goes to in netns ns, or kNone.
sock_id udp_lib_lookup(const world& w, uint16_t ns, const inet_addr& saddr, uint16_t sport, const inet_addr& daddr,
                       uint16_t dport);

// net/ipv4/udp.c: __udp4_lib_rcv() — a datagram arrives in netns ns: queued on the socket the
// lookup finds (an echo socket answers), else ICMP port unreachable goes back.
void udp_rcv(world& w, uint16_t ns, const segment& seg);
// net/ipv4/udp.c: __udp4_lib_err() — ICMP port unreachable for a datagram we sent: a
// connected socket gets sk_err = ECONNREFUSED (no IP_RECVERR modelled).
void udp_err(world& w, uint16_t ns, const segment& icmp);
// A datagram left the model: a declared external endpoint answers ("accept": a reply;
// "refuse": ICMP port unreachable; "silent": nothing).
void udp_external_rcv(world& w, const segment& seg);

// lib/jhash.h: jhash_3words() (the reuseport hash input).
uint32_t jhash_3words(uint32_t a, uint32_t b, uint32_t c, uint32_t initval);

}  // namespace portsim::net
