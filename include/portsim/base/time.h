// Virtual time. The engine counts nanoseconds (Nanos); the kernel model sees jiffies, because
// the 10-s port-offset resalt and TCP timers are jiffy-quantised (HZ=250 on our machines).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portsim {

using Nanos = uint64_t;  // virtual time since the scenario's t=0, or a duration
constexpr Nanos kNsPerSec = 1'000'000'000ULL;
constexpr Nanos kNsPerMs = 1'000'000ULL;

// The largest time or duration a scenario may give (100 000 h, about 11.4 years): every instant
// the run can reach — a call's t plus its repetitions, a link's delay plus jitter, a workload's
// stop, kernel timers — then stays far below the 64-bit nanosecond range (584 years).
constexpr Nanos kMaxScenarioTime = 100'000ULL * 3600 * kNsPerSec;

// a + b, or UINT64_MAX when that would wrap: for sums of times that are not bounded by the
// loader (exponential holds and Poisson gaps), so an event lands "never" instead of in the past.
constexpr Nanos sat_add(Nanos a, Nanos b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
// A non-negative number of nanoseconds held in a double → Nanos, rounded half away from zero
// exactly as std::llround (no libm call: the fraction x - trunc(x) of a double is exact);
// UINT64_MAX at or beyond 9.2e18 (and for NaN), 0 at or below 0.
inline Nanos nanos_from_double(double ns) {
  if (!(ns < 9.2e18)) return UINT64_MAX;
  if (ns <= 0) return 0;
  const auto whole = int64_t(ns);  // truncation, exact below 2^63
  return Nanos(whole) + (ns - double(whole) >= 0.5 ? 1 : 0);
}

// include/linux/jiffies.h: INITIAL_JIFFIES = (unsigned long)(unsigned int)(-300*HZ), so that
// the 32-bit jiffies wraps five minutes after boot.
constexpr uint64_t initial_jiffies(uint32_t hz) { return uint64_t(uint32_t(-300 * int64_t(hz))); }

// Jiffies elapsed after `t` nanoseconds (floor).
constexpr uint64_t nanos_to_jiffies(Nanos t, uint32_t hz) {
  return uint64_t((unsigned __int128)t * hz / kNsPerSec);
}

// "1.5ms", "10s", "250us", "3ns", "2m", "1h" → nanoseconds; nullopt on bad syntax / overflow.
std::optional<Nanos> parse_duration(std::string_view text);
// Nanoseconds → the shortest exact human form ("1.5ms", "131s", "0s").
std::string format_duration(Nanos t);

}  // namespace portsim
