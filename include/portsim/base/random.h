// Seeded randomness. One scenario seed feeds named, independent streams (ns-3 "stream numbers"):
// a stream's state is derived from (seed, stream name), so adding a consumer never shifts the
// draws of another. Generator: xoshiro256** (Blackman & Vigna), seeded through SplitMix64.
#pragma once
#include <cstdint>
#include <string_view>

namespace portsim {

class Random {
 public:
  Random(uint64_t seed, std::string_view stream);

  uint64_t u64();
  uint32_t u32() { return uint32_t(u64() >> 32); }
  // include/linux/random.h: get_random_u32_below(ceil) — uniform in [0, ceil), ceil > 0.
  // Unbiased (Lemire's multiply-and-reject), as the kernel's is; the draws themselves cannot
  // match a real kernel's, only their distribution.
  uint32_t u32_below(uint32_t ceil);
  // Uniform double in [0, 1).
  double unit() { return double(u64() >> 11) * 0x1.0p-53; }

 private:
  uint64_t s_[4];
};

}  // namespace portsim
