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
      inet_sk_get_local_port_range(w, s, low, high);
      high++;
      if (high - low < 4) attempt_half = 0;
      if (attempt_half) {
        const int half = low + (((high - low) >> 2) << 1);
        if (attempt_half == 1) high = half;
        else low = half;
      }
      uint32_t remaining = uint32_t(high - low);
      if (remaining > 1) remaining &= ~1u;
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

}  // namespace

int inet_csk_get_port(world& w, sock_id sk, uint16_t port, bind_info* info) {
  netns& ns = w.ns_of(sk);
  bind_info local;
  if (!info) info = &local;
  if (!port) {
    port = inet_csk_find_open_port(w, sk, *info);
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
  for (const auto& ia : ns.addrs)
    if (ia.addr.is_v4() && ia.prefix < 31) {
      const uint32_t mask = ia.prefix ? ~0u << (32 - ia.prefix) : 0;
      if ((ia.addr.v4_host() & mask) == (h & mask) && (h | mask) == ~0u) return true;
    }
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
    if (!addr.port && w.obs && w.obs->explaining())
      w.obs->explain("inet_csk_find_open_port",
                     fmt::format("random odd offset {} first{}; {} candidates examined{}{}", info->offset,
                                 info->half ? (info->half == 1 ? ", lower half (SO_REUSEADDR)" : ", upper half") : "",
                                 info->examined, info->relax ? ", found in the ip_autobind_reuse relaxed pass" : "",
                                 err ? ": none free, EADDRINUSE" : ""));
    if (err) {
      w.sk(sk).rcv_saddr = w.sk(sk).v6 ? inet_addr{} : kAnyV4;
      w.sk(sk).ipv6only = saved_ipv6only;
      return err;
    }
  }
  if (!addr.addr.is_any()) w.sk(sk).userlocks |= SOCK_BINDADDR_LOCK;
  if (addr.port) w.sk(sk).userlocks |= SOCK_BINDPORT_LOCK;
  return 0;
}

}  // namespace portsim::net
