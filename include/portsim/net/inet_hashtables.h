// The bind and established hash tables (include/net/inet_hashtables.h) and connect()'s autobind
// (net/ipv4/inet_hashtables.c). See sim/net/inet_hashtables.cc for the story of the scan.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "portsim/net/inet_addr.h"
#include "portsim/net/port_bitmap.h"
#include "portsim/net/sock.h"

namespace portsim::net {

struct world;
struct netns;

// include/net/inet_hashtables.h: struct inet_bind_bucket — one per (netns, port): the port's
// owners through its bind2 buckets. fastreuse/fastreuseport are -1 while only connect()
// autobind made and holds the bucket; bind() sets them >= 0 (inet_csk_update_fastreuse).
struct inet_bind_bucket {
  inet_addr fast_rcv_saddr;  // the fast* fields record the reuseport owner for the fast path
  uint32_t fastuid = 0;
  uint32_t bhash2 = kNone;   // first inet_bind2_bucket of this port
  uint16_t netns = 0;
  uint16_t port = 0;
  int8_t fastreuse = 0;      // inet_bind_bucket_create() starts at 0; connect() sets -1
  int8_t fastreuseport = 0;  // -1, 0, FASTREUSEPORT_ANY = 1, FASTREUSEPORT_STRICT = 2
  bool fast_ipv6_only = false;
  bool fast_v4 = true;
};
inline constexpr int8_t FASTREUSEPORT_ANY = 1, FASTREUSEPORT_STRICT = 2;

// include/net/inet_hashtables.h: struct inet_bind2_bucket — one per (netns, port, address);
// 6.18 keeps fastreuse/fastreuseport here too (d57f4b874946).
struct inet_bind2_bucket {
  inet_addr rcv_saddr;       // v6_rcv_saddr; IPv4 stored v4-mapped
  uint32_t tb = kNone;       // parent inet_bind_bucket
  uint32_t next = kNone;     // next tb2 of the same tb
  sock_id owners = kNone;    // head of the owners list (sock::bind_next)
  uint32_t nowners = 0;
  int8_t fastreuse = 0;      // inet_bind2_bucket_init(): 0 / 0; the caller then sets its state
  int8_t fastreuseport = 0;
};

// A set of local ports: a vector while small, an 8 KiB PortBitmap past kDestBitmapAt ports.
struct port_set {
  uint32_t count = 0;
  std::vector<uint16_t> small;
  std::unique_ptr<PortBitmap> big;
  void add(uint16_t port) {
    if (!big) return add_small(port);
    big->set(port);
    ++count;
  }
  void remove(uint16_t port) {
    if (!big) return remove_small(port);
    big->clear(port);
    --count;
  }

