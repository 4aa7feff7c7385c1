// advise_huge_pages() (huge_pages.h).
#include "portsim/base/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace portsim {

void advise_huge_pages(const void* p, size_t bytes) {
  if (bytes < kHugeMinBytes) return;
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t b = (uintptr_t(p) + page - 1) & ~(page - 1);
  const uintptr_t e = (uintptr_t(p) + bytes) & ~(page - 1);
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
}

}  // namespace portsim
