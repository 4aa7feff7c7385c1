// SipHash-2-4 (Aumasson & Bernstein, https://131002.net/siphash/), as lib/siphash.c uses it for
// secure_ipv4_port_ephemeral(): 128-bit key, 64-bit output. Our own implementation; checked
// against the kernel's vectors from lib/tests/siphash_kunit.c in tests/unit/base/siphash_test.cc.
#pragma once
#include <cstddef>
#include <cstdint>

namespace portsim {

// include/linux/siphash.h: siphash_key_t — two little-endian u64 words.
struct siphash_key {
  uint64_t k0 = 0, k1 = 0;
};

namespace detail {
constexpr uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct SipState {
  uint64_t v0, v1, v2, v3;
  constexpr explicit SipState(const siphash_key& k)
      : v0(0x736f6d6570736575ULL ^ k.k0), v1(0x646f72616e646f6dULL ^ k.k1),
        v2(0x6c7967656e657261ULL ^ k.k0), v3(0x7465646279746573ULL ^ k.k1) {}
  constexpr void round() {
    v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);
    v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);
  }
  constexpr void compress(uint64_t m) {  // two compression rounds: the "2" of 2-4
    v3 ^= m; round(); round(); v0 ^= m;
  }
  constexpr uint64_t finish(uint64_t last) {  // four finalization rounds: the "4"
    compress(last);
    v2 ^= 0xff;
    round(); round(); round(); round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};
}  // namespace detail

// lib/siphash.c: siphash() over an arbitrary byte string.
inline uint64_t siphash(const void* data, size_t len, const siphash_key& key) {
  const auto* p = static_cast<const uint8_t*>(data);
  detail::SipState s(key);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t m = 0;
    for (int b = 0; b < 8; ++b) m |= uint64_t(p[i + b]) << (8 * b);
    s.compress(m);
  }
  uint64_t last = uint64_t(len) << 56;  // length in the top byte of the final block
  for (size_t b = 0; i + b < len; ++b) last |= uint64_t(p[i + b]) << (8 * b);
  return s.finish(last);
}

// include/linux/siphash.h: siphash_2u64() — the two words as 16 little-endian bytes.
constexpr uint64_t siphash_2u64(uint64_t a, uint64_t b, const siphash_key& key) {
  detail::SipState s(key);
  s.compress(a);
  s.compress(b);
  return s.finish(uint64_t(16) << 56);
}

// include/linux/siphash.h: siphash_4u32(a, b, c, d) == siphash_2u64(b<<32|a, d<<32|c).
constexpr uint64_t siphash_4u32(uint32_t a, uint32_t b, uint32_t c, uint32_t d,
                                const siphash_key& key) {
  return siphash_2u64(uint64_t(b) << 32 | a, uint64_t(d) << 32 | c, key);
}

// include/linux/siphash.h: siphash_3u32(a, b, c) — the three words as 12 little-endian bytes.
constexpr uint64_t siphash_3u32(uint32_t a, uint32_t b, uint32_t c, const siphash_key& key) {
  detail::SipState s(key);
  s.compress(uint64_t(b) << 32 | a);
  return s.finish(uint64_t(12) << 56 | c);
}

}  // namespace portsim
