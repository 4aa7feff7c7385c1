// net/ipv4/inet_connection_sock.c — who may share a port with whom, and bind(0)'s search.
//
// Explicit bind(P): every owner of P (bound, listening, connected, TIME_WAIT) whose address
// overlaps ours (equal, or either one the wildcard) is tested by inet_bind_conflict(): sharing
// is allowed when both have SO_REUSEADDR and the owner is not listening, or both have
// SO_REUSEPORT and the same uid (any uid against a TIME_WAIT owner). The bhash2 split and the
// fastreuse fast paths only make this faster in the kernel; the answer is the same, so we always
// walk the owners.
//
// bind(0) (inet_csk_find_open_port): a random odd offset, so the first pass tries the parity
// opposite to low — connect() favours low's parity, bind() the other; then the other parity;
// a SO_REUSEADDR socket tries the lower half of the range before the upper half. Conflicts are
// judged strictly (relax = false: even a SO_REUSEADDR peer or a TIME_WAIT blocks), and with
// net.ipv4.ip_autobind_reuse the whole search runs again relaxed. Live kernel, range
// 40000-40011: bind(127.0.0.1:0) gives the six odd ports, then the evens; with SO_REUSEADDR
// 40000-40005 (odd first) before 40006-40011 (tests/live/bind_zero_order.json).
#include "portsim/net/inet_connection_sock.h"

#include <cerrno>
#include <fmt/format.h>

#include "portsim/net/observer.h"

