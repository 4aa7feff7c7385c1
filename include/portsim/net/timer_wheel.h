// kernel/time/timer.c: the timer wheel that every TCP timer (retransmit, TIME_WAIT, SYN-ACK)
// sits in. A timer never fires early: calc_index() rounds its expiry up to the granularity of
// the level its distance selects — 1 jiffy below 63 jiffies, 8 below 504, 64 below 4032, 512
// below 32256, … (LVL_CLK_SHIFT 3, LVL_SIZE 64). At HZ=250 a 60 s TIME_WAIT (15 000 jiffies)
// lands in the 512-jiffy level and lasts 60.004–62.048 s; live kernel 6.18.44: 60.27–62.02 s
// (tests/oracle/tw_lifetime.json). The SYN schedule's live lateness (1.03 s, 11.20 s, 68.03 s,
// ETIMEDOUT 133.57 s for the nominal 1, 11, 67, 131 s) is the same rounding.
#pragma once
#include <cstdint>

namespace portsim::net {

// calc_wheel_index(): the jiffy at which a timer for `expires`, armed when the wheel's clock
// reads `clk`, actually runs (bucket_expiry). LVL_DEPTH is 9 for HZ > 100, else 8.
uint64_t timer_wheel_expiry(uint64_t expires, uint64_t clk, uint32_t hz);

}  // namespace portsim::net
