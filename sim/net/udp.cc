// UDP as Linux 6.18 does it (net/ipv4/udp.c, net/ipv6/udp.c, net/ipv4/datagram.c,
// net/ipv4/af_inet.c, net/core/sock_reuseport.c).
//
// Port choice (udp_lib_get_port, snum == 0). No SipHash, no destination input, no parity, no
// table_perturb: rand = get_random_u32(); first = reciprocal_scale(rand, remaining) + low;
// rand = (rand | 1) · (mask + 1), an odd multiple of the table size; for each chain (first,
// first + 1, …, mask + 1 chains in all) the ports of that chain that conflict are collected in
// a bitmap, then snum = first, first + rand, … (16-bit arithmetic) walks every port congruent
// to first modulo the table size, taking the first one in [low, high], not in the bitmap and
// not reserved. A chain holds exactly the ports ≡ first (mod table size) — whatever
// net_hash_mix adds, it adds to all of them — so the bitmap test is the conflict test of that
// one port, which is how portsim evaluates it. With the live table (16384 slots) each chain
// has 4 ports; in a small range that makes the choice "the first free port at or after a
// uniform start, cyclically" (tests/live/udp.json, order_gap1).
//
// Conflicts (udp_lib_lport_inuse): another socket of the netns on the port, not both
// SO_REUSEADDR, overlapping addresses (inet_rcv_saddr_equal with wildcards) — unless both have
// SO_REUSEPORT and the same uid. The destination plays no part: a connected UDP socket holds
// its port against every other socket, whatever it is connected to.
//
// Errors: bind() → EADDRINUSE; the autobind of connect() (inet_dgram_connect → inet_autobind)
// and of sendmsg (inet_send_prepare) → EAGAIN.
//
// Hash2 (by address and port) is modelled as chains keyed by the exact (address, port), the
// any-address chain shared by 0.0.0.0 and [::] (udp6_portaddr_hash hashes [::] like
// 0.0.0.0), v4-mapped addresses with their IPv4 address. Accidental collisions of distinct
// addresses in one hash2 slot (random net_hash_mix) are not modelled.
#include "portsim/net/udp.h"

#include <algorithm>
#include <bit>
#include <cerrno>

#include <fmt/format.h>

#include "portsim/net/af_inet.h"
#include "portsim/net/inet_hashtables.h"
#include "portsim/net/netns.h"
#include "portsim/net/observer.h"
#include "portsim/net/tcp.h"