namespace portsim::net {

namespace {

// net/ipv4/inet_connection_sock.c: inet_rcv_saddr_equal(sk, sk2, match_wildcard = true).
bool inet_rcv_saddr_equal(const sock& a, const sock& b) {
  const bool a4 = a.rcv_saddr.is_v4(), b4 = b.rcv_saddr.is_v4();
  if (a4 && b4) return a.rcv_saddr == b.rcv_saddr || a.rcv_saddr.is_any() || b.rcv_saddr.is_any();
  if (a4 != b4) {  // one v4 (or v4-mapped), one true v6: only a dual-stack [::] overlaps
    const sock& v6 = a4 ? b : a;
    return v6.rcv_saddr.is_any() && !v6.ipv6only;
  }
  return a.rcv_saddr == b.rcv_saddr || a.rcv_saddr.is_any() || b.rcv_saddr.is_any();
}

// net/ipv4/inet_connection_sock.c: inet_bind_conflict() — may sk and its port owner sk2 not
// share? (Addresses are compared by the caller.) reuseport_cb_ok is true: reuseport groups
// are not modelled.
bool inet_bind_conflict(const sock& sk, const sock& sk2, bool relax, bool reuseport_ok) {
  const bool tw = sk2.state == tcp_state::TIME_WAIT;
  const bool reuseport_pair = sk.reuseport && sk2.reuseport && (tw || sk.uid == sk2.uid);
  if (sk.reuse && sk2.reuse && sk2.state != tcp_state::LISTEN)
    return !relax || (!reuseport_ok && reuseport_pair);
  return !(reuseport_ok && reuseport_pair);
}

// --explain: inet_bind_conflict()'s verdict on sk and owner sk2, by the rule that decided it.
std::string bind_conflict_reason(const sock& sk, const sock& sk2, bool relax, bool reuseport_ok) {
  const bool tw = sk2.state == tcp_state::TIME_WAIT;
  const bool both_reuseport = sk.reuseport && sk2.reuseport;
  const bool reuseport_pair = both_reuseport && (tw || sk.uid == sk2.uid);
  if (sk.reuse && sk2.reuse && sk2.state != tcp_state::LISTEN) {
    if (!relax)
      return "conflict: both SO_REUSEADDR, but bind(0) searches strictly (relax = false) unless "
             "net.ipv4.ip_autobind_reuse = 1";
    if (!reuseport_ok && reuseport_pair)
      return "conflict: both SO_REUSEADDR, but also both SO_REUSEPORT, and bind(0) does not join a "
             "reuseport group (reuseport_ok = false)";
    return reuseport_ok ? "shares: both SO_REUSEADDR, owner not listening"
                        : "shares: both SO_REUSEADDR, owner not listening (ip_autobind_reuse relaxed pass)";
  }
  if (reuseport_ok && reuseport_pair)
    return tw ? "shares: both SO_REUSEPORT, owner in TIME_WAIT (any uid)"
              : fmt::format("shares: both SO_REUSEPORT, same uid {}", sk.uid);
  std::string why = "conflict: ";
  if (sk.reuse && sk2.reuse) why += "both SO_REUSEADDR, but the owner is listening";
  else if (sk.reuse) why += "the owner lacks SO_REUSEADDR";
  else if (sk2.reuse) why += "we lack SO_REUSEADDR";
  else why += "neither has SO_REUSEADDR";
  if (!both_reuseport) why += sk.reuseport || sk2.reuseport ? ", and not both SO_REUSEPORT" : "";
  else if (!reuseport_ok) why += "; both SO_REUSEPORT, but bind(0) does not join a reuseport group (reuseport_ok = false)";
  else why += fmt::format("; both SO_REUSEPORT, but uid {} is not the owner's {}", sk.uid, sk2.uid);
  return why;
}

// net/ipv4/inet_connection_sock.c: inet_csk_bind_conflict() (with the bhash2 address scoping
// folded into the overlap test). Under --explain, every overlapping owner's verdict is told.
bool inet_csk_bind_conflict(const world& w, sock_id sk, uint32_t tb, bool relax, bool reuseport_ok) {
  const sock& s = w.sk(sk);
  const bool explain = w.obs && w.obs->explaining();
  for (uint32_t t2 = w.tbs[tb].bhash2; t2 != kNone; t2 = w.tb2s[t2].next) {
    for (sock_id o = w.tb2s[t2].owners; o != kNone; o = w.sk(o).bind_next) {
      if (o == sk) continue;
      const sock& so = w.sk(o);
      if (!inet_rcv_saddr_equal(s, so)) continue;
      const bool conflict = inet_bind_conflict(s, so, relax, reuseport_ok);
      if (explain)
        w.obs->explain("inet_csk_bind_conflict",
                       fmt::format("port {}: owner {} at {} in {}: {}", w.tbs[tb].port, w.obs->sock_name(w, o),
                                   to_string(endpoint{so.rcv_saddr, so.num}), tcp_state_name(so.state),
                                   bind_conflict_reason(s, so, relax, reuseport_ok)));
      if (conflict) return true;
    }
  }
  return false;
}

// net/ipv4/inet_connection_sock.c: sk_reuseport_match() — does sk fit the tb's recorded
// reuseport owner (same uid and address scope)?
bool sk_reuseport_match(const inet_bind_bucket& tb, const sock& sk) {
  if (tb.fastreuseport <= 0) return false;
  if (!sk.reuseport || sk.uid != tb.fastuid) return false;
  if (tb.fastreuseport == FASTREUSEPORT_ANY) return true;
  return sk.rcv_saddr == tb.fast_rcv_saddr || tb.fast_rcv_saddr.is_any();
}

// net/ipv4/inet_connection_sock.c: inet_csk_update_fastreuse(). The tb2 exists already when
// this runs, so the "first owner" branch of the kernel is never taken (KERNEL-MAP §3.4).
void inet_csk_update_fastreuse(inet_bind_bucket& tb, const sock& sk) {
  const bool reuse = sk.reuse && sk.state != tcp_state::LISTEN;
  if (!reuse) tb.fastreuse = 0;
  if (sk.reuseport) {
    if (!sk_reuseport_match(tb, sk)) {
      tb.fastreuseport = FASTREUSEPORT_STRICT;
      tb.fastuid = sk.uid;
      tb.fast_rcv_saddr = sk.rcv_saddr;
      tb.fast_ipv6_only = sk.ipv6only;
      tb.fast_v4 = sk.rcv_saddr.is_v4();
    }
  } else {
    tb.fastreuseport = 0;
  }
}

// net/ipv4/inet_connection_sock.c: the range arithmetic at the head of inet_csk_find_open_port()
// (4.6+, B3 onwards): [low, high[ exclusive, cut to the lower or upper half for attempt_half
// (cleared when fewer than 4 ports), `remaining` rounded down to even when > 1.
static uint32_t find_open_port_range(world& w, const sock& s, int& attempt_half, int& low, int& high) {
  inet_sk_get_local_port_range(w, s, low, high);
  high++;  // [32768, 60999] -> [32768, 61000[
  if (high - low < 4) attempt_half = 0;
  if (attempt_half) {
    const int half = low + (((high - low) >> 2) << 1);
    if (attempt_half == 1) high = half;
    else low = half;
  }
  uint32_t remaining = uint32_t(high - low);
  if (remaining > 1) remaining &= ~1u;
  return remaining;
}

// net/ipv4/inet_connection_sock.c: inet_csk_find_open_port(). Returns the port or 0.
uint16_t inet_csk_find_open_port(world& w, sock_id sk, bind_info& info) {
  netns& ns = w.ns_of(sk);
  machine& m = w.machine_of(ns);
  const sock& s = w.sk(sk);
  const bool explain = w.obs && w.obs->explaining();
  bool relax = false;
  for (;;) {  // kernel label: ports_exhausted
    int attempt_half = s.reuse == SK_CAN_REUSE ? 1 : 0;
    for (;;) {  // kernel label: other_half_scan
      int low, high;
      const uint32_t remaining = find_open_port_range(w, s, attempt_half, low, high);
      uint32_t offset = m.random.u32_below(remaining) | 1u;  // odd: the parity connect() tries last
      if (info.examined == 0) info.offset = offset;
      for (uint8_t pass = 1;; ++pass) {  // kernel label: other_parity_scan
        int port = low + int(offset);
        if (explain)
          w.obs->explain("inet_csk_find_open_port",
                         fmt::format("{} search{}, range [{}, {}], pass {}: from port {}, step 2", relax ? "relaxed" : "strict",
                                     attempt_half == 1 ? ", lower half (SO_REUSEADDR)" : attempt_half == 2 ? ", upper half" : "",
                                     low, high - 1, pass, port >= high ? port - int(remaining) : port));
        for (uint32_t i = 0; i < remaining; i += 2, port += 2) {
          if (port >= high) port -= int(remaining);
          ++info.examined;
          if (ns.sys.ip_local_reserved_ports.test(uint32_t(port))) {
            if (explain)
              w.obs->explain("inet_csk_find_open_port",
                             fmt::format("port {}: reserved (net.ipv4.ip_local_reserved_ports), skipped", port));
            continue;
          }
          const uint32_t tb = ns.bhash[uint16_t(port)];
          if (explain && tb == kNone)
            w.obs->explain("inet_csk_find_open_port", fmt::format("port {}: no bind bucket: free", port));
          if (tb == kNone || !inet_csk_bind_conflict(w, sk, tb, relax, /*reuseport_ok=*/false)) {
            info.low = uint32_t(low);
            info.high = uint32_t(high);
            info.half = uint8_t(attempt_half);
            info.pass = pass;
            info.relax = relax;
            return uint16_t(port);
          }
        }
        offset--;
        if (offset & 1) break;
      }
      if (attempt_half != 1) break;
      attempt_half = 2;
    }
    if (!ns.sys.ip_autobind_reuse || relax) return 0;
    relax = true;
  }
}

// --- the older bind(0) walks, one function per era (kernel_profile.h: bind_era) -------------

// tb->num_owners: every owner of the port, over all its tb2.
uint32_t tb_num_owners(const world& w, uint32_t tb) {
  uint32_t n = 0;
  for (uint32_t t2 = w.tbs[tb].bhash2; t2 != kNone; t2 = w.tb2s[t2].next) n += w.tb2s[t2].nowners;
  return n;
}

// ≤ 4.10 "(tb->fastreuse > 0 && reuse) || (tb->fastreuseport > 0 && sk->sk_reuseport && uid
// match)": may sk be one more owner of tb, the candidate for the fewest-owners fallback?
// tb->fastreuse > 0 held while every owner had SO_REUSEADDR and was not listening; a bucket made
// by connect() stays at -1.
bool smallest_candidate(const world& w, uint32_t tb, const sock& sk) {
  const inet_bind_bucket& b = w.tbs[tb];
  bool fastreuse = b.fastreuse >= 0 && sk.reuse && sk.state != tcp_state::LISTEN;
  for (uint32_t t2 = b.bhash2; fastreuse && t2 != kNone; t2 = w.tb2s[t2].next)
    for (sock_id o = w.tb2s[t2].owners; fastreuse && o != kNone; o = w.sk(o).bind_next)
      fastreuse = w.sk(o).reuse && w.sk(o).state != tcp_state::LISTEN;
  return fastreuse || (b.fastreuseport > 0 && sk.reuseport && b.fastuid == sk.uid);
}

// The fewest-owners fallback (have_snum → tb_found with smallest_size != -1): the port is taken
// if the relaxed conflict test passes (the kernel then retries `again` up to 5 times when it
// does not; portsim answers EADDRINUSE at once).
uint16_t take_smallest(const world& w, sock_id sk, uint16_t port, bind_info& info) {
  const uint32_t tb = w.nets[w.sk(sk).netns].bhash[port];
  if (tb != kNone && inet_csk_bind_conflict(w, sk, tb, /*relax=*/true, /*reuseport_ok=*/true)) return 0;
  info.shared = true;
  return port;
}

// hashinfo->bsockets: sockets bound in this netns's local port range (the B1/B2 early-take test).
uint64_t bind_bsockets(const world& w, const netns& ns) {
  uint64_t bsockets = 0;
  for (uint32_t p = uint32_t(ns.sys.ip_local_port_range_lo); p <= ns.sys.ip_local_port_range_hi; ++p)
    if (ns.bhash[p] != kNone) bsockets += tb_num_owners(w, ns.bhash[p]);
  return bsockets;
}

// One pass of the ≤ 4.5 rover scan over [low, high] (the body under the kernel label `again`,
// shared by B1 and B2): rover = random % remaining + low, ++rover with wrap; a port whose bucket
// passes bind_conflict(sk, tb, false) is taken; the compatible bucket with the fewest owners is
// remembered and taken at once when bsockets > range size, else after a full scan. Returns the
// port, or 0 with `*exhausted` set when neither a free nor a shareable port was found.
uint16_t inet_csk_rover_scan(world& w, sock_id sk, int low, int high, int half, uint64_t bsockets, bind_info& info,
                             bool* exhausted) {
  netns& ns = w.ns_of(sk);
  machine& m = w.machine_of(ns);
  const sock& s = w.sk(sk);
  *exhausted = false;
  int remaining = high - low + 1;
  int rover = int(m.random.u32_below(uint32_t(remaining))) + low;
  if (info.examined == 0) info.offset = uint32_t(rover - low);
  int smallest_size = -1, smallest_rover = rover;
  do {
    ++info.examined;
    if (!ns.sys.ip_local_reserved_ports.test(uint32_t(rover))) {
      const uint32_t tb = ns.bhash[uint16_t(rover)];
      if (tb == kNone) break;  // a free port
      if (smallest_candidate(w, tb, s) && (int(tb_num_owners(w, tb)) < smallest_size || smallest_size == -1)) {
        smallest_size = int(tb_num_owners(w, tb));
        smallest_rover = rover;
        if (bsockets > uint64_t(high - low + 1) && !inet_csk_bind_conflict(w, sk, tb, false, true)) {
          info.shared = true;
          return uint16_t(smallest_rover);
        }
      }
      if (!inet_csk_bind_conflict(w, sk, tb, /*relax=*/false, /*reuseport_ok=*/true)) break;
    }
    if (++rover > high) rover = low;
  } while (--remaining > 0);
  info.low = uint32_t(low);
  info.high = uint32_t(high + 1);
  info.half = uint8_t(half);
  info.pass = 1;
  if (remaining > 0) return uint16_t(rover);
  if (smallest_size != -1) return take_smallest(w, sk, uint16_t(smallest_rover), info);
  *exhausted = true;
  return 0;
}

// 3.10 net/ipv4/inet_connection_sock.c: inet_csk_get_port(), snum == 0 (B1): one rover scan of the whole inclusive range.
uint16_t inet_csk_get_port_b1(world& w, sock_id sk, bind_info& info) {
  netns& ns = w.ns_of(sk);
  bool exhausted = false;
  return inet_csk_rover_scan(w, sk, ns.sys.ip_local_port_range_lo, ns.sys.ip_local_port_range_hi, 0,
                             bind_bsockets(w, ns), info, &exhausted);
}

// 4.2 net/ipv4/inet_connection_sock.c: inet_csk_get_port(), snum == 0 (B2, attempt_half; commit U, KERNEL-PROFILES B2): SO_REUSEADDR scans [low, half] then [half, high].
uint16_t inet_csk_get_port_b2(world& w, sock_id sk, bind_info& info) {
  netns& ns = w.ns_of(sk);
  int attempt_half = w.sk(sk).reuse == SK_CAN_REUSE ? 1 : 0;
  const uint64_t bsockets = bind_bsockets(w, ns);
  for (;;) {  // kernel label: again
    int low = ns.sys.ip_local_port_range_lo, high = ns.sys.ip_local_port_range_hi;
    if (attempt_half) {
      const int half = low + ((high - low) >> 1);
      if (attempt_half == 1) high = half;
      else low = half;
    }
    bool exhausted = false;
    const uint16_t port = inet_csk_rover_scan(w, sk, low, high, attempt_half, bsockets, info, &exhausted);
    if (!exhausted || attempt_half != 1) return port;
    attempt_half = 2;  // "OK we now try the upper half of the range"
  }
}

// 4.6 net/ipv4/inet_connection_sock.c: inet_csk_get_port(), port == 0 (B3, ea8add2b1903):
// the 6.18 walk (halves, random odd offset, step 2, then the other parity) with the strict
// test (reuseport_ok until 0643ee4fd1b7, 4.10), and after each parity pass that found no free
// port, the compatible port with the fewest owners.
uint16_t inet_csk_get_port_b3(world& w, sock_id sk, bind_info& info) {
  netns& ns = w.ns_of(sk);
  machine& m = w.machine_of(ns);
  const sock& s = w.sk(sk);
  int attempt_half = s.reuse == SK_CAN_REUSE ? 1 : 0;
  for (;;) {  // kernel label: other_half_scan
    int low, high;
    const uint32_t remaining = find_open_port_range(w, s, attempt_half, low, high);
    uint32_t offset = m.random.u32_below(remaining) | 1u;
    if (info.examined == 0) info.offset = offset;
    int smallest_size = -1, smallest_port = low;
    for (uint8_t pass = 1;; ++pass) {  // kernel label: other_parity_scan
      int port = low + int(offset);
      for (uint32_t i = 0; i < remaining; i += 2, port += 2) {
        if (port >= high) port -= int(remaining);
        ++info.examined;
        if (ns.sys.ip_local_reserved_ports.test(uint32_t(port))) continue;
        const uint32_t tb = ns.bhash[uint16_t(port)];
        info.low = uint32_t(low);
        info.high = uint32_t(high);
        info.half = uint8_t(attempt_half);
        info.pass = pass;
        if (tb == kNone) return uint16_t(port);
        if (smallest_candidate(w, tb, s) && (int(tb_num_owners(w, tb)) < smallest_size || smallest_size == -1)) {
          smallest_size = int(tb_num_owners(w, tb));
          smallest_port = port;
        }
        if (!inet_csk_bind_conflict(w, sk, tb, /*relax=*/false, m.kp.bind0_reuseport_ok)) return uint16_t(port);
      }
      if (smallest_size != -1) return take_smallest(w, sk, uint16_t(smallest_port), info);
      offset--;
      if (offset & 1) break;
    }
    if (attempt_half != 1) return 0;
    attempt_half = 2;
  }
}

}  // namespace

int inet_csk_get_port(world& w, sock_id sk, uint16_t port, bind_info* info) {
  netns& ns = w.ns_of(sk);
  bind_info local;
  if (!info) info = &local;
  if (!port) {
    switch (w.machine_of(ns).kp.bind) {
      case bind_era::b1_random_rover: port = inet_csk_get_port_b1(w, sk, *info); break;
      case bind_era::b2_lower_half: port = inet_csk_get_port_b2(w, sk, *info); break;
      case bind_era::b3_odd_first: port = inet_csk_get_port_b3(w, sk, *info); break;
      case bind_era::b4_no_sharing:
      case bind_era::b5_autobind_reuse: port = inet_csk_find_open_port(w, sk, *info); break;
    }
    if (!port) return EADDRINUSE;
  } else if (const uint32_t tb = ns.bhash[port];
             tb != kNone && inet_csk_bind_conflict(w, sk, tb, /*relax=*/true, /*reuseport_ok=*/true)) {
    return EADDRINUSE;
  } else if (w.obs && w.obs->explaining() && w.sk(sk).tb2 == kNone) {
    w.obs->explain("inet_csk_get_port", tb == kNone ? fmt::format("port {}: no bind bucket: free", port)
                                                    : fmt::format("port {}: no owner conflicts: shared", port));
  }
  sock& s = w.sk(sk);
  // A listen() re-check of a bound socket finds its own buckets and runs the same success
  // path: inet_csk_update_fastreuse() (now in LISTEN: fastreuse 0), no second inet_bind_hash.
  uint32_t tb = ns.bhash[port];
  if (tb == kNone) tb = inet_bind_bucket_create(w, ns, port);
  uint32_t t2 = s.tb2 != kNone ? s.tb2 : inet_bind2_bucket_find(w, tb, s.rcv_saddr);
  if (t2 == kNone) t2 = inet_bind2_bucket_create(w, tb, s.rcv_saddr);
  inet_bind_bucket& b = w.tbs[tb];
  const int8_t fr = b.fastreuse, frp = b.fastreuseport;
  inet_csk_update_fastreuse(b, s);
  if ((b.fastreuse != fr || b.fastreuseport != frp) && w.obs) w.obs->bind_bucket(w, table_op::update, tb);
  inet_bind2_bucket_set_state(w, t2, b.fastreuse, b.fastreuseport);  // 6.18: the tb2 keeps its own copy
  connect_skip_update(w, ns, port);
  if (s.tb2 == kNone) inet_bind_hash(w, sk, tb, t2, port);
  return 0;
}

// net/ipv4/af_inet.c: inet_addr_valid_or_nonlocal() — an IPv4 bind() takes a local address
// (RTN_LOCAL) and also a multicast (224.0.0.0/4) or broadcast (RTN_BROADCAST: 255.255.255.255
// or the directed broadcast of a local subnet, 127.255.255.255 for lo) one; live 6.18.44:
// tests/live/tcp_edges.json, case item14.
static bool inet_addr_bindable_v4(const netns& ns, const inet_addr& a) {
  const uint32_t h = a.v4_host();
  if ((h >> 28) == 0xe || h == 0xffffffffu) return true;
  if (h == 0x7fffffffu) return true;  // lo's 127.0.0.0/8 broadcast
  for (const auto& ia : ns.addrs)  // an IPv4 ifaddr's mask keeps the v4 netmask in its low 32 bits
    if (ia.addr.is_v4() && ia.prefix < 31 && ia.contains(a) && (h | uint32_t(ia.mask.lo)) == ~0u) return true;
  return false;
}

// net/ipv4/af_inet.c: __inet_bind() checks the address (EADDRNOTAVAIL), then the port's
// privilege (EACCES), then that the socket is unbound (EINVAL).
static int inet_bind_checks(const netns& ns, const sock& s, const endpoint& addr) {
  if (!addr.addr.is_v4()) return EAFNOSUPPORT;  // __inet_bind takes AF_INET only
  // Address must be local (or multicast / broadcast) unless net.ipv4.ip_nonlocal_bind
  // (IP_FREEBIND is not modelled).
  if (!addr.addr.is_any() && !ns.owns(addr.addr) && !ns.sys.ip_nonlocal_bind && !inet_addr_bindable_v4(ns, addr.addr))
    return EADDRNOTAVAIL;
  // inet_port_requires_bind_service(): below ip_unprivileged_port_start needs the capability.
  if (addr.port && addr.port < ns.sys.ip_unprivileged_port_start && !s.cap_net_bind_service) return EACCES;
  if (s.state != tcp_state::CLOSE || s.num != 0) return EINVAL;
  return 0;
}

// net/ipv6/af_inet6.c: __inet6_bind() checks in another order: the port's privilege first
// (EACCES, before the socket lock), then that the socket is unbound (EINVAL), then the address:
// a v4-mapped one is refused on an IPV6_V6ONLY socket (EINVAL) and must be a local IPv4
// address, any other must be a local IPv6 address (EADDRNOTAVAIL).
static int inet6_bind_checks(const netns& ns, const sock& s, const endpoint& addr) {
  if (addr.port && addr.port < ns.sys.ip_unprivileged_port_start && !s.cap_net_bind_service) return EACCES;
  if (s.state != tcp_state::CLOSE || s.num != 0) return EINVAL;
  if (addr.addr.is_v4() && s.ipv6only) return EINVAL;
  if (!addr.addr.is_any() && !ns.owns(addr.addr) && !ns.sys.ip_nonlocal_bind &&
      !(addr.addr.is_v4() && inet_addr_bindable_v4(ns, addr.addr)))
    return EADDRNOTAVAIL;
  return 0;
}

// --explain for bind(0): the walk of the machine's bind era, told in that era's own terms.
static void explain_bind0(world& w, sock_id sk, const bind_info& info, int err) {
  const bind_era era = w.machine_of(w.ns_of(sk)).kp.bind;
  const char* half = info.half ? (info.half == 1 ? ", lower half (SO_REUSEADDR)" : ", upper half") : "";
  const std::string tail = fmt::format("{} candidates examined{}{}", info.examined, err ? ": none free, EADDRINUSE" : "",
                                       info.shared ? "; no free port: shares the least-used port" : "");
  if (era <= bind_era::b2_lower_half) {  // 3.10 / 4.2 inet_csk_get_port(), snum == 0
    w.obs->explain("inet_csk_get_port",
                   fmt::format("{}: rover = random % remaining + low{} over [{}, {}]{} (remaining {}), rover++ "
                               "wrapping to low; {}{}",
                               era == bind_era::b1_random_rover ? "B1 (3.10)" : "B2 (4.2)",
                               info.half == 2 ? "" : fmt::format(" = {}", info.low + info.offset),  // offset: 1st draw
                               info.low, info.high - 1, half, info.high - info.low, tail,
                               info.shared ? " (smallest_size fallback: fewest owners)" : ""));
  } else if (era == bind_era::b3_odd_first) {  // 4.6 inet_csk_get_port(), port == 0
    w.obs->explain("inet_csk_get_port",
                   fmt::format("B3 (4.6): odd-first offset {} over [{}, {}){}, step 2, then the other parity "
                               "(pass {}); {}{}",
                               info.offset, info.low, info.high, half, info.pass, tail,
                               info.shared ? " (smallest_port fallback: fewest owners)" : ""));
  } else {
    w.obs->explain("inet_csk_find_open_port",
                   fmt::format("random odd offset {} first{}; {} candidates examined{}{}{}", info.offset, half,
                               info.examined, info.relax ? ", found in the ip_autobind_reuse relaxed pass" : "",
                               err ? ": none free, EADDRINUSE" : "",
                               info.shared ? "; no free port: shares the least-used port (smallest_rover, <= 4.10)" : ""));
  }
}

int inet_bind(world& w, sock_id sk, const endpoint& addr, bind_info* info) {
  netns& ns = w.ns_of(sk);
  sock& s = w.sk(sk);
  if (const int err = s.v6 ? inet6_bind_checks(ns, s, addr) : inet_bind_checks(ns, s, addr)) return err;
  // __inet6_bind(): a specific address that is neither [::] nor v4-mapped makes the socket
  // IPV6_V6ONLY (its IPv4 address becomes LOOPBACK4_IPV6, which nothing matches); restored
  // when get_port fails.
  const bool saved_ipv6only = s.ipv6only;
  if (s.v6 && !addr.addr.is_any() && !addr.addr.is_v4()) s.ipv6only = true;
  s.rcv_saddr = addr.addr;
  if (addr.port || !s.bind_address_no_port) {
    bind_info local;
    if (!info) info = &local;
    const int err = inet_csk_get_port(w, sk, addr.port, info);
    if (!addr.port && w.obs && w.obs->explaining()) explain_bind0(w, sk, *info, err);
    if (err) {
      w.sk(sk).rcv_saddr = w.sk(sk).v6 ? inet_addr{} : kAnyV4;
      w.sk(sk).ipv6only = saved_ipv6only;
      return err;
    }
  }
  if (!addr.addr.is_any()) w.sk(sk).userlocks |= SOCK_BINDADDR_LOCK;
  if (addr.port) w.sk(sk).userlocks |= SOCK_BINDPORT_LOCK;
  // inet_sport = htons(inet_num) (0 with IP_BIND_ADDRESS_NO_PORT: a failed connect's old port
  // goes from getsockname()); inet_dport = 0.
  w.sk(sk).sport = w.sk(sk).num;
  w.sk(sk).dport = 0;
  return 0;
}

}  // namespace portsim::net
