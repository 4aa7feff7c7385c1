// portsim-replay: the few rtnetlink requests the topology needs (the guest has no `ip`).
// Each opens a NETLINK_ROUTE socket in the calling thread's current network namespace, sends one
// request with NLM_F_ACK and throws SysError("rtnetlink: <what ip would say>: <errno text>"),
// or Unsupported when the kernel lacks the link kind (bridge, veth built as unloaded modules).
#pragma once

#include <string>

namespace portsim_replay {

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
