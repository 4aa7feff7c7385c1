// advise_huge_pages() (huge_pages.h).
#include "portsim/base/huge_pages.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <vector>

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

bool advise_huge_page_heap(size_t bytes) {
#ifdef __GLIBC__
  // Blocks under M_MMAP_THRESHOLD come from the heap (at most 32 MiB: DEFAULT_MMAP_THRESHOLD_MAX),
  // so the heap grows in pieces below it; a freed piece joins the top chunk, never trimmed.
  // AddressSanitizer's mallopt() answers 0: its allocator is not glibc's.
  constexpr size_t kPiece = size_t(16) << 20;
  if (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, INT_MAX) != 1) return false;
  std::vector<void*> pieces;
  bool advised = false;
  for (size_t done = 0; done < bytes; done += kPiece) {
    void* p = malloc(kPiece);  // the heap's top grows, none of it touched yet
    if (!p) break;
    pieces.push_back(p);
    const page_span s = whole_pages(p, kPiece);
    if (s.end > s.begin && madvise(reinterpret_cast<void*>(s.begin), s.end - s.begin, MADV_HUGEPAGE) == 0) advised = true;
  }
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) free(*it);
  return advised;
#else
  (void)bytes;
  return false;
#endif
}

}  // namespace portsim
