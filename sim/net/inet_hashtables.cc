// net/ipv4/inet_hashtables.c — bind buckets, ehash, and connect()'s autobind.
//
// How connect() picks a local port (6.18, __inet_hash_connect):
//   port_offset = SipHash-2-4(net_secret; saddr, daddr, dport, jiffies / (10*HZ))   (64 bits)
//   index       = port_offset & 0xffff            — a cell of table_perturb[65536]
//   offset      = (table_perturb[index] + (u32)(port_offset >> 32)) % remaining, made even
//   pass 1      : ports low+offset, +2, +4, … (one wrap by subtracting remaining); pass 2: the
//                 other parity, starting one port later. Each candidate is skipped when it is
//                 reserved, when its bind bucket was made by bind() (fastreuse or
//                 fastreuseport >= 0), or when its 4-tuple is taken (__inet_check_established).
//   on success  : table_perturb[index] += max(i, get_random_u32_below(8) * step) + step.
// Worked example (live kernel, range 40000-40009, one destination): remaining = 10; the
// first five connects land on 40000..40008 in some rotation (even pass), the next five on the
// odd ports, and the 11th finds nothing in either pass: EADDRNOTAVAIL.
//
// What portsim adds: the kernel visits candidates one at a time (~55 ns each live). We visit
// exactly the same candidates and count them exactly, but skip runs of candidates that provably
// fail, 64 per word: ports in connect_skip (reserved / bind-made buckets), ports whose 4-tuple
// toward this destination a non-TIME_WAIT socket holds (connect_dest.est), and — when
// tcp_twsk_unique() cannot recycle any TIME_WAIT toward this peer (tcp_tw_reuse 0, or 2 off
// loopback) — its TIME_WAIT ports (connect_dest.tw). Every other candidate is checked exactly
// as the kernel checks it. Measured: 2.82 M connects, 2·10^10 candidates, ~2.5 s. Locks, RCU
// and the 6.15 RCU pre-check (outcome-identical) are not modelled.
// IPv6 (inet6_hash_connect) runs this same scan; only the port offset differs (secure_seq.cc).
#include "portsim/net/inet_hashtables.h"

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>

#include "portsim/base/assert.h"
#include "portsim/net/netns.h"
#include "portsim/net/observer.h"
#include "portsim/net/secure_seq.h"

