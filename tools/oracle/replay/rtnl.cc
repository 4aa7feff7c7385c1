// portsim-replay: rtnetlink requests. Kernel side: net/core/rtnetlink.c (rtnl_newlink),
// net/ipv4/devinet.c (inet_rtm_newaddr), net/ipv6/addrconf.c, net/ipv4/fib_frontend.c
// (inet_rtm_newroute), drivers/net/veth.c (VETH_INFO_PEER).
#include "rtnl.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/socket.h>
#include <functional>
#include <linux/if_bridge.h>
#include <unistd.h>
#include <vector>

#include "errors.h"

namespace portsim_replay {
namespace {

/// A netlink request under construction: header, family header, attributes (nestable).
class NlRequest {
 public:
  NlRequest(unsigned short type, unsigned short flags, bool ack = true) {
    buf_.resize(NLMSG_HDRLEN);
    auto* h = header();
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<unsigned short>(NLM_F_REQUEST | (ack ? NLM_F_ACK : 0) | flags);
  }

  /// Append `len` bytes (a family header such as ifinfomsg), aligned.
  void put(const void* data, std::size_t len) {
    std::size_t at = buf_.size();
    buf_.resize(at + NLMSG_ALIGN(len));
    std::memcpy(buf_.data() + at, data, len);
  }

  void attr(unsigned short type, const void* data, std::size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    std::size_t at = buf_.size();
    buf_.resize(at + RTA_ALIGN(a.rta_len));
    std::memcpy(buf_.data() + at, &a, sizeof a);
    if (len) std::memcpy(buf_.data() + at + RTA_LENGTH(0), data, len);
  }
  void attr_str(unsigned short type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
  void attr_u32(unsigned short type, std::uint32_t v) { attr(type, &v, sizeof v); }

  /// Open a nested attribute; close it with end_nest(the returned offset).
  std::size_t begin_nest(unsigned short type) {
    std::size_t at = buf_.size();
    attr(type, nullptr, 0);
    return at;
  }
  void end_nest(std::size_t at) {
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + at);
    a->rta_len = static_cast<unsigned short>(buf_.size() - at);
  }

  /// Send it in the current namespace; 0 or the kernel's errno from the NLMSG_ERROR ack.
  int send() {
    header()->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw_errno("socket(AF_NETLINK)", errno);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    header()->nlmsg_seq = 1;
    if (sendto(fd, buf_.data(), buf_.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
      int e = errno;
      close(fd);
      throw_errno("rtnetlink send", e);
    }
    alignas(nlmsghdr) char reply[8192];
    for (int tries = 0; tries < 16; ++tries) {  // bounded; the ack is normally the first message
      ssize_t n = recv(fd, reply, sizeof reply, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int e = errno;
        close(fd);
        throw_errno("rtnetlink recv", e);
      }
      for (auto* h = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(h, static_cast<unsigned>(n));
           h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
          int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
          close(fd);
          return err;
        }
      }
    }
    close(fd);
    throw SysError("rtnetlink: no acknowledgement");
  }

  /// A dump request (NLM_F_DUMP): `each` sees every message up to NLMSG_DONE; SysError on an
  /// NLMSG_ERROR. Bounded: at most 4096 datagrams.
  void dump(const std::string& what, const std::function<void(const nlmsghdr*)>& each) {
    header()->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
    header()->nlmsg_seq = 1;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw_errno("socket(AF_NETLINK)", errno);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd, buf_.data(), buf_.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
      int e = errno;
      close(fd);
      throw_errno("rtnetlink send (" + what + ")", e);
    }
    std::vector<nlmsghdr> buf(65536 / sizeof(nlmsghdr));  // aligned for nlmsghdr
    char* reply = reinterpret_cast<char*>(buf.data());
    for (int tries = 0; tries < 4096; ++tries) {
      ssize_t n = recv(fd, reply, buf.size() * sizeof(nlmsghdr), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int e = errno;
        close(fd);
        throw_errno("rtnetlink recv (" + what + ")", e);
      }
      for (auto* h = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(h, static_cast<unsigned>(n));
           h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_DONE) {
          close(fd);
          return;
        }
        if (h->nlmsg_type == NLMSG_ERROR) {
          int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
          close(fd);
          if (!err) return;
          throw_errno("rtnetlink: " + what, err);
        }
        each(h);
      }
    }
    close(fd);
    throw SysError("rtnetlink: " + what + ": no end of the dump");
  }

  /// send(), SysError("rtnetlink: WHAT: error text") unless it succeeded.
  void send_or_throw(const std::string& what) {
    int e = send();
    if (e) throw_errno("rtnetlink: " + what, e);
  }

 private:
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  std::vector<char> buf_;
};