namespace portsim::net {

namespace {

udp_sock& usk(world& w, sock_id id) { return w.udp.socks[id]; }
const udp_sock* usk_find(const world& w, sock_id id) {
  auto it = w.udp.socks.find(id);
  return it == w.udp.socks.end() ? nullptr : &it->second;
}
udp_machine& umach(world& w, const sock& s) { return w.udp.machines[w.nets[s.netns].machine]; }

inline uint32_t rol32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

// The hash2 chain key of a bound address: any (0.0.0.0 and [::] share a chain), else the
// address itself (v4-mapped addresses are stored as IPv4).
inet_addr hash2_key(const inet_addr& a) { return a.is_any() ? kAnyV4 : a; }

// The address as the kernel holds it: sk_rcv_saddr (the IPv4 part) and, for AF_INET6,
// sk_v6_rcv_saddr's type. An AF_INET6 socket bound to a true IPv6 address has
// sk_rcv_saddr = LOOPBACK4_IPV6 (127.0.0.6, net/ipv6/af_inet6.c: __inet6_bind).
enum class v6type : uint8_t { any, mapped, unicast };
v6type type6(const sock& s) {
  if (s.rcv_saddr.is_v4()) return v6type::mapped;
  return s.rcv_saddr.is_any() ? v6type::any : v6type::unicast;
}
uint32_t rcv_saddr4(const sock& s) {
  if (s.rcv_saddr.is_v4()) return s.rcv_saddr.v4_host();
  return s.rcv_saddr.is_any() ? 0 : 0x7f000006;  // LOOPBACK4_IPV6
}

// net/ipv4/inet_connection_sock.c: ipv4_rcv_saddr_equal().
bool ipv4_rcv_saddr_equal(uint32_t a, uint32_t b, bool sk2_ipv6only, bool match_wildcard) {
  if (sk2_ipv6only) return false;
  if (a == b) return true;
  return match_wildcard && (!a || !b);
}

// net/ipv4/inet_connection_sock.c: inet_rcv_saddr_equal(sk, sk2, match_wildcard) →
// ipv6_rcv_saddr_equal() for an AF_INET6 sk, ipv4_rcv_saddr_equal() otherwise.
bool inet_rcv_saddr_equal(const sock& sk, const sock& sk2, bool match_wildcard) {
  if (!sk.v6) return ipv4_rcv_saddr_equal(rcv_saddr4(sk), rcv_saddr4(sk2), sk2.ipv6only, match_wildcard);
  const v6type t1 = type6(sk);
  const v6type t2 = sk2.v6 ? type6(sk2) : v6type::mapped;  // inet6_rcv_saddr(AF_INET sk2) = NULL
  if (t1 == v6type::mapped && t2 == v6type::mapped)
    return ipv4_rcv_saddr_equal(rcv_saddr4(sk), rcv_saddr4(sk2), sk2.ipv6only, match_wildcard);
  if (t1 == v6type::any && t2 == v6type::any) return true;
  if (t2 == v6type::any && match_wildcard && !(sk2.ipv6only && t1 == v6type::mapped)) return true;
  if (t1 == v6type::any && match_wildcard && !(sk.ipv6only && t2 == v6type::mapped)) return true;
  return sk2.v6 && sk.rcv_saddr == sk2.rcv_saddr;
}

// The sockets of one local port, primary-chain order (newest first).
std::vector<sock_id> chain_of(const world& w, uint16_t ns, uint16_t port) {
  std::vector<sock_id> v;
  if (const auto* c = w.udp.nets[ns].port(port)) v = *c;
  std::sort(v.begin(), v.end(), [&](sock_id a, sock_id b) {
    return w.udp.socks.at(a).hash_seq > w.udp.socks.at(b).hash_seq;
  });
  return v;
}

// The hash2 chain (key, port), in its order (head first).
std::vector<sock_id> chain2_of(const world& w, uint16_t ns, uint16_t port, const inet_addr& key) {
  std::vector<sock_id> v;
  if (const auto* c = w.udp.nets[ns].port(port))
    for (sock_id id : *c)
      if (hash2_key(w.sk(id).rcv_saddr) == key) v.push_back(id);
  std::sort(v.begin(), v.end(), [&](sock_id a, sock_id b) {
    return w.udp.socks.at(a).hash2_seq > w.udp.socks.at(b).hash2_seq;
  });
  return v;
}

// The number of sockets in the primary slot of `port`: every hashed port congruent to it
// modulo the table size (udp_hashfn = (port + net_hash_mix) & mask).
uint32_t primary_count(const world& w, uint16_t ns, uint16_t port, uint32_t entries) {
  uint32_t n = 0;
  for (uint32_t p = port % entries; p < 65536; p += entries)
    if (const auto* c = w.udp.nets[ns].port(uint16_t(p))) n += uint32_t(c->size());
  return n;
}

// net/ipv4/udp.c: udp_lib_lport_inuse(). With a bitmap (autobind) every chain member that
// conflicts marks the port, so any one decides and the order does not matter; without (an
// explicit bind) the chain is walked head first and the first overlapping member decides —
// a same-uid SO_REUSEPORT pair ends the walk with "free".
sock_id lport_inuse(const world& w, sock_id sk, uint16_t port, bool bitmap) {
  const udp_netns& un = w.udp.nets[w.sk(sk).netns];
  const auto* chain = un.port(port);
  if (!chain) return kNone;
  const sock& s = w.sk(sk);
  // Fast path, same answer: a wildcard AF_INET socket without SO_REUSEADDR / SO_REUSEPORT
  // overlaps every socket that is not IPv6-only (ipv4_rcv_saddr_equal), and no exemption applies.
  if (bitmap && !s.v6 && s.rcv_saddr.is_any() && !s.reuse && !s.reuseport) return un.visible4[port] ? chain->front() : kNone;
  const udp_sock* su = usk_find(w, sk);
  const bool in_group = su && su->group != kNone;
  auto decide = [&](sock_id o, bool& stop) -> bool {  // true: o conflicts
    const sock& so = w.sk(o);
    if (o == sk || (so.reuse && s.reuse) || !inet_rcv_saddr_equal(s, so, true)) return false;
    if (so.reuseport && s.reuseport && !in_group && s.uid == so.uid) {
      stop = !bitmap;
      return false;
    }
    return true;
  };
  bool stop = false;
  if (bitmap) {
    for (sock_id o : *chain)
      if (decide(o, stop)) return o;
    return kNone;
  }
  for (sock_id o : chain_of(w, s.netns, port)) {
    if (decide(o, stop)) return o;
    if (stop) return kNone;
  }
  return kNone;
}

// udp_lib_lport_inuse2(): the first member of one hash2 chain on `port` that overlaps decides.
sock_id lport_inuse2(const world& w, sock_id sk, uint16_t port, const inet_addr& key) {
  const sock& s = w.sk(sk);
  const udp_sock* su = usk_find(w, sk);
  for (sock_id o : chain2_of(w, s.netns, port, key)) {
    if (o == sk) continue;
    const sock& so = w.sk(o);
    if (!(so.reuse && s.reuse) && inet_rcv_saddr_equal(s, so, true)) {
      if (so.reuseport && s.reuseport && !(su && su->group != kNone) && s.uid == so.uid) return kNone;
      return o;
    }
  }
  return kNone;
}

// include/net/inet_hashtables.h: inet_use_hash2_on_bind() — a specific (not v4-mapped-any)
// address.
bool use_hash2_on_bind(const sock& s) { return !s.rcv_saddr.is_any(); }

// net/ipv4/udp.c: udp_reuseport_add_sock() — join the group of a same-family, same-v6only,
// same-uid SO_REUSEPORT socket on exactly this address and port, else start a group.
void udp_reuseport_add_sock(world& w, sock_id sk) {
  const sock& s = w.sk(sk);
  for (sock_id o : chain_of(w, s.netns, s.num)) {
    if (o == sk) continue;
    const sock& so = w.sk(o);
    if (so.v6 == s.v6 && so.ipv6only == s.ipv6only && so.reuseport && so.uid == s.uid &&
        inet_rcv_saddr_equal(s, so, false) && usk(w, o).group != kNone) {
      const uint32_t g = usk(w, o).group;
      w.udp.groups[g].socks.push_back(sk);
      usk(w, sk).group = g;
      return;
    }
  }
  uint32_t g;
  if (!w.udp.free_groups.empty()) {
    g = w.udp.free_groups.back();
    w.udp.free_groups.pop_back();
    w.udp.groups[g] = {};
  } else {
    g = uint32_t(w.udp.groups.size());
    w.udp.groups.emplace_back();
  }
  w.udp.groups[g].socks.push_back(sk);
  usk(w, sk).group = g;
}

// net/core/sock_reuseport.c: reuseport_detach_sock() — the last member takes the leaver's slot.
void reuseport_detach_sock(world& w, sock_id sk) {
  udp_sock& u = usk(w, sk);
  if (u.group == kNone) return;
  auto& socks = w.udp.groups[u.group].socks;
  auto it = std::find(socks.begin(), socks.end(), sk);
  if (it != socks.end()) {
    *it = socks.back();
    socks.pop_back();
  }
  if (socks.empty()) w.udp.free_groups.push_back(u.group);
  u.group = kNone;
}

void explain(world& w, std::string_view fn, const std::string& what) {
  if (w.obs && w.obs->explaining()) w.obs->explain(fn, what);
}

// inet_sk_get_local_port_range() (inet_hashtables.cc); before 6.3 a UDP socket's
// IP_LOCAL_PORT_RANGE did not exist (kernel profile: iplpr absent, 91d0b78c5177).
void local_port_range(const world& w, const sock& s, uint32_t& low, uint32_t& high) {
  int lo, hi;
  inet_sk_get_local_port_range(w, s, lo, hi);
  if (w.machines[w.nets[s.netns].machine].kp.iplpr == iplpr_mode::absent) {
    lo = w.nets[s.netns].sys.ip_local_port_range_lo;
    hi = w.nets[s.netns].sys.ip_local_port_range_hi;
  }
  low = uint32_t(lo);
  high = uint32_t(hi);
}

// include/linux/jhash.h: __ipv6_addr_jhash()'s words and __inet_ehashfn / __inet6_ehashfn.
uint32_t be32(uint32_t host) { return __builtin_bswap32(host); }  // a __be32 read as u32 (LE)
uint16_t be16(uint16_t host) { return __builtin_bswap16(host); }
uint32_t v6word(const inet_addr& a, int i) {
  const uint64_t half = i < 2 ? a.hi : a.lo;
  return be32(uint32_t(i % 2 == 0 ? half >> 32 : half));
}

// net/ipv4/udp.c: udp_ehashfn() / net/ipv6/udp.c: udp6_ehashfn().
uint32_t udp_ehashfn(const world& w, uint16_t ns, const inet_addr& laddr, uint16_t lport, const inet_addr& faddr,
                     uint16_t fport) {
  const udp_machine& m = w.udp.machines[w.nets[ns].machine];
  const uint32_t mix = w.udp.nets[ns].hash_mix;
  const uint32_t ports = (uint32_t(lport) << 16) | be16(fport);
  if (laddr.is_v4() && faddr.is_v4())
    return jhash_3words(be32(laddr.v4_host()), be32(faddr.v4_host()), ports, m.ehash_secret + mix);
  const uint32_t fhash = jhash_3words(v6word(faddr, 0) ^ v6word(faddr, 1), v6word(faddr, 2), v6word(faddr, 3),
                                      m.ipv6_hash_secret);
  return jhash_3words(v6word(laddr, 3), fhash, ports, m.ehash6_secret + mix);
}

// net/core/sock_reuseport.c: reuseport_select_sock() without BPF → reuseport_select_sock_by_hash:
// socks[reciprocal_scale(hash, n)], skipping connected members cyclically (none left: NULL).
sock_id reuseport_select_sock(const world& w, uint32_t g, uint32_t hash) {
  const auto& socks = w.udp.groups[g].socks;
  const uint32_t n = uint32_t(socks.size());
  if (!n) return kNone;
  uint32_t i = uint32_t((uint64_t(hash) * n) >> 32), j = i;
  while (w.sk(socks[i]).state == tcp_state::ESTABLISHED) {
    if (++i >= n) i = 0;
    if (i == j) return kNone;
  }
  return socks[i];
}

// compute_score() of net/ipv4/udp.c (v4 packet) and net/ipv6/udp.c (v6 packet). The
// sk_incoming_cpu bonus is not modelled (it is set only on connected sockets, which already
// outscore the others).
int compute_score(const sock& s, bool v4pkt, const inet_addr& saddr, uint16_t sport, const inet_addr& daddr) {
  if (v4pkt) {
    if (s.ipv6only) return -1;
    if (!s.rcv_saddr.is_v4() && !s.rcv_saddr.is_any()) return -1;
    if (hash2_key(s.rcv_saddr) != hash2_key(daddr)) return -1;
    int score = s.v6 ? 1 : 2;
    if (!s.daddr.is_any()) {
      if (s.daddr != saddr) return -1;
      score += 4;
    }
    if (s.dport) {
      if (s.dport != sport) return -1;
      score += 4;
    }
    return score + 4;  // udp_sk_bound_dev_eq: no device binding
  }
  if (!s.v6 || s.rcv_saddr != daddr) return -1;
  int score = 0;
  if (s.dport) {
    if (s.dport != sport) return -1;
    ++score;
  }
  if (!s.daddr.is_any()) {
    if (s.daddr != saddr) return -1;
    ++score;
  }
  return score + 1;
}

// udp4_lib_lookup2() / udp6_lib_lookup2() over one hash2 chain.
sock_id lib_lookup2(const world& w, uint16_t ns, bool v4pkt, const inet_addr& saddr, uint16_t sport,
                    const inet_addr& daddr, uint16_t hnum, const inet_addr& key) {
  sock_id result = kNone;
  int badness = v4pkt ? 0 : -1;
  for (sock_id id : chain2_of(w, ns, hnum, key)) {
    const sock& s = w.sk(id);
    const int score = compute_score(s, v4pkt, saddr, sport, daddr);
    if (score > badness) {
      sock_id reuse = kNone;
      const udp_sock& u = w.udp.socks.at(id);
      if (s.reuseport && s.state != tcp_state::ESTABLISHED && u.group != kNone)
        reuse = reuseport_select_sock(w, u.group, udp_ehashfn(w, ns, daddr, hnum, saddr, sport));
      if (reuse != kNone && !w.udp.groups[u.group].has_conns) return reuse;
      result = reuse != kNone ? reuse : id;
      badness = score;
    }
  }
  return result;
}

// The chain cache (udp_netns::chain_cache) for the netns range [low, high].
void cache_build(const world& w, udp_netns& un, const netns& ns, uint32_t low, uint32_t high, uint32_t entries) {
  auto& c = un.cache;
  c.valid = true;
  c.low = low;
  c.high = high;
  c.entries = entries;
  c.free.assign(entries, 0);
  c.prefix.assign(entries + 1, 0);
  c.nonempty.assign((entries + 63) / 64, 0);
  std::vector<uint32_t> inrange(entries, 0);
  for (uint32_t p = low; p <= high; ++p) {
    if (ns.sys.ip_local_reserved_ports.test(p)) continue;
    const uint32_t r = p & (entries - 1);
    ++inrange[r];
    if (un.visible4.empty() || !un.visible4[p]) ++c.free[r];
  }
  for (uint32_t r = 0; r < entries; ++r) {
    c.prefix[r + 1] = c.prefix[r] + inrange[r];
    if (c.free[r]) c.nonempty[r / 64] |= uint64_t(1) << (r % 64);
  }
  (void)w;
}

// Port p became busy (+1) or free (-1) for a plain wildcard IPv4 socket.
void cache_update(udp_netns& un, const netns& ns, uint32_t p, bool busy) {
  auto& c = un.cache;
  if (!c.valid || p < c.low || p > c.high || ns.sys.ip_local_reserved_ports.test(p)) return;
  const uint32_t r = p & (c.entries - 1);
  if (busy) --c.free[r];
  else ++c.free[r];
  if (c.free[r]) c.nonempty[r / 64] |= uint64_t(1) << (r % 64);
  else c.nonempty[r / 64] &= ~(uint64_t(1) << (r % 64));
}

// The cyclic distance from chain r0 to the first chain with a free port; entries if none.
uint32_t cache_next(const udp_netns::chain_cache& c, uint32_t r0) {
  const uint32_t E = c.entries, words = uint32_t(c.nonempty.size());
  for (uint32_t k = 0; k <= words; ++k) {
    const uint32_t wi = (r0 / 64 + k) % words;
    uint64_t bits = c.nonempty[wi];
    if (k == 0) bits &= ~uint64_t(0) << (r0 % 64);
    if (k == words) bits &= (r0 % 64) ? (~uint64_t(0) >> (64 - r0 % 64)) : 0;
    if (bits) {
      const uint32_t r = wi * 64 + uint32_t(std::countr_zero(bits));
      return (r + E - r0) % E;
    }
  }
  return E;
}

// In-range, non-reserved ports of chains r0 .. r0 + d - 1 (cyclic).
uint64_t cache_span(const udp_netns::chain_cache& c, uint32_t r0, uint32_t d) {
  const uint32_t E = c.entries;
  if (r0 + d <= E) return c.prefix[r0 + d] - c.prefix[r0];
  return (c.prefix[E] - c.prefix[r0]) + c.prefix[r0 + d - E];
}

}  // namespace

uint32_t jhash_3words(uint32_t a, uint32_t b, uint32_t c, uint32_t initval) {
  const uint32_t iv = initval + 0xdeadbeefu + (3u << 2);  // JHASH_INITVAL + (3 << 2)
  a += iv;
  b += iv;
  c += iv;
  // __jhash_final
  c ^= b; c -= rol32(b, 14);
  a ^= c; a -= rol32(c, 11);
  b ^= a; b -= rol32(a, 25);
  c ^= b; c -= rol32(b, 16);
  a ^= c; a -= rol32(c, 4);
  b ^= a; b -= rol32(a, 14);
  c ^= b; c -= rol32(b, 24);
  return c;
}

void udp_init(world& w, uint64_t seed, const std::vector<uint32_t>& hash_entries) {
  w.udp.machines.clear();
  for (size_t i = 0; i < w.machines.size(); ++i) {
    udp_machine m;
    m.hash_entries = i < hash_entries.size() && hash_entries[i] ? hash_entries[i] : kUdpHashEntriesDefault;
    m.random = Random(seed, "udp_get_random_u32:" + w.machines[i].name);
    Random sec(seed, "udp_secrets:" + w.machines[i].name);
    m.ehash_secret = sec.u32();
    m.ehash6_secret = sec.u32();
    m.ipv6_hash_secret = sec.u32();
    w.udp.machines.push_back(m);
  }
  w.udp.nets.assign(w.nets.size(), {});
  for (size_t i = 0; i < w.nets.size(); ++i) w.udp.nets[i].hash_mix = Random(seed, "net_hash_mix:" + w.nets[i].name).u32();
}

void udp_sysctl_changed(world& w, uint16_t ns) {
  if (ns < w.udp.nets.size()) w.udp.nets[ns].cache.valid = false;
}

sock_id udp_socket(world& w, uint16_t ns, uint32_t uid, bool cap, bool v6) {
  const sock_id id = sys_socket(w, ns, cred{uid, cap}, v6 ? family::inet6 : family::inet);
  w.sk(id).udp = true;
  w.udp.socks[id] = udp_sock{};
  if (w.udp.nets.size() <= ns) w.udp.nets.resize(size_t(ns) + 1);
  return id;
}

int udp_lib_get_port(world& w, sock_id sk, uint16_t snum, udp_port_info* info) {
  udp_port_info local;
  udp_port_info& in = info ? *info : local;
  const sock& s = w.sk(sk);
  const netns& ns = w.nets[s.netns];
  udp_machine& m = umach(w, s);
  const uint32_t entries = m.hash_entries;
  if (!snum) {
    uint32_t low, high;
    local_port_range(w, s, low, high);
    in.autobind = true;
    in.low = low;
    in.high = high;
    const uint32_t remaining = high - low + 1;
    in.remaining = remaining;
    uint32_t rand = m.random.u32();  // get_random_u32()
    in.rand = rand;
    uint16_t first = uint16_t(((uint64_t(rand) * remaining) >> 32) + low);  // reciprocal_scale
    in.first = first;
    rand = (rand | 1) * entries;  // an odd multiple of the table size
    in.stride = rand & 0xffff;
    const uint16_t last = uint16_t(first + entries);
    bool found = false;
    // A wildcard AF_INET socket without SO_REUSEADDR / SO_REUSEPORT (a resolver's query
    // socket) conflicts exactly with the ports whose count of non-IPv6-only sockets is
    // non-zero: the same walk, tested with one array read per candidate.
    const udp_netns& un = w.udp.nets[s.netns];
    const bool plain4 = !s.v6 && s.rcv_saddr.is_any() && !s.reuse && !s.reuseport;
    const uint16_t* vis = plain4 && !un.visible4.empty() ? un.visible4.data() : nullptr;
    const PortBitmap& reserved = ns.sys.ip_local_reserved_ports;
    const uint16_t step = uint16_t(rand);
    udp_netns& unm = w.udp.nets[s.netns];
    const bool whole_range = low == ns.sys.ip_local_port_range_lo && high == ns.sys.ip_local_port_range_hi;
    bool walk = true;
    if (plain4 && whole_range) {
      if (!unm.cache.valid || unm.cache.low != low || unm.cache.high != high || unm.cache.entries != entries)
        cache_build(w, unm, ns, low, high, entries);
      // Chains before the first one with a free port: every in-range candidate there is busy.
      const uint32_t r0 = first & (entries - 1);
      const uint32_t d = cache_next(unm.cache, r0);
      in.examined += cache_span(unm.cache, r0, std::min(d, entries));
      if (d >= entries) {
        in.slots = entries;
        walk = false;  // every chain is full: no port
      } else {
        in.slots = d;
        first = uint16_t(first + d);
      }
    }
    if (walk) do {
      ++in.slots;
      uint16_t p = first;
      do {
        if (low <= p && p <= high && !reserved.test(p)) {
          ++in.examined;
          if (plain4 ? !vis || !vis[p] : lport_inuse(w, sk, p, true) == kNone) {
            snum = p;
            found = true;
            break;
          }
        }
        p = uint16_t(p + step);
      } while (p != first);
      if (found) break;
    } while (++first != last);
    w.udp.st.examined += in.examined;
    if (!found) return EADDRINUSE;
  } else {
    // net/ipv4/udp.c: above 10 sockets in the primary slot, a bind on a specific address
    // (every address before the CVE-2026-31503 fix: kp.udp_hash2_wildcard_check) checks the hash2 chains of its address and of
    // the wildcard instead, unless the address chain is the longer one.
    const bool hash2_ok = !w.machines[w.nets[s.netns].machine].kp.udp_hash2_wildcard_check || use_hash2_on_bind(s);
    const uint32_t count = primary_count(w, s.netns, snum, entries);
    const inet_addr key = hash2_key(s.rcv_saddr);
    const uint32_t count2 = uint32_t(chain2_of(w, s.netns, snum, key).size());
    if (hash2_ok && count > 10 && !(count < count2)) {
      in.hash2 = true;
      sock_id b = lport_inuse2(w, sk, snum, key);
      if (b == kNone && key != kAnyV4) b = lport_inuse2(w, sk, snum, kAnyV4);
      if (b != kNone) {
        in.blocker = b;
        return EADDRINUSE;
      }
    } else if (const sock_id b = lport_inuse(w, sk, snum, false); b != kNone) {
      in.blocker = b;
      return EADDRINUSE;
    }
  }
  // found: hash the socket (sk_add_node_rcu: head of the primary chain; hash2: head, or tail
  // for an AF_INET6 SO_REUSEPORT socket).
  w.sk(sk).num = snum;
  w.sk(sk).sport = snum;  // inet_sport: set by the callers (__inet_bind, inet_autobind) on success
  udp_sock& u = usk(w, sk);
  udp_netns& un = w.udp.nets[w.sk(sk).netns];
  if (un.by_port.empty()) {
    un.by_port.resize(65536);
    un.visible4.assign(65536, 0);
  }
  un.by_port[snum].push_back(sk);
  if (!w.sk(sk).ipv6only && ++un.visible4[snum] == 1) cache_update(un, ns, snum, true);
  u.hash_seq = ++w.udp.seq;
  u.hash2_seq = (w.sk(sk).reuseport && w.sk(sk).v6) ? -u.hash_seq : u.hash_seq;
  if (w.sk(sk).reuseport) udp_reuseport_add_sock(w, sk);
  return 0;
}

// net/ipv4/udp.c: udp_lib_unhash().
static void udp_lib_unhash(world& w, sock_id sk) {
  sock& s = w.sk(sk);
  if (!s.num) return;
  reuseport_detach_sock(w, sk);
  udp_netns& un = w.udp.nets[s.netns];
  if (!un.by_port.empty() && std::erase(un.by_port[s.num], sk) && !s.ipv6only && --un.visible4[s.num] == 0)
    cache_update(un, w.nets[s.netns], s.num, false);
  s.num = 0;
}

// net/ipv4/udp.c: udp_lib_rehash() — the bound address changed (connect on a wildcard
// socket): the socket moves to the head of its new hash2 chain and leaves its reuseport group.
static void udp_lib_rehash(world& w, sock_id sk) {
  udp_sock& u = usk(w, sk);
  if (u.group != kNone) reuseport_detach_sock(w, sk);
  u.hash2_seq = ++w.udp.seq;
}

int udp_bind(world& w, sock_id sk, const endpoint& addr, udp_port_info* info) {
  netns& ns = w.ns_of(sk);
  sock& s = w.sk(sk);
  // __inet_bind / __inet6_bind: the same checks, in the same order, as for TCP.
  if (!s.v6 && !addr.addr.is_v4()) return EAFNOSUPPORT;
  if (s.v6 && addr.addr.is_v4() && s.ipv6only) return EINVAL;
  if (!addr.addr.is_any() && !ns.owns(addr.addr) && !ns.sys.ip_nonlocal_bind) return EADDRNOTAVAIL;
  if (addr.port && addr.port < ns.sys.ip_unprivileged_port_start && !s.cap_net_bind_service) return EACCES;
  if (s.state != tcp_state::CLOSE || s.num != 0) return EINVAL;
  s.rcv_saddr = addr.addr;
  // __inet6_bind: a socket bound to a true IPv6 address becomes IPv6-only before get_port (it
  // never overlaps IPv4 sockets, not even 0.0.0.0; tests/live/udp.json v6_unicast); restored
  // if the bind fails.
  const bool saved_ipv6only = s.ipv6only;
  if (s.v6 && !addr.addr.is_v4() && !addr.addr.is_any()) s.ipv6only = true;
  if (addr.port || !s.bind_address_no_port) {
    udp_port_info local;
    if (!info) info = &local;
    if (udp_lib_get_port(w, sk, addr.port, info)) {
      if (info->autobind)
        explain(w, "udp_lib_get_port",
                fmt::format("range [{}, {}]: first {}, stride {}; {} chains, {} candidates, none free: EADDRINUSE",
                            info->low, info->high, info->first, info->stride, info->slots, info->examined));
      else if (info->blocker != kNone)
        explain(w, info->hash2 ? "udp_lib_lport_inuse2" : "udp_lib_lport_inuse",
                fmt::format("port {} held by sk{} ({}): EADDRINUSE", addr.port, info->blocker,
                            to_string(endpoint{w.sk(info->blocker).rcv_saddr, w.sk(info->blocker).num})));
      w.sk(sk).rcv_saddr = w.sk(sk).v6 ? inet_addr{} : kAnyV4;
      w.sk(sk).ipv6only = saved_ipv6only;
      return EADDRINUSE;
    }
    if (info->autobind)
      explain(w, "udp_lib_get_port",
              fmt::format("range [{}, {}], remaining {}: rand {:#010x}, first = reciprocal_scale = {}, stride {}; "
                          "port {} after {} candidates in {} chains",
                          info->low, info->high, info->remaining, info->rand, info->first, info->stride,
                          w.sk(sk).num, info->examined, info->slots));
  }
  if (!addr.addr.is_any()) w.sk(sk).userlocks |= SOCK_BINDADDR_LOCK;
  if (addr.port) w.sk(sk).userlocks |= SOCK_BINDPORT_LOCK;
  return 0;
}

// net/ipv4/af_inet.c: inet_autobind() — get_port(sk, 0); failure is EAGAIN.
static int inet_autobind(world& w, sock_id sk, udp_port_info* info, std::string_view caller) {
  if (w.sk(sk).num) return 0;
  udp_port_info local;
  if (!info) info = &local;
  ++w.udp.st.autobinds;
  const int err = udp_lib_get_port(w, sk, 0, info);
  w.st.candidates += info->examined;  // the summary's autobind cost, as for connect()
  if (err) {
    ++w.udp.st.autobind_fail;
    explain(w, "inet_autobind",
            fmt::format("{}: udp_lib_get_port: range [{}, {}], first {}, stride {}; {} chains, {} candidates, none "
                        "free: EAGAIN",
                        caller, info->low, info->high, info->first, info->stride, info->slots, info->examined));
    return EAGAIN;
  }
  explain(w, "inet_autobind",
          fmt::format("{}: udp_lib_get_port: range [{}, {}], remaining {}: rand {:#010x}, first {}, stride {}; port {} "
                      "after {} candidates in {} chains",
                      caller, info->low, info->high, info->remaining, info->rand, info->first, info->stride,
                      w.sk(sk).num, info->examined, info->slots));
  return 0;
}

int udp_connect(world& w, sock_id sk, const endpoint& to, udp_port_info* info) {
  // inet_dgram_connect: autobind first (before any address check), EAGAIN when no port.
  if (const int err = inet_autobind(w, sk, info, "inet_dgram_connect")) return err;
  sock& s = w.sk(sk);
  // ip4_datagram_connect refuses another family; ip6_datagram_connect hands a v4-mapped
  // destination to __ip4_datagram_connect (ENETUNREACH on an IPV6_V6ONLY socket).
  if (!s.v6 && !to.addr.is_v4()) return EAFNOSUPPORT;
  if (s.v6 && to.addr.is_v4() && s.ipv6only) return ENETUNREACH;
  if (v4mapped_src_refused(w, s, to.addr)) return EAFNOSUPPORT;  // ip6_datagram_dst_update()
  const netns& ns = w.ns_of(sk);
  const inet_addr saddr = s.rcv_saddr.is_any() ? inet_select_saddr(ns, to.addr) : s.rcv_saddr.get();
  if (saddr.is_any()) return ENETUNREACH;
  if (s.rcv_saddr.is_any()) {  // inet_rcv_saddr = fl4->saddr; sk_prot->rehash(sk)
    s.rcv_saddr = saddr;
    udp_lib_rehash(w, sk);
  }
  s.daddr = to.addr;
  s.dport = to.port;
  // sk_err stays: an ICMP error for the old peer fails the next send (live 6.18.44,
  // scenarios/udp-connect-keeps-error.json; __ip4_datagram_connect() does not touch it).
  s.state = tcp_state::ESTABLISHED;  // UDP has no state machine: ESTABLISHED = connected
  // reuseport_has_conns_set(): the group now falls back to scoring.
  if (const uint32_t g = usk(w, sk).group; g != kNone) w.udp.groups[g].has_conns = true;
  explain(w, "ip4_datagram_connect",
          fmt::format("{} connected to {} (state ESTABLISHED)", to_string(endpoint{s.rcv_saddr, s.num}), to_string(to)));
  return 0;
}

int udp_sendmsg(world& w, sock_id sk, const std::optional<endpoint>& to, udp_port_info* info) {
  // inet_send_prepare: autobind first.
  if (const int err = inet_autobind(w, sk, info, "inet_send_prepare")) return err;
  sock& s = w.sk(sk);
  endpoint dst;
  if (to) {
    if (!s.v6 && !to->addr.is_v4()) return EAFNOSUPPORT;
    if (s.v6 && to->addr.is_v4() && s.ipv6only) return ENETUNREACH;
    dst = *to;
  } else {
    if (s.state != tcp_state::ESTABLISHED) return EDESTADDRREQ;
    dst = {s.daddr, s.dport};
  }
  if (v4mapped_src_refused(w, s, dst.addr)) return EAFNOSUPPORT;  // udpv6_sendmsg(): the route
  const netns& ns = w.ns_of(sk);
  const inet_addr saddr = s.rcv_saddr.is_any() ? inet_select_saddr(ns, dst.addr) : s.rcv_saddr.get();
  if (saddr.is_any()) return ENETUNREACH;
  // sock_alloc_send_pskb(): a pending error (an ICMP's ECONNREFUSED) fails this send, once.
  if (s.sk_err) {
    const int err = s.sk_err;
    s.sk_err = 0;
    explain(w, "sock_alloc_send_pskb", fmt::format("pending sk_err {}: the send fails", err == ECONNREFUSED ? "ECONNREFUSED" : "set"));
    return err;
  }
  segment seg;
  seg.proto = kProtoUdp;
  seg.saddr = saddr;
  seg.daddr = dst.addr;
  seg.sport = s.num;
  seg.dport = dst.port;
  seg.from_ns = s.netns;
  ++w.udp.st.datagrams;
  if (w.net_wire) w.net_wire->xmit(seg);
  return 0;
}

int udp_recvmsg(world& w, sock_id sk) {
  sock& s = w.sk(sk);
  if (s.sk_err) {  // __skb_recv_udp → sock_error()
    const int err = s.sk_err;
    s.sk_err = 0;
    return err;
  }
  udp_sock& u = usk(w, sk);
  if (!u.rx) return EAGAIN;
  --u.rx;
  return 0;
}

void udp_close(world& w, sock_id sk) {
  udp_lib_unhash(w, sk);
  w.udp.socks.erase(sk);
  w.sock_free(sk);
}

sock_id udp_lib_lookup(const world& w, uint16_t ns, const inet_addr& saddr, uint16_t sport, const inet_addr& daddr,
                       uint16_t dport) {
  const bool v4 = daddr.is_v4();
  sock_id result = lib_lookup2(w, ns, v4, saddr, sport, daddr, dport, hash2_key(daddr));
  if (result != kNone) return result;  // connected or specific-address socket
  return lib_lookup2(w, ns, v4, saddr, sport, v4 ? kAnyV4 : inet_addr{}, dport, kAnyV4);
}

void udp_rcv(world& w, uint16_t ns, const segment& seg) {
  const sock_id sk = udp_lib_lookup(w, ns, seg.saddr, seg.sport, seg.daddr, seg.dport);
  if (sk == kNone) {
    // __udp4_lib_rcv: no socket → icmp_send(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH). Loopback is
    // exempt from the per-destination ICMP rate limit (icmpv4_xrlim_allow); 200 closed-port
    // datagrams in a burst all came back refused live (tests/live/udp.json, icmp_burst).
    ++w.udp.st.icmp_unreach;
    explain(w, "__udp4_lib_rcv", fmt::format("no socket for {}: ICMP port unreachable to {}",
                                             to_string(endpoint{seg.daddr, seg.dport}), to_string(endpoint{seg.saddr, seg.sport})));
    segment icmp = reverse_of(seg, ns);
    icmp.proto = kProtoIcmp;
    if (w.net_wire) w.net_wire->xmit(icmp);
    return;
  }
  udp_sock& u = w.udp.socks.at(sk);
  ++w.udp.st.delivered;
  explain(w, "udp_queue_rcv_skb", fmt::format("datagram for {} queued on sk{} ({}{})", to_string(endpoint{seg.daddr, seg.dport}),
                                              sk, to_string(endpoint{w.sk(sk).rcv_saddr, w.sk(sk).num}),
                                              w.sk(sk).state == tcp_state::ESTABLISHED ? ", connected" : ""));
  if (!u.echo) {
    ++u.rx;
    if (w.app) w.app->udp_ready(sk);
  } else {  // the server application reads it and answers from the socket that received
    segment reply = reverse_of(seg, ns);
    reply.proto = kProtoUdp;
    ++w.udp.st.datagrams;
    if (w.net_wire) w.net_wire->xmit(reply);
  }
}

void udp_err(world& w, uint16_t ns, const segment& icmp) {
  // __udp4_lib_err: the socket that sent the offending datagram (inner header reversed).
  const sock_id sk = udp_lib_lookup(w, ns, icmp.saddr, icmp.sport, icmp.daddr, icmp.dport);
  if (sk == kNone) return;
  sock& s = w.sk(sk);
  // Without IP_RECVERR only a connected socket takes the hard error.
  if (s.state != tcp_state::ESTABLISHED) {
    explain(w, "__udp4_lib_err", fmt::format("ICMP port unreachable for sk{}: not connected, ignored", sk));
    return;
  }
  s.sk_err = ECONNREFUSED;
  ++w.udp.st.refused;
  if (w.app) w.app->udp_ready(sk);
  explain(w, "__udp4_lib_err", fmt::format("ICMP port unreachable: sk{} ({}) sk_err = ECONNREFUSED", sk,
                                           to_string(endpoint{s.rcv_saddr, s.num})));
}

void udp_external_rcv(world& w, const segment& seg) {
  const int e = w.find_external(seg.daddr, seg.dport);
  if (e < 0) return;  // undeclared: a black hole
  const external_endpoint& x = w.externals[size_t(e)];
  if (x.answer == external_answer::silent) return;
  segment out = reverse_of(seg, kExternalNs);
  out.proto = x.answer == external_answer::accept ? kProtoUdp : kProtoIcmp;
  if (w.net_wire) w.net_wire->xmit(out);
}

}  // namespace portsim::net
