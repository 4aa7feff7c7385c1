// Duration parsing and formatting used by scenarios and traces.
#include <catch2/catch.hpp>

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
