#include "portsim/net/timer_wheel.h"

namespace portsim::net {

namespace {
constexpr unsigned LVL_CLK_SHIFT = 3;
constexpr uint64_t LVL_SIZE = 64;
constexpr unsigned lvl_shift(unsigned n) { return n * LVL_CLK_SHIFT; }
constexpr uint64_t lvl_gran(unsigned n) { return uint64_t(1) << lvl_shift(n); }
constexpr uint64_t lvl_start(unsigned n) { return (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT); }
// calc_index(): round up to the level's granularity, strictly after `expires`.
constexpr uint64_t bucket_expiry(uint64_t expires, unsigned lvl) {
  return ((expires >> lvl_shift(lvl)) + 1) << lvl_shift(lvl);
}
}  // namespace

uint64_t timer_wheel_expiry(uint64_t expires, uint64_t clk, uint32_t hz) {
  const unsigned depth = hz > 100 ? 9 : 8;  // LVL_DEPTH
  const int64_t delta = int64_t(expires - clk);
  if (delta < 0) return clk;  // already due: runs at the next tick
  for (unsigned lvl = 0; lvl + 1 < depth; ++lvl)
    if (uint64_t(delta) < lvl_start(lvl + 1)) return bucket_expiry(expires, lvl);
  // Beyond the wheel: capped at WHEEL_TIMEOUT_MAX in the last level.
  const uint64_t cutoff = lvl_start(depth);
  if (uint64_t(delta) >= cutoff) expires = clk + cutoff - lvl_gran(depth - 1);
  return bucket_expiry(expires, depth - 1);
}

}  // namespace portsim::net
