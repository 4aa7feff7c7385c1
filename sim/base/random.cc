#include "portsim/base/random.h"

#include <xxhash.h>

namespace portsim {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Random::Random(uint64_t seed, std::string_view stream) {
  uint64_t x = XXH64(stream.data(), stream.size(), seed);
  for (auto& s : s_) s = splitmix64(x);
}

uint64_t Random::u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint32_t Random::u32_below(uint32_t ceil) {
  uint64_t m = uint64_t(u32()) * ceil;
  if (uint32_t(m) < ceil) {
    const uint32_t threshold = uint32_t(-ceil) % ceil;
    while (uint32_t(m) < threshold) m = uint64_t(u32()) * ceil;
  }
  return uint32_t(m >> 32);
}

}  // namespace portsim