/// Link creation failed: a kind the kernel lacks (rtnl_newlink: no rtnl_link_ops after
/// request_module, EOPNOTSUPP; e.g. Debian builds bridge and veth as modules) cannot be
/// performed here (Unsupported, exit 4); anything else is an error of the replay.
void link_add_check(int err, const std::string& kind, const std::string& what) {
  if (!err) return;
  if (err == EOPNOTSUPP)
    throw Unsupported("this kernel has no " + kind + " driver (rtnetlink: " + what +
                      ": Operation not supported; a module that is not loaded?)");
  throw_errno("rtnetlink: " + what, err);
}

int ifindex_of(const std::string& name, const std::string& what) {
  unsigned idx = if_nametoindex(name.c_str());
  if (!idx) throw_errno("rtnetlink: " + what + ": no device " + name, errno);
  return static_cast<int>(idx);
}

/// The raw bytes of address `ip` of `family` (4/6); SysError if it does not parse.
std::vector<unsigned char> addr_bytes(const std::string& ip, int family) {
  std::vector<unsigned char> b(family == 6 ? 16 : 4);
  if (inet_pton(family == 6 ? AF_INET6 : AF_INET, ip.c_str(), b.data()) != 1)
    throw SysError("rtnetlink: bad IPv" + std::to_string(family) + " address " + ip);
  return b;
}

/// iproute2's default scope of an address: host for 127.0.0.0/8, else global.
unsigned char default_scope(const std::vector<unsigned char>& a, int family) {
  return family == 4 && a[0] == 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
}

}  // namespace

