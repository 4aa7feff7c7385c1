#include "portsim/net/port_bitmap.h"

namespace portsim::net {

uint32_t find_free_step2(const PortBitmap& a, const PortBitmap* b, const PortBitmap* c, uint32_t first,
                         uint32_t count) {
  const unsigned par = first & 1;
  const uint32_t j0 = first >> 1, j_end = j0 + count;  // class indices [j0, j_end)
  uint32_t j = j0;
  while (j < j_end) {
    const unsigned w = j >> 6;
    uint64_t used = a.word(par, w);
    if (b) used |= b->word(par, w);
    if (c) used |= c->word(par, w);
    if (const uint64_t free_bits = ~used >> (j & 63)) {  // bit 0 = index j
      const uint32_t k = j + uint32_t(std::countr_zero(free_bits));
      return k < j_end ? k - j0 : count;
    }
    // Nothing free up to the end of word w: skip the words after it that one of the sets has
    // full (its summary bit), 64 words per summary word.
    unsigned nw = w + 1;
    while (nw < 512 && uint64_t(nw) * 64 < j_end) {
      const unsigned s = nw >> 6;
      uint64_t full = a.full(par, s);
      if (b) full |= b->full(par, s);
      if (c) full |= c->full(par, s);
      if (const uint64_t open = ~full & (~uint64_t(0) << (nw & 63))) {
        nw = s * 64 + unsigned(std::countr_zero(open));
        break;
      }
      nw = (s + 1) * 64;
    }
    j = nw * 64;
  }
  return count;
}

}  // namespace portsim::net
