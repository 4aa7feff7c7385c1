#include "portsim/net/inet_addr.h"

#include <arpa/inet.h>

#include <atomic>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace portsim::net {

// sock_addr's intern table: chunks of 4096 addresses that never move, published with release
// stores, so a reader needs no lock (it only holds indexes handed out before, under the lock).
namespace {
constexpr uint32_t kChunkBits = 12, kChunks = 1u << 16;  // up to 2^28 distinct IPv6 addresses
struct InternTable {
  std::mutex mu;
  std::unordered_map<uint64_t, std::vector<uint32_t>> by_hash;  // only under mu
  uint32_t size = 0;
  std::atomic<inet_addr*> chunks[kChunks] = {};
};
InternTable& intern_table() {
  static InternTable* t = new InternTable;  // never destroyed: socks may outlive static teardown
  return *t;
}
}  // namespace

uint32_t sock_addr::intern(const inet_addr& a) {
  InternTable& t = intern_table();
  std::lock_guard<std::mutex> lock(t.mu);
  auto& bucket = t.by_hash[a.hi * 0x9e3779b97f4a7c15ULL ^ a.lo];
  for (uint32_t i : bucket)
    if (interned(i) == a) return i;
  const uint32_t i = t.size;
  if ((i >> kChunkBits) >= kChunks) throw std::bad_alloc();
  inet_addr* chunk = t.chunks[i >> kChunkBits].load(std::memory_order_relaxed);
  if (!chunk) {
    chunk = new inet_addr[size_t(1) << kChunkBits];
    t.chunks[i >> kChunkBits].store(chunk, std::memory_order_release);
  }
  chunk[i & ((1u << kChunkBits) - 1)] = a;
  std::atomic_thread_fence(std::memory_order_release);
  ++t.size;
  bucket.push_back(i);
  return i;
}

const inet_addr& sock_addr::interned(uint32_t index) {
  const inet_addr* chunk = intern_table().chunks[index >> kChunkBits].load(std::memory_order_acquire);
  return chunk[index & ((1u << kChunkBits) - 1)];
}

std::optional<inet_addr> parse_addr(std::string_view text) {
  std::string s(text);
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) return inet_addr::v4(ntohl(a4.s_addr));
  in6_addr a6{};
  if (inet_pton(AF_INET6, s.c_str(), &a6) != 1) return std::nullopt;
  inet_addr r;
  for (int i = 0; i < 8; ++i) r.hi = r.hi << 8 | a6.s6_addr[i];
  for (int i = 8; i < 16; ++i) r.lo = r.lo << 8 | a6.s6_addr[i];
  return r;
}

std::optional<endpoint> parse_endpoint(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + uint32_t(c - '0');
  }
  if (p > 65535) return std::nullopt;
  auto a = parse_addr(host);
  if (!a) return std::nullopt;
  if (!a->is_v4() && text.front() != '[') return std::nullopt;  // v6 needs brackets
  return endpoint{*a, uint16_t(p)};
}

std::string to_string(const inet_addr& a) {
  char buf[INET6_ADDRSTRLEN];
  if (a.is_v4()) {
    in_addr a4{htonl(a.v4_host())};
    inet_ntop(AF_INET, &a4, buf, sizeof buf);
  } else {
    in6_addr a6{};
    for (int i = 0; i < 8; ++i) a6.s6_addr[i] = uint8_t(a.hi >> (56 - 8 * i));
    for (int i = 0; i < 8; ++i) a6.s6_addr[8 + i] = uint8_t(a.lo >> (56 - 8 * i));
    inet_ntop(AF_INET6, &a6, buf, sizeof buf);
  }
  return buf;
}

std::string to_string(const endpoint& e) {
  return e.addr.is_v4() ? fmt::format("{}:{}", to_string(e.addr), e.port)
                        : fmt::format("[{}]:{}", to_string(e.addr), e.port);
}

std::string to_string(const endpoint& e, bool af_inet6) {
  if (af_inet6 && e.addr.is_v4()) return fmt::format("[::ffff:{}]:{}", to_string(e.addr), e.port);
  return to_string(e);
}

std::optional<ifaddr> parse_ifaddr(std::string_view text) {
  const size_t slash = text.find('/');
  auto a = parse_addr(text.substr(0, slash));
  if (!a) return std::nullopt;
  const unsigned max = a->is_v4() ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    prefix = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      prefix = prefix * 10 + unsigned(c - '0');
    }
    if (prefix > max) return std::nullopt;
  }
  return ifaddr::make(*a, uint8_t(prefix));
}

}  // namespace portsim::net