namespace portsim::net {

namespace {

uint32_t tuple_hash(uint16_t netns, const inet_addr& laddr, uint16_t lport, const inet_addr& raddr,
                    uint16_t rport) {
  return inet_ehash_port(inet_ehashfn_port0(netns, laddr, raddr, rport), lport);
}

uint32_t sock_hash(const sock& s) { return tuple_hash(s.netns, s.rcv_saddr, s.num, s.daddr, s.dport); }

// The destination index's key: the ehash key of port 0, from the destination's hash_port0.
inline uint32_t dest_key(uint64_t hash_port0) { return inet_ehash_port(hash_port0, 0); }
uint32_t dest_hash(uint16_t netns, const inet_addr& saddr, const inet_addr& daddr, uint16_t dport) {
  return dest_key(inet_ehashfn_port0(netns, saddr, daddr, dport));
}

template <typename T>
uint32_t pool_alloc(std::vector<T>& pool, std::vector<uint32_t>& free_list) {
  if (!free_list.empty()) {  // freed slots are already reset
    const uint32_t id = free_list.back();
    free_list.pop_back();
    return id;
  }
  pool.emplace_back();
  return uint32_t(pool.size() - 1);
}

// --- the connect destination index (portsim's, see connect_dest) -------------------------

// Is e the entry of s's destination? (sock_addr against sock_addr: no address is decoded.)
bool dest_is(const connect_dest& e, const sock& s) {
  return e.netns == s.netns && e.dport == s.dport && e.saddr == s.rcv_saddr && e.daddr == s.daddr;
}

// The destination index lookup behind dest_find(), under the key `hash` (dest_hash()).
[[gnu::noinline]] connect_dest* dest_lookup(world& w, const sock& s, uint32_t hash) {
  const int64_t id = w.dest_table.find(hash, [&](uint32_t d) { return dest_is(w.dests[d], s); });
  if (id < 0) return nullptr;
  w.last_dest = uint32_t(id);
  return &w.dests[size_t(id)];
}

// The entry of s's destination (netns, saddr, daddr, dport), or null; the last one found is
// remembered (a connect and the state changes of one connection ask for the same one).
inline connect_dest* dest_find(world& w, const sock& s) {
  if (w.last_dest != kNone && dest_is(w.dests[w.last_dest], s)) return &w.dests[w.last_dest];
  return dest_lookup(w, s, dest_hash(s.netns, s.rcv_saddr, s.daddr, s.dport));
}

// dest_find() for a connect whose ehash key of port 0 is known (inet_hash_connect's hash_port0).
connect_dest* dest_find_port0(world& w, const sock& s, uint64_t hash_port0) {
  if (w.last_dest != kNone && dest_is(w.dests[w.last_dest], s)) return &w.dests[w.last_dest];
  return dest_lookup(w, s, dest_key(hash_port0));
}

void dest_add(world& w, sock_id id, uint8_t which) {
  sock& s = w.sk(id);
  connect_dest* d = dest_find(w, s);
  if (!d) {
    const uint32_t di = pool_alloc(w.dests, w.free_dests);
    d = &w.dests[di];
    d->saddr = s.rcv_saddr;
    d->daddr = s.daddr;
    d->netns = s.netns;
    d->dport = s.dport;
    d->hash_port0 = inet_ehashfn_port0(s);
    w.dest_table.insert(dest_key(d->hash_port0), di);
  }
  (which == 1 ? d->est : d->tw).add(s.num);
  s.in_dest = which & 3;
}

// The entry of an indexed sock (s.in_dest != 0): it exists (dest_add made it).
[[gnu::always_inline]] inline connect_dest& dest_of_indexed(world& w, const sock& s) {
  connect_dest* d = dest_find(w, s);
  PORTSIM_ASSERT(d != nullptr, "sock {} indexed without a destination entry", size_t(&s - w.socks.data()));
  return *d;
}

// s leaves its destination's set (d: dest_of_indexed(s)); an entry left empty is freed.
[[gnu::always_inline]] inline void dest_remove(world& w, sock& s, connect_dest& e) {
  connect_dest* d = &e;
  (s.in_dest == 1 ? d->est : d->tw).remove(s.num);
  s.in_dest = 0;
  if (d->est.count == 0 && d->tw.count == 0) {
    const uint32_t di = uint32_t(d - w.dests.data());
    w.dest_table.erase(dest_key(d->hash_port0), di);
    if (w.last_dest == di) w.last_dest = kNone;
    w.dests[di] = connect_dest{};
    w.free_dests.push_back(di);
  }
}

}  // namespace

void port_set::add_small(uint16_t port) {
  if (count + 1 >= kDestBitmapAt) {
    big = std::make_unique<PortBitmap>();
    for (uint16_t p : small) big->set(p);
    big->set(port);
    std::vector<uint16_t>().swap(small);
  } else {
    small.push_back(port);
  }
  ++count;
}

void port_set::remove_small(uint16_t port) {
  auto it = std::find(small.begin(), small.end(), port);
  PORTSIM_ASSERT(it != small.end(), "port {} missing from destination index", port);
  *it = small.back();
  small.pop_back();
  --count;
}

const connect_dest* connect_dest_find(world& w, const sock& s) { return dest_find(w, s); }

// connect_dest_refresh()'s slow path: the sock's set changed (hashed, into TIME_WAIT, unhashed).
void connect_dest_update(world& w, sock_id id) {
  const uint8_t want = connect_dest_set_of(w.sk(id));
  if (want == w.sk(id).in_dest) return;
  if (w.sk(id).in_dest) dest_remove(w, w.sk(id), dest_of_indexed(w, w.sk(id)));
  if (want) dest_add(w, id, want);
}

// --- world ---------------------------------------------------------------------------------

sock_id world::sock_slot(uint16_t ns) {
  sock_id id;
  if (!free_socks.empty()) {  // a freed slot keeps the timer_gen sock_free() bumped
    id = free_socks.back();
    free_socks.pop_back();
    const uint32_t gen = socks[id].timer_gen;
    socks[id] = sock{};
    socks[id].timer_gen = gen;
  } else {
    id = sock_id(socks.size());
    socks.emplace_back();
  }
  sock& s = socks[id];
  s.netns = ns;
  s.alive = true;
  s.rto_max_ms = uint32_t(nets[ns].sys.tcp_rto_max_ms);  // tcp_init_sock(): icsk_rto_max
  return id;
}

void world::sock_allocated(sock_id id) {
  if (obs) obs->sock_alloc(*this, id);
}

void world::set_local_port_range(sock_id id, uint32_t range) {
  if (local_port_ranges.size() <= id) local_port_ranges.resize(socks.size(), 0);
  local_port_ranges[id] = range;
  socks[id].has_local_port_range = range != 0;
}

void world::sock_free(sock_id id) {
  PORTSIM_ASSERT(!socks[id].hashed && socks[id].tb2 == kNone, "freeing a hashed/bound sock {}", id);
  const uint32_t gen = socks[id].timer_gen + 1;  // invalidates timers armed for the old sock
  socks[id] = sock{};
  socks[id].timer_gen = gen;
  free_socks.push_back(id);
}

static uint64_t addr_key(const inet_addr& a) { return a.hi * 0x9e3779b97f4a7c15ULL ^ a.lo; }

void world::add_external(const external_endpoint& e) {
  external_index[addr_key(e.addr)].push_back(uint32_t(externals.size()));
  externals.push_back(e);
}

int world::find_external_slow(const inet_addr& addr, uint16_t port) const {
  external_memo& recent = ext_recent[recent_slot(addr, port)];
  if (recent.answers(addr, port, externals.size())) {
    ext_memo = recent;
    return recent.index;
  }
  int found = -1;
  if (auto it = external_index.find(addr_key(addr)); it != external_index.end()) {
    for (uint32_t i : it->second) {
      const external_endpoint& e = externals[i];
      if (!(e.addr == addr)) continue;
      if (e.port == port) {
        found = int(i);
        break;
      }
      if (e.port == 0) found = int(i);
    }
  }
  ext_memo = recent = {addr, port, found, uint32_t(externals.size())};
  return found;
}

bool netns::owns(const inet_addr& a) const {
  if (a.is_loopback()) return true;  // lo: 127.0.0.0/8 and ::1 (local route table)
  for (const auto& ia : addrs)
    if (ia.addr == a) return true;
  return false;
}

// --- bind buckets ---------------------------------------------------------------------------

void connect_skip_update(world& w, netns& ns, uint16_t port) {
  bool skip = ns.sys.ip_local_reserved_ports.test(port);
  if (const uint32_t tb = ns.bhash[port]; tb != kNone)
    skip = skip || w.tbs[tb].fastreuse >= 0 || w.tbs[tb].fastreuseport >= 0;
  ns.connect_skip.assign(port, skip);
}

// net/ipv4/inet_hashtables.c: inet_bind_bucket_create().
// connect_skip is not touched: the caller is connect(), which makes the bucket -1 / -1 at once,
// and a port with a connect-made bucket or none is skipped exactly when it is reserved.
static uint32_t inet_bind_bucket_create_noskip(world& w, netns& ns, uint16_t port) {
  const uint32_t tb = pool_alloc(w.tbs, w.free_tbs);
  w.tbs[tb].netns = ns.id;
  w.tbs[tb].port = port;
  ns.bhash[port] = tb;
  if (w.obs) w.obs->bind_bucket(w, table_op::create, tb);
  return tb;
}

uint32_t inet_bind_bucket_create(world& w, netns& ns, uint16_t port) {
  const uint32_t tb = inet_bind_bucket_create_noskip(w, ns, port);
  connect_skip_update(w, ns, port);
  return tb;
}

// __inet_hash_connect's "ok:" bucket: inet_bind_bucket_create(), then fastreuse = fastreuseport
// = -1 ("made by connect"). connect_skip stays as it was (reserved or not): see above.
static uint32_t inet_bind_bucket_create_connect(world& w, netns& ns, uint16_t port) {
  const uint32_t tb = inet_bind_bucket_create_noskip(w, ns, port);
  w.tbs[tb].fastreuse = w.tbs[tb].fastreuseport = -1;
  if (w.obs) w.obs->bind_bucket(w, table_op::update, tb);
  return tb;
}

// inet_bind_bucket_destroy() of a tb that keeps tb2s: nothing before 6.18; 6.18 (d57f4b874946)
// makes it connect-shareable again (-1 / -1) when every tb2 is back to -1 / -1.
[[gnu::noinline]] static void inet_bind_bucket_release(world& w, uint32_t tb) {
  inet_bind_bucket& b = w.tbs[tb];
  netns& ns = w.nets[b.netns];
  if (!w.machines[ns.machine].kp.bucket_release) return;  // before 6.18: freed only when empty
  if (b.fastreuse == -1 && b.fastreuseport == -1) return;
  for (uint32_t t2 = b.bhash2; t2 != kNone; t2 = w.tb2s[t2].next)
    if (w.tb2s[t2].fastreuse != -1 || w.tb2s[t2].fastreuseport != -1) return;
  b.fastreuse = b.fastreuseport = -1;
  if (w.obs) w.obs->bind_bucket(w, table_op::update, tb);
  connect_skip_update(w, ns, b.port);
}

// net/ipv4/inet_hashtables.c: inet_bind_bucket_destroy() — frees an empty tb; 6.18
// (d57f4b874946): a tb whose every tb2 is back to -1/-1 becomes connect-shareable again.
[[gnu::always_inline]] inline static void inet_bind_bucket_destroy_inline(world& w, uint32_t tb) {
  inet_bind_bucket& b = w.tbs[tb];
  if (b.bhash2 != kNone) return inet_bind_bucket_release(w, tb);
  netns& ns = w.nets[b.netns];
  const uint16_t port = b.port;
  // connect_skip changes only if bind() made the bucket: without one, or with a connect-made
  // one (-1 / -1), the port is skipped exactly when it is reserved.
  const bool made_by_bind = b.fastreuse >= 0 || b.fastreuseport >= 0;
  if (w.obs) w.obs->bind_bucket(w, table_op::destroy, tb);
  ns.bhash[port] = kNone;
  b = inet_bind_bucket{};
  w.free_tbs.push_back(tb);
  if (made_by_bind) connect_skip_update(w, ns, port);
}
void inet_bind_bucket_destroy(world& w, uint32_t tb) { inet_bind_bucket_destroy_inline(w, tb); }

// net/ipv4/inet_hashtables.c: inet_bind2_bucket_find() — the (port, address) bucket of tb.
uint32_t inet_bind2_bucket_find(const world& w, uint32_t tb, const inet_addr& addr) {
  for (uint32_t t2 = w.tbs[tb].bhash2; t2 != kNone; t2 = w.tb2s[t2].next)
    if (w.tb2s[t2].rcv_saddr == addr) return t2;
  return kNone;
}

// net/ipv4/inet_hashtables.c: inet_bind2_bucket_create() — inet_bind2_bucket_init() starts
// fastreuse / fastreuseport at 0 (6.18, d57f4b874946); each caller then sets the state it
// wants (inet_csk_update_fastreuse copies tb's, __inet_hash_connect sets -1/-1), recorded
// by inet_bind2_bucket_set_state().
uint32_t inet_bind2_bucket_create(world& w, uint32_t tb, const inet_addr& addr) {
  const uint32_t t2 = pool_alloc(w.tb2s, w.free_tb2s);
  w.tb2s[t2].rcv_saddr = addr;
  w.tb2s[t2].tb = tb;
  w.tb2s[t2].next = w.tbs[tb].bhash2;
  w.tbs[tb].bhash2 = t2;
  if (w.obs) w.obs->bind2_bucket(w, table_op::create, t2);
  return t2;
}

// A caller of inet_bind2_bucket_create() (or of inet_csk_update_fastreuse) sets the tb2's
// state; the trace gets an "update" record whenever a value changes.
void inet_bind2_bucket_set_state(world& w, uint32_t t2, int8_t fastreuse, int8_t fastreuseport) {
  inet_bind2_bucket& b2 = w.tb2s[t2];
  if (b2.fastreuse == fastreuse && b2.fastreuseport == fastreuseport) return;
  b2.fastreuse = fastreuse;
  b2.fastreuseport = fastreuseport;
  if (w.obs) w.obs->bind2_bucket(w, table_op::update, t2);
}

// inet_bind2_bucket_destroy() of a tb2 that keeps owners: 6.18 (d57f4b874946) puts it back to
// -1 / -1 when every remaining owner was bound by connect() (SOCK_CONNECT_BIND).
[[gnu::noinline]] static void inet_bind2_bucket_release(world& w, uint32_t t2) {
  inet_bind2_bucket& b2 = w.tb2s[t2];
  if (b2.fastreuse == -1 && b2.fastreuseport == -1) return;
  if (!w.machines[w.nets[w.tbs[b2.tb].netns].machine].kp.bucket_release) return;  // d57f4b874946 (6.18)
  for (sock_id o = b2.owners; o != kNone; o = w.sk(o).bind_next)
    if (!(w.sk(o).userlocks & SOCK_CONNECT_BIND)) return;
  inet_bind2_bucket_set_state(w, t2, -1, -1);
}

// net/ipv4/inet_hashtables.c: inet_bind2_bucket_destroy() — frees an empty tb2; 6.18: when
// every remaining owner was bound by connect() (SOCK_CONNECT_BIND), back to -1/-1.
[[gnu::always_inline]] inline static void inet_bind2_bucket_destroy(world& w, uint32_t t2) {
  inet_bind2_bucket& b2 = w.tb2s[t2];
  if (b2.owners != kNone) return inet_bind2_bucket_release(w, t2);
  if (w.obs) w.obs->bind2_bucket(w, table_op::destroy, t2);
  uint32_t* link = &w.tbs[b2.tb].bhash2;
  while (*link != t2) link = &w.tb2s[*link].next;
  *link = b2.next;
  b2 = inet_bind2_bucket{};
  w.free_tb2s.push_back(t2);
}

static void bind_node_add(world& w, sock_id sk, uint32_t t2) {
  sock& s = w.sk(sk);
  inet_bind2_bucket& b2 = w.tb2s[t2];
  s.tb2 = t2;
  s.bind_prev = kNone;
  s.bind_next = b2.owners;
  if (b2.owners != kNone) w.sk(b2.owners).bind_prev = sk;
  b2.owners = sk;
  ++b2.nowners;
}

[[gnu::always_inline]] inline static void bind_node_del(world& w, sock_id sk) {
  sock& s = w.sk(sk);
  inet_bind2_bucket& b2 = w.tb2s[s.tb2];
  if (s.bind_prev != kNone) w.sk(s.bind_prev).bind_next = s.bind_next;
  else b2.owners = s.bind_next;
  if (s.bind_next != kNone) w.sk(s.bind_next).bind_prev = s.bind_prev;
  s.bind_next = s.bind_prev = kNone;
  s.tb2 = kNone;
  --b2.nowners;
}

// net/ipv4/inet_hashtables.c: inet_bind_hash().
void inet_bind_hash(world& w, sock_id sk, uint32_t tb, uint32_t t2, uint16_t port) {
  PORTSIM_ASSERT(w.tb2s[t2].tb == tb, "tb2 {} is not a child of tb {}", t2, tb);
  w.sk(sk).num = port;
  w.sk(sk).sport = port;  // inet_sport
  bind_node_add(w, sk, t2);
}

// net/ipv4/inet_hashtables.c: __inet_put_port() of a bound sock (inet_put_port below).
[[gnu::noinline]] static void inet_put_port_bound(world& w, sock_id sk) {
  sock& s = w.sk(sk);
  const uint32_t t2 = s.tb2, tb = w.tb2s[t2].tb;
  bind_node_del(w, sk);
  s.num = 0;
  s.userlocks &= uint8_t(~SOCK_CONNECT_BIND);
  inet_bind2_bucket_destroy(w, t2);
  inet_bind_bucket_destroy_inline(w, tb);
}

// net/ipv4/inet_hashtables.c: __inet_put_port() (inet_put_port's BH wrapper has no model);
// nothing for a sock without a port (sock_destroy after tcp_set_state(TCP_CLOSE) released it).
void inet_put_port(world& w, sock_id sk) {
  if (w.sk(sk).tb2 != kNone) inet_put_port_bound(w, sk);
}

// net/ipv4/inet_hashtables.c: __inet_inherit_port() — the child joins the tb2 of its own
// (specific) local address under the listener's tb, creating it when needed (its state stays
// inet_bind2_bucket_init's 0 / 0: update_fastreuse is only set for a tproxy'd other port).
void inet_inherit_port(world& w, sock_id listener, sock_id child) {
  const uint32_t tb = w.tb2s[w.sk(listener).tb2].tb;
  uint32_t t2 = inet_bind2_bucket_find(w, tb, w.sk(child).rcv_saddr);
  if (t2 == kNone) t2 = inet_bind2_bucket_create(w, tb, w.sk(child).rcv_saddr);
  inet_bind_hash(w, child, tb, t2, w.sk(listener).num);
}

// net/ipv4/inet_hashtables.c: __inet_bhash2_update_saddr() — connect() fixed the source
// address of a socket bound to the wildcard: move it to the (port, saddr) tb2.
[[gnu::noinline]] static void inet_bhash2_update_saddr_bound(world& w, sock_id sk, const inet_addr& saddr) {
  sock& s = w.sk(sk);
  const uint32_t old = s.tb2, tb = w.tb2s[old].tb;
  bind_node_del(w, sk);
  inet_bind2_bucket_destroy(w, old);
  s.rcv_saddr = saddr;
  uint32_t t2 = inet_bind2_bucket_find(w, tb, saddr);
  if (t2 == kNone) {  // 6.18: a new tb2 of a connect()-bound socket starts at -1 / -1
    t2 = inet_bind2_bucket_create(w, tb, saddr);
    if (s.userlocks & SOCK_CONNECT_BIND) inet_bind2_bucket_set_state(w, t2, -1, -1);
  }
  bind_node_add(w, sk, t2);
}

// An unbound sock (tcp_disconnect() after its port went back) only takes the address.
void inet_bhash2_update_saddr(world& w, sock_id sk, const inet_addr& saddr) {
  sock& s = w.sk(sk);
  if (s.tb2 == kNone) s.rcv_saddr = saddr;
  else inet_bhash2_update_saddr_bound(w, sk, saddr);
}

// --- ehash -----------------------------------------------------------------------------------

sock_id inet_ehash_lookup(const world& w, uint16_t netns, const inet_addr& laddr, uint16_t lport,
                          const inet_addr& raddr, uint16_t rport) {
  const int64_t id = w.ehash.find(tuple_hash(netns, laddr, lport, raddr, rport), [&](uint32_t i) {
    const sock& s = w.sk(i);
    return s.netns == netns && s.num == lport && s.dport == rport && s.rcv_saddr == laddr &&
           s.daddr == raddr;
  });
  return id < 0 ? kNone : sock_id(id);
}

// net/ipv4/inet_hashtables.c: inet_ehash_insert(), under sk's key `hash` (sock_hash()); with
// `empty_slot`, where the failed lookup of that key in __inet_check_established() ended.
static void inet_ehash_insert_hashed(world& w, sock_id sk, uint32_t hash, const size_t* empty_slot) {
  sock& s = w.sk(sk);
  PORTSIM_ASSERT(!s.hashed, "sock {} hashed twice", sk);
  if (empty_slot) w.ehash.insert_at(hash, sk, *empty_slot);
  else w.ehash.insert(hash, sk);
  s.hashed = true;
  connect_dest_refresh(w, sk);
  if (w.obs) w.obs->ehash(w, table_op::create, sk);
}

// net/ipv4/inet_hashtables.c: inet_ehash_insert().
void inet_ehash_insert(world& w, sock_id sk) { inet_ehash_insert_hashed(w, sk, sock_hash(w.sk(sk)), nullptr); }

// inet_ehash_remove() of a hashed sock.
// A sock in the connect destination index (connect_dest_set_of) leaves it with ehash; its
// entry keeps the ehash key of port 0 (the sock's own inet_ehashfn_port0), from which the
// sock's ehash key follows without hashing the 4-tuple again.
[[gnu::noinline]] static void inet_ehash_unhash(world& w, sock_id sk) {
  sock& s = w.sk(sk);
  if (w.obs) w.obs->ehash(w, table_op::destroy, sk);
  s.unhashed_once = true;  // kernel_profile::listen_refused_after_unhash
  if (!s.in_dest) {
    w.ehash.erase(sock_hash(s), sk);
    s.hashed = false;
    return;
  }
  connect_dest& d = dest_of_indexed(w, s);
  w.ehash.erase(inet_ehash_port(d.hash_port0, s.num), sk);
  s.hashed = false;
  dest_remove(w, s, d);
}

// net/ipv4/inet_hashtables.c: inet_unhash() / sk_nulls_del_node_init_rcu(); nothing when unhashed.
void inet_ehash_remove(world& w, sock_id sk) {
  if (w.sk(sk).hashed) inet_ehash_unhash(w, sk);
}

// --- connect() -----------------------------------------------------------------------------

// net/ipv4/tcp_ipv4.c: tcp_twsk_unique() lives with the TIME_WAIT code; declared here.
bool tcp_twsk_unique(world& w, sock_id sk, sock_id tw, bool have_twp);
// net/ipv4/inet_timewait_sock.c: inet_twsk_bind_unhash() + inet_twsk_deschedule_put().
void inet_twsk_kill(world& w, sock_id tw);

// net/ipv4/inet_hashtables.c: __inet_check_established(). `hash` is the 4-tuple's ehash key,
// derived by the caller from hash_port0 (6.15+).
int inet_check_established(world& w, sock_id sk, uint16_t lport, sock_id* twp, uint32_t hash) {
  const sock& s = w.sk(sk);
  size_t empty_slot = 0;
  const int64_t found = w.ehash.find(hash, [&](uint32_t i) {
    const sock& o = w.sk(i);
    return o.netns == s.netns && o.num == lport && o.dport == s.dport && o.rcv_saddr == s.rcv_saddr &&
           o.daddr == s.daddr;
  }, empty_slot);
  const sock_id other = found < 0 ? kNone : sock_id(found);
  sock_id tw = kNone;
  const bool explain = w.obs && w.obs->explaining();
  if (other != kNone) {
    const sock& o = w.sk(other);
    if (explain)  // a TIME_WAIT holder: tcp_twsk_unique() tells its verdict on the next line
      w.obs->explain("__inet_check_established",
                     fmt::format("port {}: 4-tuple {} > {} held by {} in {}{}", lport, to_string(endpoint{s.rcv_saddr, lport}),
                                 to_string(endpoint{s.daddr, s.dport}), w.obs->sock_name(w, other), tcp_state_name(o.state),
                                 o.state != tcp_state::TIME_WAIT ? ": not unique"
                                 : o.tw_substate == tcp_state::FIN_WAIT2 ? " (substate FIN_WAIT2)" : ""));
    if (o.state != tcp_state::TIME_WAIT || !tcp_twsk_unique(w, sk, other, twp != nullptr)) return EADDRNOTAVAIL;
    tw = other;
  } else if (explain) {
    w.obs->explain("__inet_check_established", fmt::format("port {}: 4-tuple {} > {} unique", lport,
                                                           to_string(endpoint{s.rcv_saddr, lport}),
                                                           to_string(endpoint{s.daddr, s.dport})));
  }
  w.sk(sk).num = lport;
  w.sk(sk).sport = lport;
  inet_ehash_insert_hashed(w, sk, hash, other == kNone ? &empty_slot : nullptr);
  if (tw != kNone) {
    ++w.st.tw_recycled;  // LINUX_MIB_TIMEWAITRECYCLED
    inet_ehash_remove(w, tw);
    if (twp) *twp = tw;
    else inet_twsk_kill(w, tw);
  }
  return 0;
}

// net/ipv4/inet_connection_sock.c: inet_sk_get_local_port_range() (6.3+, 91d0b78c5177).
bool inet_sk_get_local_port_range(const world& w, const sock& sk, int& low, int& high) {
  const sysctls& sys = w.nets[sk.netns].sys;
  low = sys.ip_local_port_range_lo;
  high = sys.ip_local_port_range_hi;
  const uint32_t range = w.local_port_range(sk);
  const int sk_lo = int(range & 0xffff), sk_hi = int(range >> 16);
  if (sk_lo && sk_lo >= low && sk_lo <= high) low = sk_lo;  // only if inside the netns range
  if (sk_hi && sk_hi >= low && sk_hi <= high) high = sk_hi;
  return range != 0;
}

namespace {

// The connect_info fields every era's walk reports: where it starts and over which range.
void set_walk(connect_info& info, uint32_t offset, int low, int high, uint32_t remaining, int step) {
  info.offset = offset;
  info.low = uint32_t(low);
  info.high = uint32_t(high);
  info.remaining = remaining;
  info.step = uint8_t(step);
}


// One parity pass of the scan (kernel label: other_parity_scan). Visits candidates
// k = 0, 1, …: port = low + offset + k*step, minus `remaining` once it reaches `high`.
// Returns the port found (0 if none) and sets `k_found` / `visited`.
struct pass_result {
  uint16_t port = 0;
  uint32_t visited = 0;  // candidates examined in this pass (the found one included)
  uint32_t k = 0;
  sock_id tw = kNone;
  uint32_t tb2 = kNone;  // the port's tb2 of sk's address, if prefetch_candidate() found it
  uint32_t hash = 0;     // the 4-tuple's ehash key (inet_ehash_port) with the port found
};

// Can any TIME_WAIT toward sk's destination be recycled by this autobind scan? Not when
// tcp_twsk_unique() sees reuse = 0: tcp_tw_reuse 0, or 2 with neither address loopback (the
// TW's addresses are sk's, the 4-tuples differing only in the local port).
bool tw_recyclable(const world& w, const sock& sk) {
  const int reuse = w.nets[sk.netns].sys.tcp_tw_reuse;
  if (reuse != 0 && !w.machines[w.nets[sk.netns].machine].kp.tw_reuse_loopback_mode) return true;  // < 4.18
  return reuse == 1 || (reuse == 2 && (sk.daddr.is_loopback() || sk.rcv_saddr.is_loopback()));
}

// 6.18's walk start (see the head of this file): the table_perturb cell of port_offset, and the
// offset (table_perturb[index] + port_offset's high 32 bits) % remaining, made even for the
// parity passes. inet_hash_connect_dest() and inet_hash_connect_guess() both start here.
constexpr uint32_t perturb_index(uint64_t port_offset) { return uint32_t(port_offset & (INET_TABLE_PERTURB_SIZE - 1)); }
constexpr uint32_t walk_offset(uint32_t perturb, uint64_t port_offset, uint32_t remaining, bool parity) {
  const uint32_t offset = (perturb + uint32_t(port_offset >> 32)) % remaining;
  return parity ? offset & ~1u : offset;
}

// One pass's candidates, the kernel's `for (i = 0; i < remaining; i += step)`: n of them; the
// first k1 are ports start, start + step, … below high (segment 1), the rest follow the wrap from
// port wrap_first (segment 2).
struct pass_span {
  uint32_t n, start, k1, wrap_first;
};
constexpr pass_span pass_span_of(int low, int high, uint32_t remaining, uint32_t offset, uint32_t step) {
  const uint32_t n = (remaining + step - 1) / step;
  const uint32_t start = uint32_t(low) + offset;
  const uint32_t k1 = std::min(n, (uint32_t(high) - start + step - 1) / step);
  return {n, start, k1, start + k1 * step - remaining};
}

// First k in [k0, k_end) of the segment starting at port `first` with `step` that is not
// excluded by the bitmaps; k_end if none.
uint32_t next_candidate(const PortBitmap& skip, const PortBitmap* dest, const PortBitmap* tw, uint32_t first,
                        uint32_t step, uint32_t k0, uint32_t k_end) {
  if (k0 >= k_end) return k_end;
  if (step == 2) return k0 + find_free_step2(skip, dest, tw, first + 2 * k0, k_end - k0);
  // step 1: the earliest free port of either parity class
  const uint32_t p0 = first + k0, n = k_end - k0;
  uint32_t best = n;
  for (uint32_t par = 0; par < 2; ++par) {
    const uint32_t start = p0 + ((p0 & 1) != par);
    if (start >= p0 + n) continue;
    const uint32_t cnt = (p0 + n - start + 1) / 2;
    const uint32_t j = find_free_step2(skip, dest, tw, start, cnt);
    if (j < cnt) best = std::min(best, start - p0 + 2 * j);
  }
  return k0 + best;
}

// --explain: why __inet_hash_connect() passes over a port without a 4-tuple check — reserved,
// or its bind bucket was made by bind() (fastreuse or fastreuseport >= 0), naming its owners.
void explain_skipped_candidate(world& w, const netns& ns, uint16_t port) {
  if (ns.sys.ip_local_reserved_ports.test(port)) {
    w.obs->explain("__inet_hash_connect", fmt::format("port {}: reserved (net.ipv4.ip_local_reserved_ports), skipped", port));
    return;
  }
  const inet_bind_bucket& b = w.tbs[ns.bhash[port]];
  std::string owners;
  for (uint32_t t2 = b.bhash2; t2 != kNone; t2 = w.tb2s[t2].next)
    for (sock_id o = w.tb2s[t2].owners; o != kNone; o = w.sk(o).bind_next)
      owners += (owners.empty() ? "" : ", ") + w.obs->sock_name(w, o);
  w.obs->explain("__inet_hash_connect",
                 fmt::format("port {}: bind bucket made by bind() (fastreuse {}, fastreuseport {}; owners: {}), skipped",
                             port, int(b.fastreuse), int(b.fastreuseport), owners.empty() ? "none" : owners));
}

// Memory the check of candidate `port` and a success on it touch, asked for at once so that the
// misses overlap instead of following one another: the ehash slot of the 4-tuple
// (__inet_check_established) and the sock at the head of the tb2's owners list, whose bind_prev
// inet_bind_hash() rewrites (a socket of another destination, last touched long ago). Loads
// only; the walk and its outcome do not depend on it. Returns that tb2 (inet_bind2_bucket_find),
// kNone if there is none: a success on the port needs it.
uint32_t prefetch_candidate(const world& w, const sock& s, uint32_t tb, uint32_t hash) {
  w.ehash.prefetch(hash);
  const uint32_t t2 = inet_bind2_bucket_find(w, tb, s.rcv_saddr);
  if (t2 != kNone && w.tb2s[t2].owners != kNone) __builtin_prefetch(&w.socks[w.tb2s[t2].owners], 1);
  return t2;
}

// A PortBitmap with no port set: what --explain's walk skips (nothing).
const PortBitmap kNoSkip{};

// scan_pass() for one step (2: the parity passes; 1: IP_LOCAL_PORT_RANGE's walk, the older eras'
// sequential walks) and one mode (Explain: --explain visits every candidate one by one, without
// the 64-port skips, and says why each fails). Compiled per case so that the hot loop carries
// neither question.
template <uint32_t Step, bool Explain>
pass_result scan_pass_as(world& w, sock_id sk, netns& ns, const connect_dest* d, int low, int high, uint32_t remaining,
                         uint32_t offset, uint64_t hash_port0, check_established_fn check_established) {
  pass_result r;
  const sock& s = w.sk(sk);  // no sock is allocated during the scan
  const pass_span span = pass_span_of(low, high, remaining, offset, Step);
  const uint32_t n = span.n, k1 = span.k1;
  const PortBitmap& skip = Explain ? kNoSkip : ns.connect_skip;
  const PortBitmap* dest_bits = d && !Explain ? d->est.big.get() : nullptr;
  const PortBitmap* tw_bits = d && !Explain && d->tw.big && !tw_recyclable(w, s) ? d->tw.big.get() : nullptr;
  for (uint32_t seg = 0; seg < 2; ++seg) {
    const uint32_t k_begin = seg == 0 ? 0 : k1, k_end = seg == 0 ? k1 : n;
    const uint32_t first = seg == 0 ? span.start : span.wrap_first;  // port at k_begin
    for (uint32_t k = k_begin; k < k_end; ++k) {
      k = k_begin + next_candidate(skip, dest_bits, tw_bits, first, Step, k - k_begin, k_end - k_begin);
      if (k >= k_end) break;
      const uint16_t port = uint16_t(first + (k - k_begin) * Step);
      const uint32_t tb = ns.bhash[port];
      const uint32_t hash = inet_ehash_port(hash_port0, port);  // the kernel's hash_port0 + port
      const uint32_t t2 = tb != kNone && !Explain ? prefetch_candidate(w, s, tb, hash) : kNone;
      if (Explain && ns.connect_skip.test(port)) {
        explain_skipped_candidate(w, ns, port);
        continue;
      }
      if (tb == kNone) {  // no bucket: the port is free in this netns
        if (Explain) w.obs->explain("__inet_hash_connect", fmt::format("port {}: no bind bucket: free", port));
        r = {port, k + 1, k, kNone, kNone, hash};
        return r;
      }
      PORTSIM_ASSERT(w.tbs[tb].fastreuse < 0 && w.tbs[tb].fastreuseport < 0,
                     "bind-made bucket {} not in connect_skip", port);
      sock_id tw = kNone;
      if (check_established(w, sk, port, &tw, hash) == 0) {
        r = {port, k + 1, k, tw, t2, hash};
        return r;
      }
    }
  }
  r.visited = n;
  return r;
}

// One parity pass of the scan: scan_pass_as() for `step` and --explain (inlined: each caller
// calls the right one directly).
[[gnu::always_inline]] inline pass_result scan_pass(world& w, sock_id sk, netns& ns, const connect_dest* d, int low,
                                                    int high, uint32_t remaining, uint32_t offset, uint32_t step,
                                                    uint64_t hash_port0, check_established_fn check_established) {
  if (w.obs && w.obs->explaining())
    return step == 2 ? scan_pass_as<2, true>(w, sk, ns, d, low, high, remaining, offset, hash_port0, check_established)
                     : scan_pass_as<1, true>(w, sk, ns, d, low, high, remaining, offset, hash_port0, check_established);
  return step == 2 ? scan_pass_as<2, false>(w, sk, ns, d, low, high, remaining, offset, hash_port0, check_established)
                   : scan_pass_as<1, false>(w, sk, ns, d, low, high, remaining, offset, hash_port0, check_established);
}

}  // namespace

namespace {

// net/ipv4/inet_hashtables.c: __inet_hash_connect() (6.18). See the head of this file. `d` is
// the destination index's entry of sk's destination (null: none yet).
int inet_hash_connect_dest(world& w, sock_id sk, uint64_t port_offset, uint64_t hash_port0, const connect_dest* d,
                           check_established_fn check_established, connect_info& info) {
  sock& s = w.sk(sk);
  netns& ns = w.nets[s.netns];
  if (s.num) {  // bound already: only the 4-tuple must be unique
    info.autobind = false;
    return check_established(w, sk, s.num, nullptr, inet_ehash_port(hash_port0, s.num));
  }
  info.autobind = true;
  machine& m = w.machines[ns.machine];
  int low, high;
  // 6.3-6.7 (91d0b78c5177): IP_LOCAL_PORT_RANGE narrows the range but keeps the parity passes;
  // 6.8 (207184853dbd): a socket with its own range walks step 1.
  bool local_ports = false;
  if (s.has_local_port_range) {  // IP_LOCAL_PORT_RANGE set: inet_sk_get_local_port_range() narrows
    local_ports = inet_sk_get_local_port_range(w, s, low, high) && m.kp.iplpr == iplpr_mode::no_parity;
  } else {  // what inet_sk_get_local_port_range() answers without a socket range
    low = ns.sys.ip_local_port_range_lo;
    high = ns.sys.ip_local_port_range_hi;
  }
  const uint32_t step = local_ports ? 1 : 2;
  high++;  // [32768, 60999] -> [32768, 61000[
  uint32_t remaining = uint32_t(high - low);
  if (!local_ports && remaining > 1) remaining &= ~1u;

  const uint32_t index = perturb_index(port_offset);
  // first pass: ports of low's parity; bind() does the opposite
  uint32_t offset = walk_offset(m.table_perturb[index], port_offset, remaining, !local_ports);
  info.port_offset = port_offset;
  info.index = index;
  info.perturb = m.table_perturb[index];
  set_walk(info, offset, low, high, remaining, step);

  if (w.obs && w.obs->explaining()) {
    w.obs->explain("secure_ipv4_port_ephemeral", fmt::format("port_offset = siphash(saddr, daddr, dport, timeseed {}) = {:#018x}",
                                                             info.timeseed, port_offset));
    w.obs->explain("__inet_hash_connect", fmt::format("range [{}, {}], remaining {}, step {}; index = {} (low 16 bits)",
                                                      low, high - 1, remaining, step, index));
    w.obs->explain("__inet_hash_connect", fmt::format("offset = (table_perturb[{}] {} + {}) % {} {}= {}", index, info.perturb,
                                                      uint32_t(port_offset >> 32), remaining, step == 2 ? "made even " : "",
                                                      offset));
  }
  for (uint8_t pass = 1;; ++pass) {
    const pass_result r = scan_pass(w, sk, ns, d, low, high, remaining, offset, step, hash_port0, check_established);
    info.examined += r.visited;
    if (r.port) {
      // kernel label ok: create tb if needed, tb2, perturb update, bind, hash
      uint32_t tb = ns.bhash[r.port];
      if (tb == kNone) tb = inet_bind_bucket_create_connect(w, ns, r.port);  // "made by connect"
      uint32_t t2 = r.tb2 != kNone ? r.tb2 : inet_bind2_bucket_find(w, tb, s.rcv_saddr);
      if (t2 == kNone) {
        t2 = inet_bind2_bucket_create(w, tb, s.rcv_saddr);
        inet_bind2_bucket_set_state(w, t2, -1, -1);
      }
      const uint32_t i = r.k * step;
      const uint32_t inc = std::max(i, m.perturb_draw(8) * step) + step;
      m.table_perturb[index] += inc;
      info.pass = pass;
      info.i = i;
      info.perturb_inc = inc;
      info.tw_recycled = r.tw != kNone;
      inet_bind_hash(w, sk, tb, t2, r.port);
      w.sk(sk).userlocks |= SOCK_CONNECT_BIND;
      if (!w.sk(sk).hashed) inet_ehash_insert_hashed(w, sk, r.hash, nullptr);
      if (r.tw != kNone) inet_twsk_kill(w, r.tw);
      return 0;
    }
    if (local_ports) break;
    offset++;
    if (!((offset & 1) && remaining > 1)) break;
  }
  return EADDRNOTAVAIL;
}

}  // namespace

int inet_hash_connect_with(world& w, sock_id sk, uint64_t port_offset, uint64_t hash_port0,
                           check_established_fn check_established, connect_info& info) {
  const sock& s = w.sk(sk);
  return inet_hash_connect_dest(w, sk, port_offset, hash_port0, dest_find_port0(w, s, hash_port0), check_established, info);
}

// --- the older connect() walks, one function per era (kernel_profile.h: connect_era) --------
//
// Each takes the kernel's own port_offset (already truncated to the era's width) and walks the
// same candidates, in the same order, as that era's __inet_hash_connect; the candidate checks
// (reserved, bind-made bucket, __inet_check_established) are the ones above. scan_pass() visits
// port = low + offset + k*step, wrapping once at `high`, for k < ceil(remaining / step).

namespace {

// The "ok:" tail shared by every era: bucket (made by connect: fastreuse -1), tb2, bind, hash.
void hash_connect_ok(world& w, sock_id sk, netns& ns, const pass_result& r) {
  const sock& s = w.sk(sk);
  uint32_t tb = ns.bhash[r.port];
  if (tb == kNone) tb = inet_bind_bucket_create_connect(w, ns, r.port);
  uint32_t t2 = inet_bind2_bucket_find(w, tb, s.rcv_saddr);
  if (t2 == kNone) t2 = inet_bind2_bucket_create(w, tb, s.rcv_saddr);
  inet_bind_hash(w, sk, tb, t2, r.port);
  w.sk(sk).userlocks |= SOCK_CONNECT_BIND;
  if (!w.sk(sk).hashed) inet_ehash_insert(w, sk);
  if (r.tw != kNone) inet_twsk_kill(w, r.tw);
}

// An era's --explain line; `describe` (which formats it) runs only when explaining.
template <typename Describe>
void explain_era(world& w, Describe&& describe) {
  if (w.obs && w.obs->explaining()) w.obs->explain("__inet_hash_connect", describe());
}

// The end every older era's walk shares once a port is found (beside set_walk, which records
// where the walk began): what connect_info reports, the era's --explain line (`describe` runs
// only when explaining), then the "ok:" tail.
template <typename Describe>
void finish_walk(world& w, sock_id sk, const pass_result& r, uint8_t pass, uint32_t i, uint32_t inc,
                 connect_info& info, Describe&& describe) {
  info.pass = pass;
  info.i = i;
  info.perturb_inc = inc;
  info.tw_recycled = r.tw != kNone;
  explain_era(w, describe);
  hash_connect_ok(w, sk, w.ns_of(sk), r);
}

// One step-1 walk of `remaining` candidates from low + start (C1, C2).
int sequential_walk(world& w, sock_id sk, uint32_t start, uint32_t remaining, int low, int high,
                    check_established_fn check_established, connect_info& info, pass_result& r) {
  netns& ns = w.ns_of(sk);
  const uint64_t hash_port0 = inet_ehashfn_port0(w.sk(sk));
  const connect_dest* d = dest_find_port0(w, w.sk(sk), hash_port0);
  set_walk(info, start, low, high, remaining, 1);
  r = scan_pass(w, sk, ns, d, low, high, remaining, start, 1, hash_port0, check_established);
  info.examined += r.visited;
  return r.port ? 0 : EADDRNOTAVAIL;
}

// 3.10 net/ipv4/inet_hashtables.c: __inet_hash_connect() (C1, ≤ 4.1): offset = hint +
// port_offset; for (i = 1; i <= remaining; i++) port = low + (i + offset) % remaining over the
// inclusive range; on success hint += i.
int inet_hash_connect_c1(world& w, sock_id sk, uint32_t port_offset, check_established_fn check_established,
                         connect_info& info) {
  machine& m = w.machine_of(w.ns_of(sk));
  const sysctls& sys = w.ns_of(sk).sys;
  const int low = sys.ip_local_port_range_lo, high = sys.ip_local_port_range_hi;
  const uint32_t remaining = uint32_t(high - low) + 1;
  const uint32_t offset = m.hint + port_offset;
  info.perturb = m.hint;
  explain_era(w, [&] { return fmt::format("C1 (3.10): offset = hint {} + port_offset {} = {}; remaining = {} - {} + 1 = {}; "
                             "port = low + (i + offset) % remaining for i = 1..remaining, first {}",
                             m.hint, port_offset, offset, high, low, remaining, low + int((offset + 1) % remaining)); });
  pass_result r;
  if (sequential_walk(w, sk, (offset + 1) % remaining, remaining, low, high + 1, check_established, info, r))
    return EADDRNOTAVAIL;
  const uint32_t i = r.k + 1;
  m.hint += i;
  finish_walk(w, sk, r, 1, i, i, info,
              [&] { return fmt::format("C1 (3.10): port {} at i = {}; hint += i -> {}", r.port, i, m.hint); });
  return 0;
}

// 4.2 net/ipv4/inet_hashtables.c: __inet_hash_connect() (C2, 07f4c90062f8): offset = (hint +
// port_offset) & ~1; for (i = 0; i < remaining; i++) port = low + (i + offset) % remaining;
// on success hint += (i + 2) & ~1.
int inet_hash_connect_c2(world& w, sock_id sk, uint32_t port_offset, check_established_fn check_established,
                         connect_info& info) {
  machine& m = w.machine_of(w.ns_of(sk));
  const sysctls& sys = w.ns_of(sk).sys;
  const int low = sys.ip_local_port_range_lo, high = sys.ip_local_port_range_hi;
  const uint32_t remaining = uint32_t(high - low) + 1;
  const uint32_t offset = (m.hint + port_offset) & ~1u;
  info.perturb = m.hint;
  explain_era(w, [&] { return fmt::format("C2 (4.2): offset = (hint {} + port_offset {}) & ~1 = {}; remaining = {}; "
                             "port = low + (i + offset) % remaining for i = 0.., first {}",
                             m.hint, port_offset, offset, remaining, low + int(offset % remaining)); });
  pass_result r;
  if (sequential_walk(w, sk, offset % remaining, remaining, low, high + 1, check_established, info, r))
    return EADDRNOTAVAIL;
  const uint32_t i = r.k;
  const uint32_t inc = (i + 2) & ~1u;
  m.hint += inc;
  finish_walk(w, sk, r, 1, i, inc, info,
              [&] { return fmt::format("C2 (4.2): port {} at i = {}; hint += (i + 2) & ~1 -> {}", r.port, i, m.hint); });
  return 0;
}

// The parity passes of 4.6 … 5.17 (C3, C4): pass 1 from the even `offset`, step 2; then offset++
// and pass 2 on the other parity. Returns the pass that found a port (0: none).
uint8_t parity_passes(world& w, sock_id sk, int low, int high, uint32_t remaining, uint32_t offset,
                      check_established_fn check_established, connect_info& info, pass_result& r) {
  netns& ns = w.ns_of(sk);
  const uint64_t hash_port0 = inet_ehashfn_port0(w.sk(sk));
  const connect_dest* d = dest_find_port0(w, w.sk(sk), hash_port0);
  set_walk(info, offset, low, high, remaining, 2);
  for (uint8_t pass = 1;; ++pass) {
    r = scan_pass(w, sk, ns, d, low, high, remaining, offset, 2, hash_port0, check_established);
    info.examined += r.visited;
    if (r.port) return pass;
    offset++;
    if (!((offset & 1) && remaining > 1)) return 0;
  }
}

// 4.6 net/ipv4/inet_hashtables.c: __inet_hash_connect() (C3, 1580ab63fc9a; until 5.11 and
// the LTS 2022 backports): high++, remaining even, offset = ((hint + port_offset) % remaining)
// & ~1, two parity passes; on success hint += i + 2.
int inet_hash_connect_c3(world& w, sock_id sk, uint32_t port_offset, check_established_fn check_established,
                         connect_info& info) {
  machine& m = w.machine_of(w.ns_of(sk));
  const sysctls& sys = w.ns_of(sk).sys;
  const int low = sys.ip_local_port_range_lo, high = sys.ip_local_port_range_hi + 1;
  uint32_t remaining = uint32_t(high - low);
  if (remaining > 1) remaining &= ~1u;
  const uint32_t offset = ((m.hint + port_offset) % remaining) & ~1u;
  info.perturb = m.hint;
  explain_era(w, [&] { return fmt::format("C3 (4.6-5.11): offset = ((hint {} + port_offset {}) % {}) & ~1 = {}; even pass first, step 2",
                             m.hint, port_offset, remaining, offset); });
  pass_result r;
  const uint8_t pass = parity_passes(w, sk, low, high, remaining, offset, check_established, info, r);
  if (!pass) return EADDRNOTAVAIL;
  const uint32_t i = r.k * 2;
  m.hint += i + 2;
  finish_walk(w, sk, r, pass, i, i + 2, info,
              [&] { return fmt::format("C3: port {} in pass {} at i = {}; hint += i + 2 -> {}", r.port, pass, i, m.hint); });
  return 0;
}

// include/linux/hash.h: hash_32(val, bits) = (val * GOLDEN_RATIO_32) >> (32 - bits).
constexpr uint32_t hash_32(uint32_t val, unsigned bits) { return (val * 0x61C88647u) >> (32 - bits); }

// 5.12 net/ipv4/inet_hashtables.c: __inet_hash_connect() (C4, 190cc82489f4; LTS interim C4'):
// index = hash_32(port_offset, 8); offset = ((table_perturb[index] + port_offset) % remaining)
// & ~1; two parity passes; on success (c579bd1b4021, 5.12) i = 2 one time in 16 when i == 0,
// then table_perturb[index] += i + 2.
int inet_hash_connect_c4(world& w, sock_id sk, uint32_t port_offset, check_established_fn check_established,
                         connect_info& info) {
  machine& m = w.machine_of(w.ns_of(sk));
  const sysctls& sys = w.ns_of(sk).sys;
  const int low = sys.ip_local_port_range_lo, high = sys.ip_local_port_range_hi + 1;
  uint32_t remaining = uint32_t(high - low);
  if (remaining > 1) remaining &= ~1u;
  const uint32_t index = hash_32(port_offset, 8);
  const uint32_t offset = ((m.table_perturb[index] + port_offset) % remaining) & ~1u;
  info.index = index;
  info.perturb = m.table_perturb[index];
  explain_era(w, [&] { return fmt::format("C4 (5.12-5.17): index = hash_32(port_offset {}, 8) = {}; offset = ((table_perturb[{}] {} + "
                             "port_offset) % {}) & ~1 = {}", port_offset, index, index, info.perturb, remaining, offset); });
  pass_result r;
  const uint8_t pass = parity_passes(w, sk, low, high, remaining, offset, check_established, info, r);
  if (!pass) return EADDRNOTAVAIL;
  uint32_t i = r.k * 2;
  if (m.kp.noise == perturb_noise::one_in_16 && i == 0 && m.perturb_draw(16) == 0) i = 2;  // prandom_u32() % 16
  m.table_perturb[index] += i + 2;
  finish_walk(w, sk, r, pass, r.k * 2, i + 2, info, [&] {
    return fmt::format("C4: port {} in pass {} at i = {}; table_perturb[{}] += {}", r.port, pass, r.k * 2, index, i + 2);
  });
  return 0;
}

}  // namespace

// What the next inet_hash_connect_dest() toward sk's destination examines first, should
// nothing change in between (table_perturb, the bitmaps, the timeseed): the first port of its
// walk that neither connect_skip nor the destination's established ports (nor its TIME_WAIT
// ones, when none can be recycled) exclude — both parity passes, each wrapping once, as
// scan_pass_as() goes. A guess: wrong at worst, never harmful.
connect_guess inet_hash_connect_guess(const world& w, sock_id sk) {
  const sock& s = w.sk(sk);
  const netns& ns = w.nets[s.netns];
  const machine& m = w.machines[ns.machine];
  if (m.kp.connect != connect_era::c5_dhps || s.has_local_port_range) return {};
  if (w.last_dest == kNone || !dest_is(w.dests[w.last_dest], s)) return {};
  const connect_dest& d = w.dests[w.last_dest];
  if (!d.port_offset_seed_ok) return {};
  const uint64_t po = m.kp.hash == port_hash::siphash32_timeseed ? uint32_t(d.port_offset_hash) : d.port_offset_hash;
  const int low = ns.sys.ip_local_port_range_lo, high = ns.sys.ip_local_port_range_hi + 1;
  uint32_t remaining = uint32_t(high - low);
  if (remaining < 2) return {};
  remaining &= ~1u;
  const uint32_t* perturb = &m.table_perturb[perturb_index(po)];
  const uint32_t offset = walk_offset(*perturb, po, remaining, true);
  const PortBitmap* bits = d.est.big.get();
  const PortBitmap* tw_bits = d.tw.big && !tw_recyclable(w, s) ? d.tw.big.get() : nullptr;
  for (uint32_t pass = 0; pass < 2; ++pass) {
    const pass_span sp = pass_span_of(low, high, remaining, offset + pass, 2);
    uint32_t port = 0;
    if (const uint32_t k = next_candidate(ns.connect_skip, bits, tw_bits, sp.start, 2, 0, sp.k1); k < sp.k1) {
      port = sp.start + 2 * k;
    } else if (const uint32_t k2 = next_candidate(ns.connect_skip, bits, tw_bits, sp.wrap_first, 2, 0, sp.n - sp.k1);
               k2 < sp.n - sp.k1) {
      port = sp.wrap_first + 2 * k2;
    }
    if (port) {
      const inet_addr daddr = s.daddr;
      return {uint16_t(port), ns.bhash[port], inet_ehash_port(d.hash_port0, uint16_t(port)), perturb,
              bits ? bits->word_at(port) : nullptr,
              {w.dest_table.home_slot(dest_key(d.hash_port0)), &d, &w.ext_recent[world::recent_slot(daddr, s.dport)],
               &w.route_recent[world::recent_slot(daddr, ns.id)]}};
    }
  }
  return {};
}

// net/core/secure_seq.c: the port offset of this kernel (kernel_profile.h: port_hash), as the
// era's __inet_hash_connect receives it (u32 until b2d057560b81).
// `d`: the destination index's entry of s's destination (null: none yet).
static uint64_t inet_sk_port_offset(world& w, const sock& s, connect_dest* d, connect_info& info) {
  const machine& m = w.machines[w.nets[s.netns].machine];
  const bool v4 = s.daddr.is_v4();  // v4-mapped peers go through IPv4
  switch (m.kp.hash) {
    case port_hash::md5:
      return v4 ? secure_ipv4_port_ephemeral_md5(s.rcv_saddr.v4_host(), s.daddr.v4_host(), s.dport, m.md5_secret)
                : secure_ipv6_port_ephemeral_md5(s.rcv_saddr, s.daddr, s.dport, m.md5_secret);
    case port_hash::siphash32:
    case port_hash::siphash64: {
      const uint64_t h = v4 ? secure_ipv4_port_ephemeral_noseed(s.rcv_saddr.v4_host(), s.daddr.v4_host(), s.dport, m.net_secret)
                            : secure_ipv6_port_ephemeral_noseed(s.rcv_saddr, s.daddr, s.dport, m.net_secret);
      return m.kp.hash == port_hash::siphash32 ? uint32_t(h) : h;
    }
    case port_hash::siphash32_timeseed:
    case port_hash::siphash64_timeseed: {
      info.timeseed = m.port_offset_timeseed(w.now);  // exact replay: the call's jiffies
      // Within one timeseed window every connect toward a destination hashes the same words:
      // the destination index keeps the last hash (connect_dest::port_offset_hash).
      uint64_t h;
      if (d && d->port_offset_seed_ok && d->port_offset_seed == info.timeseed) {
        h = d->port_offset_hash;
      } else {
        h = v4 ? secure_ipv4_port_ephemeral(s.rcv_saddr.v4_host(), s.daddr.v4_host(), s.dport, info.timeseed, m.net_secret)
               : secure_ipv6_port_ephemeral(s.rcv_saddr, s.daddr, s.dport, info.timeseed, m.net_secret);
        if (d) {
          d->port_offset_hash = h;
          d->port_offset_seed = info.timeseed;
          d->port_offset_seed_ok = true;
        }
      }
      return m.kp.hash == port_hash::siphash32_timeseed ? uint32_t(h) : h;
    }
  }
  return 0;
}

// net/ipv4/inet_hashtables.c: inet_hash_connect() + inet_sk_port_offset(); and
// net/ipv6/inet6_hashtables.c: inet6_hash_connect() + inet6_sk_port_offset(). The walk is the
// machine's kernel's (connect_era); 6.18's is inet_hash_connect_with().
// The ehash key of the 4-tuple with port 0 is computed once (6.15+: hash_port0), and so is the
// destination index's entry.
int inet_hash_connect(world& w, sock_id sk, connect_info& info) {
  const sock& s = w.sk(sk);
  const connect_era era = w.machines[w.nets[s.netns].machine].kp.connect;
  const uint64_t hash_port0 = inet_ehashfn_port0(s);
  if (s.num || era == connect_era::c5_dhps) {
    connect_dest* d = dest_find_port0(w, s, hash_port0);
    return inet_hash_connect_dest(w, sk, s.num ? 0 : inet_sk_port_offset(w, s, d, info), hash_port0, d,
                                  inet_check_established, info);
  }
  info.autobind = true;
  const uint64_t po = inet_sk_port_offset(w, s, dest_find_port0(w, s, hash_port0), info);
  info.port_offset = po;
  if (w.obs && w.obs->explaining())
    w.obs->explain("secure_ipv4_port_ephemeral", fmt::format("port_offset = {:#x}", po));
  switch (era) {
    case connect_era::c1_sequential: return inet_hash_connect_c1(w, sk, uint32_t(po), inet_check_established, info);
    case connect_era::c2_even_start: return inet_hash_connect_c2(w, sk, uint32_t(po), inet_check_established, info);
    case connect_era::c3_parity_passes: return inet_hash_connect_c3(w, sk, uint32_t(po), inet_check_established, info);
    case connect_era::c4_perturb_table: return inet_hash_connect_c4(w, sk, uint32_t(po), inet_check_established, info);
    case connect_era::c5_dhps: break;
  }
  return EADDRNOTAVAIL;
}

}  // namespace portsim::net