void rtnl_link_up(const std::string& ifname) {
  std::string what = "link set " + ifname + " up";
  NlRequest r(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex_of(ifname, what);
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  r.put(&ifi, sizeof ifi);
  r.send_or_throw(what);
}

// The start of an RTM_NEWLINK request that creates link `name` (ip link add NAME …): the
// interface header and IFLA_IFNAME; the caller adds IFLA_LINKINFO.
static NlRequest new_link_request(const std::string& name) {
  NlRequest r(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  r.put(&ifi, sizeof ifi);
  r.attr_str(IFLA_IFNAME, name);
  return r;
}

void rtnl_link_add_bridge(const std::string& name) {
  NlRequest r = new_link_request(name);
  std::size_t info = r.begin_nest(IFLA_LINKINFO);
  r.attr_str(IFLA_INFO_KIND, "bridge");
  r.end_nest(info);
  link_add_check(r.send(), "bridge", "link add " + name + " type bridge");
}

void rtnl_link_add_veth(const std::string& name, const std::string& peer, int peer_netns_fd) {
  NlRequest r = new_link_request(name);
  std::size_t info = r.begin_nest(IFLA_LINKINFO);
  r.attr_str(IFLA_INFO_KIND, "veth");
  std::size_t data = r.begin_nest(IFLA_INFO_DATA);
  std::size_t peer_at = r.begin_nest(VETH_INFO_PEER);
  ifinfomsg peer_ifi{};
  peer_ifi.ifi_family = AF_UNSPEC;
  r.put(&peer_ifi, sizeof peer_ifi);
  r.attr_str(IFLA_IFNAME, peer);
  if (peer_netns_fd >= 0) r.attr_u32(IFLA_NET_NS_FD, static_cast<std::uint32_t>(peer_netns_fd));
  r.end_nest(peer_at);
  r.end_nest(data);
  r.end_nest(info);
  link_add_check(r.send(), "veth", "link add " + name + " type veth peer name " + peer);
}

void rtnl_link_set_master(const std::string& name, const std::string& master) {
  std::string what = "link set " + name + " master " + master;
  NlRequest r(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex_of(name, what);
  r.put(&ifi, sizeof ifi);
  r.attr_u32(IFLA_MASTER, static_cast<std::uint32_t>(ifindex_of(master, what)));
  r.send_or_throw(what);
}

void rtnl_addr_add(const std::string& ip, int prefixlen, int family, const std::string& ifname, bool nodad) {
  std::string what = "addr add " + ip + "/" + std::to_string(prefixlen) + " dev " + ifname;
  auto a = addr_bytes(ip, family);
  NlRequest r(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa{};
  ifa.ifa_family = family == 6 ? AF_INET6 : AF_INET;
  ifa.ifa_prefixlen = static_cast<unsigned char>(prefixlen);
  ifa.ifa_flags = nodad ? IFA_F_NODAD : 0;
  ifa.ifa_scope = default_scope(a, family);
  ifa.ifa_index = static_cast<unsigned>(ifindex_of(ifname, what));
  r.put(&ifa, sizeof ifa);
  r.attr(IFA_LOCAL, a.data(), a.size());
  r.attr(IFA_ADDRESS, a.data(), a.size());
  r.send_or_throw(what);
}

void rtnl_route_add(const std::string& network, int prefixlen, int family, const std::string& ifname) {
  std::string what = "route add " + network + "/" + std::to_string(prefixlen) + " dev " + ifname;
  auto a = addr_bytes(network, family);
  NlRequest r(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  rtmsg rt{};
  rt.rtm_family = family == 6 ? AF_INET6 : AF_INET;
  rt.rtm_dst_len = static_cast<unsigned char>(prefixlen);
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = RT_SCOPE_LINK;  // no gateway: on-link, as `ip route add ... dev` makes it
  rt.rtm_type = RTN_UNICAST;
  r.put(&rt, sizeof rt);
  r.attr(RTA_DST, a.data(), a.size());
  r.attr_u32(RTA_OIF, static_cast<std::uint32_t>(ifindex_of(ifname, what)));
  int e = r.send();
  if (e && e != EEXIST) throw_errno("rtnetlink: " + what, e);
}

namespace {

// One RTM_GETLINK dump of `family`: `each` gets every RTM_NEWLINK message's ifinfomsg and the
// length of the attributes after it (net/core/rtnetlink.c rtnl_dump_ifinfo, rtnl_bridge_getlink).
void dump_links(unsigned char family, const std::string& what,
                const std::function<void(const ifinfomsg*, int)>& each) {
  NlRequest r(RTM_GETLINK, NLM_F_DUMP, false);
  ifinfomsg ifi{};
  ifi.ifi_family = family;
  r.put(&ifi, sizeof ifi);
  r.dump(what, [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) each(static_cast<const ifinfomsg*>(NLMSG_DATA(h)), static_cast<int>(IFLA_PAYLOAD(h)));
  });
}

}  // namespace

// The link dump, then the AF_BRIDGE dump (br_fill_ifinfo: one message per bridge port, with
// IFLA_PROTINFO → IFLA_BRPORT_STATE).
std::vector<LinkState> rtnl_links() {
  std::vector<LinkState> out;
  dump_links(AF_UNSPEC, "link show", [&](const ifinfomsg* m, int len) {
    LinkState l;
    l.index = m->ifi_index;
    l.flags = m->ifi_flags;
    for (const rtattr* a = IFLA_RTA(m); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == IFLA_IFNAME)
        l.name = std::string(static_cast<const char*>(RTA_DATA(a)), strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
      else if (a->rta_type == IFLA_OPERSTATE && RTA_PAYLOAD(a) >= 1)
        l.operstate = *static_cast<const unsigned char*>(RTA_DATA(a));
    }
    out.push_back(l);
  });
  dump_links(AF_BRIDGE, "bridge link show", [&](const ifinfomsg* m, int len) {
    for (const rtattr* a = IFLA_RTA(m); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if ((a->rta_type & NLA_TYPE_MASK) != IFLA_PROTINFO) continue;
      int plen = static_cast<int>(RTA_PAYLOAD(a));
      for (const rtattr* b = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(b, plen); b = RTA_NEXT(b, plen))
        if ((b->rta_type & NLA_TYPE_MASK) == IFLA_BRPORT_STATE && RTA_PAYLOAD(b) >= 1)
          for (auto& l : out)
            if (l.index == m->ifi_index) l.brport_state = *static_cast<const unsigned char*>(RTA_DATA(b));
    }
  });
  return out;
}

// net/ipv6/addrconf.c inet6_dump_ifaddr: ifa_flags holds the low 8 flag bits, IFA_FLAGS all 32.
std::vector<Addr6State> rtnl_addrs6() {
  std::vector<Addr6State> out;
  NlRequest r(RTM_GETADDR, NLM_F_DUMP, false);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET6;
  r.put(&ifa, sizeof ifa);
  r.dump("-6 addr show", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWADDR) return;
    const auto* m = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
    if (m->ifa_family != AF_INET6) return;
    Addr6State s;
    s.index = static_cast<int>(m->ifa_index);
    s.flags = m->ifa_flags;
    s.scope = m->ifa_scope;
    int len = static_cast<int>(IFA_PAYLOAD(h));
    for (const rtattr* a = IFA_RTA(m); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == IFA_FLAGS && RTA_PAYLOAD(a) >= 4) {
        std::uint32_t f;
        std::memcpy(&f, RTA_DATA(a), sizeof f);
        s.flags = f;
      } else if ((a->rta_type == IFA_ADDRESS || (a->rta_type == IFA_LOCAL)) && RTA_PAYLOAD(a) == 16) {
        char txt[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, RTA_DATA(a), txt, sizeof txt)) s.ip = txt;
      }
    }
    out.push_back(s);
  });
  return out;
}

}  // namespace portsim_replay
