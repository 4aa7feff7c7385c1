// A set of 65536 ports stored by parity: bit k of `cls[0]` is port 2k, of `cls[1]` port 2k+1.
// The kernel's connect() scan walks one parity class at a time (step 2), so a pass over a range
// is a contiguous run of bits here and can be skipped 64 candidates per word (not a kernel
// structure: it is how portsim examines the kernel's candidates in bulk). A second level marks
// the words that are full (all 64 ports in the set), so that a run of full words — a destination
// whose ports are nearly exhausted — is skipped 4096 candidates per summary word.
#pragma once
#include <array>
#include <bit>
#include <cstdint>

namespace portsim::net {

class PortBitmap {
 public:
  bool test(uint32_t port) const { return cls_[port & 1][port >> 7] >> ((port >> 1) & 63) & 1; }
  void set(uint32_t port) {
    uint64_t& wd = cls_[port & 1][port >> 7] |= bit(port);
    if (wd == ~uint64_t(0)) full_[port & 1][port >> 13] |= uint64_t(1) << ((port >> 7) & 63);
  }
  void clear(uint32_t port) {
    cls_[port & 1][port >> 7] &= ~bit(port);
    full_[port & 1][port >> 13] &= ~(uint64_t(1) << ((port >> 7) & 63));
  }
  void assign(uint32_t port, bool on) { on ? set(port) : clear(port); }
  // Word `w` of parity class `par`: ports 2*(64w + b) + par for b in 0..63.
  uint64_t word(unsigned par, unsigned w) const { return cls_[par][w]; }
  const uint64_t* word_at(uint32_t port) const { return &cls_[port & 1][port >> 7]; }  // test(port)'s word
  // Summary word `s` of class `par`: bit b set when word 64s + b is full (~0).
  uint64_t full(unsigned par, unsigned s) const { return full_[par][s]; }
  void reset() {
    cls_ = {};
    full_ = {};
  }

 private:
  static uint64_t bit(uint32_t port) { return uint64_t(1) << ((port >> 1) & 63); }
  std::array<std::array<uint64_t, 512>, 2> cls_{};
  std::array<std::array<uint64_t, 8>, 2> full_{};
};

// First k in [0, count) such that port first + 2k is in none of `a`, `b`, `c` (b and c may be
// null); count if none. All ports first + 2k must be < 65536.
uint32_t find_free_step2(const PortBitmap& a, const PortBitmap* b, const PortBitmap* c, uint32_t first,
                         uint32_t count);

}  // namespace portsim::net
