// portsim-replay: the few rtnetlink requests the topology needs (the guest has no `ip`).
// Each opens a NETLINK_ROUTE socket in the calling thread's current network namespace, sends one
// request with NLM_F_ACK and throws SysError("rtnetlink: <what ip would say>: <errno text>"),
// or Unsupported when the kernel lacks the link kind (bridge, veth built as unloaded modules).
#pragma once

#include <string>
#include <vector>

namespace portsim_replay {

constexpr int kIfOperUp = 6;           // IF_OPER_UP (include/uapi/linux/if.h, RFC 2863)
constexpr int kBrStateForwarding = 3;  // BR_STATE_FORWARDING (include/uapi/linux/if_bridge.h)
constexpr unsigned kIfaTentative = 0x40, kIfaDadFailed = 0x08;  // IFA_F_TENTATIVE, IFA_F_DADFAILED (if_addr.h)
constexpr unsigned char kScopeLink = 253;  // RT_SCOPE_LINK (rtnetlink.h)

/// One interface of the current namespace as RTM_GETLINK reports it.
struct LinkState {
  std::string name;
  int index = 0;
  unsigned flags = 0;      // ifi_flags (IFF_UP, IFF_RUNNING, IFF_LOWER_UP)
  int operstate = -1;      // IFLA_OPERSTATE (IF_OPER_UP = 6), -1 when absent
  int brport_state = -1;   // IFLA_BRPORT_STATE from the AF_BRIDGE dump (BR_STATE_FORWARDING = 3), -1: no bridge port
};

/// One IPv6 address of the current namespace (RTM_GETADDR, AF_INET6).
struct Addr6State {
  std::string ip;
  int index = 0;
  unsigned flags = 0;      // IFA_FLAGS if present, else ifa_flags (IFA_F_TENTATIVE, IFA_F_DADFAILED)
  unsigned char scope = 0;
};

/// ip link show (+ the bridge ports' STP state: bridge link show)
std::vector<LinkState> rtnl_links();
/// ip -6 addr show
std::vector<Addr6State> rtnl_addrs6();

/// ip link set IFNAME up
void rtnl_link_up(const std::string& ifname);
/// ip link add NAME type bridge
void rtnl_link_add_bridge(const std::string& name);
/// ip link add NAME type veth peer name PEER [netns <fd>]   (peer_netns_fd < 0: this namespace)
void rtnl_link_add_veth(const std::string& name, const std::string& peer, int peer_netns_fd);
/// ip link set NAME master MASTER
void rtnl_link_set_master(const std::string& name, const std::string& master);
/// ip addr add IP/PREFIXLEN dev IFNAME [nodad]   (family 4 or 6)
void rtnl_addr_add(const std::string& ip, int prefixlen, int family, const std::string& ifname, bool nodad);
/// ip route add NETWORK/PREFIXLEN dev IFNAME (an on-link route in the main table); an identical
/// route already present is not an error.
void rtnl_route_add(const std::string& network, int prefixlen, int family, const std::string& ifname);

}  // namespace portsim_replay
