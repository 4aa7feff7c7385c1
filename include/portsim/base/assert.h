// PORTSIM_ASSERT: an internal invariant (our bug, never bad input). Active in every build;
// prints file:line and the formatted message, then aborts.
#pragma once
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

#define PORTSIM_ASSERT(cond, ...)                                                        \
  do {                                                                                   \
    if (!(cond)) [[unlikely]] {                                                          \
      std::fprintf(stderr, "portsim: internal error at %s:%d: %s\n", __FILE__, __LINE__, \
                   fmt::format(__VA_ARGS__).c_str());                                    \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
