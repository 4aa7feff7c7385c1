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

// An inet_addr held in 8 bytes with 4-byte alignment, for the per-socket fields (struct sock
// keeps two): an address whose upper half is zero and lower half below 2^63 — every IPv4
// (v4-mapped) address, ::, ::1 — is stored as its lower half; any other IPv6 address as an
// index into a process-wide, append-only intern table (one index per distinct address, so
// equal addresses have equal representations). Reads convert back to inet_addr.
class sock_addr {
 public:
  sock_addr() : lo_(uint32_t(kAnyV4.lo)), hi_(uint32_t(kAnyV4.lo >> 32)) {}
  sock_addr(const inet_addr& a) { set(a); }  // NOLINT: implicit on purpose (drop-in for inet_addr)
  sock_addr& operator=(const inet_addr& a) {
    set(a);
    return *this;
  }
  operator inet_addr() const { return get(); }  // NOLINT
  inet_addr get() const {
    if (hi_ & kTag) return interned(lo_);
    return {0, uint64_t(hi_) << 32 | lo_};
  }
  // The predicates read the 8 bytes directly: an interned address is never IPv4 (v4-mapped is
  // inline), nor ::, nor ::1 (both inline), so only inline values can answer true.
  bool is_v4() const { return hi_ == 0xffff; }
  uint32_t v4_host() const { return (hi_ & kTag) ? interned(lo_).v4_host() : lo_; }
  bool is_loopback() const { return (hi_ == 0xffff && (lo_ >> 24) == 127) || (hi_ == 0 && lo_ == 1); }
  bool is_any() const { return lo_ == 0 && (hi_ == 0xffff || hi_ == 0); }
  friend bool operator==(const sock_addr& a, const sock_addr& b) { return a.lo_ == b.lo_ && a.hi_ == b.hi_; }
  friend bool operator==(const sock_addr& a, const inet_addr& b) {
    if (a.hi_ & kTag) return interned(a.lo_) == b;
    return b.hi == 0 && b.lo == (uint64_t(a.hi_) << 32 | a.lo_);
  }

 private:
  static constexpr uint32_t kTag = 1u << 31;
  static uint32_t intern(const inet_addr& a);           // inet_addr.cc
  static const inet_addr& interned(uint32_t index);     // inet_addr.cc
  void set(const inet_addr& a) {
    if (a.hi == 0 && (a.lo >> 63) == 0) {
      lo_ = uint32_t(a.lo);
      hi_ = uint32_t(a.lo >> 32);
    } else {
      lo_ = intern(a);
      hi_ = kTag;
    }
  }
  uint32_t lo_, hi_;
};

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
  inet_addr mask = prefix_mask(false, 32);  // the prefix over the 128-bit form (make() sets it; {} is ::/32)

  static ifaddr make(const inet_addr& a, uint8_t prefix) { return {a, prefix, prefix_mask(a.is_v4(), prefix)}; }
  // inet_ifa_match() / ipv6_prefix_equal(): same family and the same first `prefix` bits.
  bool contains(const inet_addr& a) const {
    return addr.is_v4() == a.is_v4() && ((a.hi ^ addr.hi) & mask.hi) == 0 && ((a.lo ^ addr.lo) & mask.lo) == 0;
  }
  // The mask of a prefix length: IPv4's over the v4-mapped form (96 bits more).
  static constexpr inet_addr prefix_mask(bool v4, unsigned prefix) {
    const unsigned bits = v4 ? 96u + prefix : prefix;
    const uint64_t hi = bits >= 64 ? ~0ULL : bits ? ~0ULL << (64 - bits) : 0;
    const uint64_t lo = bits >= 128 ? ~0ULL : bits > 64 ? ~0ULL << (128 - bits) : 0;
    return {hi, lo};
  }
};
std::optional<ifaddr> parse_ifaddr(std::string_view text);

}  // namespace portsim::net
