// Duration parsing and formatting used by scenarios and traces.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "portsim/base/random.h"
#include "portsim/base/time.h"

using namespace portsim;

TEST_CASE("time: durations in human units parse exactly", "[time]") {
  CHECK(parse_duration("0s") == Nanos(0));
  CHECK(parse_duration("1.5ms") == Nanos(1'500'000));
  CHECK(parse_duration("10s") == Nanos(10'000'000'000ULL));
  CHECK(parse_duration("250us") == Nanos(250'000));
  CHECK(parse_duration("2m") == Nanos(120'000'000'000ULL));
  CHECK(parse_duration("1h") == Nanos(3'600'000'000'000ULL));
  CHECK_FALSE(parse_duration("10"));
  CHECK_FALSE(parse_duration("ms"));
  CHECK_FALSE(parse_duration("1.5ns"));  // finer than a nanosecond
  CHECK_FALSE(parse_duration("-1s"));
  CHECK(format_duration(1'500'000) == "1.5ms");
  CHECK(format_duration(131'000'000'000ULL) == "131s");
}

TEST_CASE("time: nanoseconds to jiffies floors at HZ", "[time][jiffies]") {
  CHECK(nanos_to_jiffies(3'999'999, 250) == 0);
  CHECK(nanos_to_jiffies(4'000'000, 250) == 1);
  CHECK(nanos_to_jiffies(10 * kNsPerSec, 250) == 2500);
}

// nanos_from_double() rounds without libm (issue 18): it must equal std::llround everywhere in
// its range — halves, the doubles just below them, the 2^52/2^53 binades where every double is
// an integer, and random gaps/holds such as -log1p(-u) * mean.
TEST_CASE("nanos_from_double is std::llround on [0, 9.2e18)", "[time]") {
  const auto ref = [](double x) { return Nanos(std::llround(x)); };
  std::vector<double> xs = {0.5, 1.5, 2.5, 1e9 + 0.5, 4503599627370495.5, 4503599627370496.0,
                            9007199254740993.0, 9.1e18, 1e-300, 0.49999999999999994};
  for (double h = 0.5; h < 1e18; h = h * 3 + 0.5) {
    xs.push_back(h);
    xs.push_back(std::nextafter(h, 0.0));
    xs.push_back(std::nextafter(h, 1e300));
  }
  Random r(7, "nanos_from_double");
  for (int i = 0; i < 200000; ++i) xs.push_back(-std::log1p(-r.unit()) * 1e9 * double(1 + (i % 1000)));
  for (double x : xs) {
    INFO("x = " << fmt::format("{:.17g}", x));
    REQUIRE(nanos_from_double(x) == ref(x));
  }
  CHECK(nanos_from_double(0.0) == 0);
  CHECK(nanos_from_double(-3.0) == 0);
  CHECK(nanos_from_double(9.2e18) == UINT64_MAX);
  CHECK(nanos_from_double(std::nan("")) == UINT64_MAX);
}