 private:
  void add_small(uint16_t port);     // into the vector, or the bitmap from kDestBitmapAt ports on
  void remove_small(uint16_t port);
};

// portsim's index for connect(): per (netns, saddr, daddr, dport), the local ports whose
// 4-tuple is held in ehash by a socket this host connected — `est` for sockets that always
// block (SYN_SENT, ESTABLISHED, closing states), `tw` for TIME_WAIT socks, which block unless
// tcp_twsk_unique() lets them be recycled. A scan skips `est` ports 64 per word, and `tw` ports
// too when no TIME_WAIT toward that destination can be recycled (tcp_tw_reuse off for it).
// A subset of the truth: every other candidate is still checked exactly.
struct connect_dest {
  sock_addr saddr, daddr;  // as the socks hold them: compared with theirs without decoding
  uint16_t netns = 0, dport = 0;
  uint64_t hash_port0 = 0;  // inet_ehashfn_port0() of its socks: the index's key (port 0) and theirs
  port_set est, tw;
  // The last SipHash of secure_ipv{4,6}_port_ephemeral() toward this destination and the
  // timeseed it used: the same inputs give the same hash, so connects within one 10-s window
  // reuse it (valid when port_offset_seed_ok).
  uint64_t port_offset_hash = 0;
  uint32_t port_offset_seed = 0;
  bool port_offset_seed_ok = false;
};
inline constexpr uint32_t kDestBitmapAt = 128;

// What one connect() autobind did, for the trace and --explain.
struct connect_info {
  uint64_t port_offset = 0;   // secure_ipv4_port_ephemeral()
  uint32_t timeseed = 0;      // jiffies / (10 * HZ), the 4th SipHash word
  uint32_t index = 0;         // table_perturb index (low 16 bits of port_offset)
  uint32_t perturb = 0;       // table_perturb[index] before the update
  uint32_t offset = 0;        // starting offset (first pass)
  uint32_t low = 0, high = 0; // range used, high exclusive
  uint32_t remaining = 0;
  uint8_t step = 2;
  uint8_t pass = 0;           // 1 or 2: the pass that found the port (0: none)
  uint32_t i = 0;             // the kernel's i at success, within that pass
  uint64_t examined = 0;      // candidates visited over both passes, the chosen one included
  uint32_t perturb_inc = 0;   // added to table_perturb[index]
  bool autobind = false;      // false: socket already had a port (4-tuple check only)
  bool tw_recycled = false;
};

// `hash`: the candidate 4-tuple's ehash key, inet_ehash_port(hash_port0, lport) (6.15+).
using check_established_fn = int (*)(world&, sock_id, uint16_t lport, sock_id* twp, uint32_t hash);

// The ehash key of a 4-tuple, in two steps as 6.15+ computes it for connect() ("inet: call
// inet6_ehashfn() once from inet6_hash_connect()": hash_port0 = the hash with local port 0,
// once per connect; each candidate's hash derived from it with its port). portsim's mix, not
// the kernel's jhash (ehash order is not observable in outcomes, KERNEL-MAP §7): a
// multiply-xorshift of the tuple's words without the port, then (hash_port0 + lport) times the
// 64-bit golden ratio, top half. That last step is what IdTable needs: neighbouring ports toward
// one peer land on well spread groups (an additive key like the kernel's `hash_port0 + lport`
// would put them all in one group). Measured, issue 18 session 3: keys whose low bits were the
// port's made lookups of a free port probe ~50 slots.
inline uint64_t inet_ehashfn_port0(uint16_t netns, const inet_addr& laddr, const inet_addr& raddr, uint16_t rport) {
  uint64_t h = (laddr.lo * 0x9e3779b97f4a7c15ULL) ^ (raddr.lo * 0xc2b2ae3d27d4eb4fULL) ^
               ((laddr.hi ^ (raddr.hi << 1)) * 0x165667b19e3779f9ULL) ^
               ((uint64_t(netns) << 32 | rport) * 0xff51afd7ed558ccdULL);
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 32;
  return h;
}
inline uint64_t inet_ehashfn_port0(const sock& s) { return inet_ehashfn_port0(s.netns, s.rcv_saddr, s.daddr, s.dport); }
inline uint32_t inet_ehash_port(uint64_t hash_port0, uint16_t lport) {
  return uint32_t(((hash_port0 + lport) * 0x9e3779b97f4a7c15ULL) >> 32);
}

// net/ipv4/inet_hashtables.c: inet_bind_bucket_create() / inet_bind_bucket_destroy().
uint32_t inet_bind_bucket_create(world& w, netns& ns, uint16_t port);
void inet_bind_bucket_destroy(world& w, uint32_t tb);
// net/ipv4/inet_hashtables.c: inet_bind2_bucket_find() / _create() / _destroy().
uint32_t inet_bind2_bucket_find(const world& w, uint32_t tb, const inet_addr& addr);
uint32_t inet_bind2_bucket_create(world& w, uint32_t tb, const inet_addr& addr);
void inet_bind2_bucket_set_state(world& w, uint32_t t2, int8_t fastreuse, int8_t fastreuseport);
// net/ipv4/inet_hashtables.c: inet_bind_hash() — make sk an owner of (tb, tb2) at `port`.
void inet_bind_hash(world& w, sock_id sk, uint32_t tb, uint32_t tb2, uint16_t port);
// net/ipv4/inet_hashtables.c: __inet_put_port() — release sk's port (6.18 bucket state update).
void inet_put_port(world& w, sock_id sk);
// net/ipv4/inet_hashtables.c: __inet_inherit_port() — a child joins its listener's port.
void inet_inherit_port(world& w, sock_id listener, sock_id child);
// net/ipv4/inet_hashtables.c: inet_bhash2_update_saddr() — move a bound sk to (port, saddr).
void inet_bhash2_update_saddr(world& w, sock_id sk, const inet_addr& saddr);
// connect_dest_refresh() (netns.h) keeps the connect destination index in step with a hashed
// sock's state; connect_dest_update() is its slow path, when the sock's set changes.
void connect_dest_update(world& w, sock_id sk);
// The index's entry of s's destination (netns, saddr, daddr, dport), or null (dest_find).
const connect_dest* connect_dest_find(world& w, const sock& s);
// Which set of the index a sock belongs in: hashed socks this host connected (not children
// accepted from a listener), TIME_WAIT apart (2); 0: none.
inline uint8_t connect_dest_set_of(const sock& s) {
  if (!s.hashed || s.listener != kNone) return 0;
  return s.state == tcp_state::TIME_WAIT ? 2 : 1;
}
// Recomputes netns::connect_skip for one port (reserved, or a bucket made by bind()).
void connect_skip_update(world& w, netns& ns, uint16_t port);

// net/ipv4/inet_hashtables.c: inet_ehash_insert() / sk_nulls_del_node (removal).
void inet_ehash_insert(world& w, sock_id sk);
void inet_ehash_remove(world& w, sock_id sk);
// Exact 4-tuple lookup in ehash (inet_match over the chain); kNone when absent.
sock_id inet_ehash_lookup(const world& w, uint16_t netns, const inet_addr& laddr, uint16_t lport,
                          const inet_addr& raddr, uint16_t rport);

// net/ipv4/inet_hashtables.c: __inet_check_established() — may sk use lport toward its
// destination? 0, or EADDRNOTAVAIL. A reusable TIME_WAIT is handed back through twp, or, when
// twp is null (the already-bound path), recycled at once.
int inet_check_established(world& w, sock_id sk, uint16_t lport, sock_id* twp, uint32_t hash);

// net/ipv4/inet_connection_sock.c: inet_sk_get_local_port_range() — the netns range narrowed
// by IP_LOCAL_PORT_RANGE; true when the socket has a range of its own (step 1, no parity).
bool inet_sk_get_local_port_range(const world& w, const sock& sk, int& low, int& high);

// net/ipv4/inet_hashtables.c: __inet_hash_connect() (6.18). Returns 0 or an errno.
// hash_port0: inet_ehashfn_port0(sk) (6.15+).
int inet_hash_connect_with(world& w, sock_id sk, uint64_t port_offset, uint64_t hash_port0,
                           check_established_fn check_established, connect_info& info);
// net/ipv4/inet_hashtables.c: inet_hash_connect() — offset from SipHash when unbound.
int inet_hash_connect(world& w, sock_id sk, connect_info& info);

// Where the next autobind connect() toward sk's destination will look first if nothing changes
// meanwhile: its first candidate port, that port's bind bucket and the 4-tuple's ehash key, and
// the table_perturb cell and destination bitmap word the walk reads first. portsim's, not the
// kernel's: a guess for prefetching (world::prefetch_connect_guess), read-only; 6.18's walk only
// (no socket port range, the destination's SipHash remembered); port 0 when it cannot tell.
struct connect_guess {
  uint16_t port = 0;
  uint32_t tb = kNone;        // ns.bhash[port]: kNone if the port has no bucket
  uint32_t ehash_key = 0;     // inet_ehash_port(hash_port0, port)
  const uint32_t* perturb = nullptr;
  const void* dest_word = nullptr;  // the destination's bitmap word holding port (null: none)
  // What a connect reads of its destination before the walk, and its handshake: the index's
  // slot and entry (dest_find), the recent answers of find_external() and route_to().
  std::array<const void*, 4> dest_lines{};
};
connect_guess inet_hash_connect_guess(const world& w, sock_id sk);

}  // namespace portsim::net
