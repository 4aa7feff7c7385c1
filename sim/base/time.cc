#include "portsim/base/time.h"

#include <cctype>
#include <cmath>
#include <fmt/format.h>

namespace portsim {

std::optional<Nanos> parse_duration(std::string_view s) {
  size_t i = 0;
  unsigned __int128 whole = 0, frac = 0, frac_scale = 1;
  bool digits = false;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    whole = whole * 10 + (s[i++] - '0');
    digits = true;
    if (whole > (unsigned __int128)UINT64_MAX) return std::nullopt;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (frac_scale < (unsigned __int128)1'000'000'000'000'000'000ULL) {
        frac = frac * 10 + (s[i] - '0');
        frac_scale *= 10;
      }
      ++i;
      digits = true;
    }
  }
  if (!digits) return std::nullopt;
  const std::string_view unit = s.substr(i);
  uint64_t mult;
  if (unit == "ns") mult = 1;
  else if (unit == "us") mult = 1000;
  else if (unit == "ms") mult = kNsPerMs;
  else if (unit == "s") mult = kNsPerSec;
  else if (unit == "m" || unit == "min") mult = 60 * kNsPerSec;
  else if (unit == "h") mult = 3600 * kNsPerSec;
  else return std::nullopt;
  const unsigned __int128 ns = whole * mult + frac * mult / frac_scale;
  if (frac * mult % frac_scale != 0) return std::nullopt;  // finer than a nanosecond
  if (ns > (unsigned __int128)UINT64_MAX) return std::nullopt;
  return Nanos(ns);
}

std::string format_duration(Nanos t) {
  struct Unit { Nanos ns; const char* name; };
  static constexpr Unit units[] = {{kNsPerSec, "s"}, {kNsPerMs, "ms"}, {1000, "us"}, {1, "ns"}};
  if (t == 0) return "0s";
  for (const auto& u : units) {
    if (t >= u.ns || u.ns == 1) {
      const Nanos whole = t / u.ns, rest = t % u.ns;
      if (rest == 0) return fmt::format("{}{}", whole, u.name);
      std::string frac = fmt::format("{:0{}}", rest, u.ns == kNsPerSec ? 9 : u.ns == kNsPerMs ? 6 : 3);
      while (!frac.empty() && frac.back() == '0') frac.pop_back();
      return fmt::format("{}.{}{}", whole, frac, u.name);
    }
  }
  return "0s";
}

}  // namespace portsim
