// Addresses and endpoints. IPv4 is stored v4-mapped (::ffff:a.b.c.d), the way bhash2 stores it
// (include/net/inet_hashtables.h: inet_bind2_bucket.v6_rcv_saddr), so v4 and v6 share one type.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portsim::net {

struct inet_addr {
  uint64_t hi = 0, lo = 0;  // the 16 address bytes, big-endian halves

  static constexpr inet_addr v4(uint32_t a) { return {0, 0x0000ffff00000000ULL | a}; }
  constexpr bool is_v4() const { return hi == 0 && (lo >> 32) == 0xffff; }
  constexpr uint32_t v4_host() const { return uint32_t(lo); }  // host byte order
  // include/linux/in.h: ipv4_is_loopback() — 127.0.0.0/8; IPv6 ::1.
  constexpr bool is_loopback() const {
    return is_v4() ? (v4_host() >> 24) == 127 : (hi == 0 && lo == 1);
  }
  constexpr bool is_any() const { return is_v4() ? v4_host() == 0 : (hi == 0 && lo == 0); }
  friend constexpr bool operator==(const inet_addr&, const inet_addr&) = default;
};

inline constexpr inet_addr kAnyV4 = inet_addr::v4(0);

struct endpoint {
  inet_addr addr;
  uint16_t port = 0;
  friend constexpr bool operator==(const endpoint&, const endpoint&) = default;
};

std::optional<inet_addr> parse_addr(std::string_view text);        // "10.0.0.1", "::1"
std::optional<endpoint> parse_endpoint(std::string_view text);     // "10.0.0.1:80", "[::1]:80"
std::string to_string(const inet_addr& a);
std::string to_string(const endpoint& e);
// As an AF_INET6 socket's getsockname() shows it: an IPv4 address in its v4-mapped form.
std::string to_string(const endpoint& e, bool af_inet6);

// An address assigned to an interface: "10.0.0.1/24" (prefix defaults to /32, /128).
struct ifaddr {
  inet_addr addr;
  uint8_t prefix = 32;
  bool contains(const inet_addr& a) const;
};
std::optional<ifaddr> parse_ifaddr(std::string_view text);

}  // namespace portsim::net
