#include "portsim/net/port_bitmap.h"

namespace portsim::net {

uint32_t find_free_step2(const PortBitmap& a, const PortBitmap* b, const PortBitmap* c, uint32_t first,
                         uint32_t count) {
  const unsigned par = first & 1;
  const uint32_t j0 = first >> 1, j_end = j0 + count;  // class indices [j0, j_end)
  for (uint32_t j = j0; j < j_end;) {
    const unsigned w = j >> 6, sh = j & 63;
    uint64_t used = a.word(par, w);
    if (b) used |= b->word(par, w);
    if (c) used |= c->word(par, w);
    uint64_t free_bits = ~used >> sh;  // bit 0 = index j
    const uint32_t span = 64 - sh;
    if (free_bits) {
      const uint32_t k = uint32_t(std::countr_zero(free_bits));
      if (k < span) return (j + k < j_end) ? j + k - j0 : count;
    }
    j += span;
  }
  return count;
}

}  // namespace portsim::net
