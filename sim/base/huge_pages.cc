// advise_huge_pages() (huge_pages.h).
#include "portsim/base/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace portsim {

page_span whole_pages(const void* p, size_t bytes) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  return {(uintptr_t(p) + page - 1) & ~(page - 1), (uintptr_t(p) + bytes) & ~(page - 1)};
}

void advise_huge_pages(const void* p, size_t bytes) {
  if (bytes < kHugeMinBytes) return;
  const page_span s = whole_pages(p, bytes);
  if (s.end > s.begin) madvise(reinterpret_cast<void*>(s.begin), s.end - s.begin, MADV_HUGEPAGE);
}

}  // namespace portsim
