// advise_huge_pages() (huge_pages.h).
#include "portsim/base/huge_pages.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>

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
  // Blocks under M_MMAP_THRESHOLD come from the heap (at most 32 MiB: DEFAULT_MMAP_THRESHOLD_MAX);
  // a freed block joins the top chunk, never trimmed. AddressSanitizer's mallopt() answers 0:
  // its allocator is not glibc's.
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  constexpr uintptr_t kHeader = 2 * sizeof(size_t);  // glibc: prev_size and size before a block
  constexpr int kDefaultMmapMax = 65536;             // glibc's DEFAULT_MMAP_MAX
  if (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, INT_MAX) != 1) return false;
  // The region must be untouched when advised: a 2 MiB page backs only a 2 MiB-aligned range
  // none of whose 4 KiB pages is mapped yet, and every touched 4 KiB page is a fault of its own
  // (~18 µs in this project's VMs: a 1.4 MiB head in 4 KiB pages was 6 ms of churn-random's 84).
  // So the region is one block (mmap() off while it is made: no size limit), starting at a
  // 2 MiB boundary with its header just below it; a block kept for good and never touched
  // (address space only) fills the gap from the heap's top, which starts anywhere (ASLR).
  // A free block below the top chunk that is large enough would serve a request instead of the
  // top (a heap already in use, as in the unit tests' process): the region is made larger than
  // all of them together. At the start of main() they are a few KiB.
  const struct mallinfo2 mi = mallinfo2();
  const size_t below_top = mi.fordblks > mi.keepcost ? mi.fordblks - mi.keepcost : 0;
  bytes = (std::max(bytes, below_top + kHuge) + kHuge - 1) & ~(kHuge - 1);
  if (mallopt(M_MMAP_MAX, 0) != 1) return false;
  static void* head_holes[4] = {};  // still reachable: never freed on purpose
  for (void*& hole : head_holes) {  // a small gap's block may come from a free one: look again
    void* probe = malloc(bytes + 2 * kHuge);  // at the top chunk; its end lies past the region
    if (!probe) break;
    const uintptr_t top = uintptr_t(probe) - kHeader;
    free(probe);  // back into the top chunk: only its header (below the region) is written
    uintptr_t begin = (top + kHeader + kHuge - 1) & ~(kHuge - 1);
    if (begin - kHeader == top) break;                      // the next block starts there
    if (begin - kHeader - top < 4096) begin += kHuge;       // a tiny block would come from a bin
    hole = malloc(begin - kHeader - top - sizeof(size_t));  // a chunk of exactly that size
  }
  void* region = malloc(bytes);
  mallopt(M_MMAP_MAX, kDefaultMmapMax);
  if (!region) return false;
  const page_span s = whole_pages(region, bytes);
  const bool advised = s.end > s.begin && madvise(reinterpret_cast<void*>(s.begin), s.end - s.begin, MADV_HUGEPAGE) == 0;
  free(region);
  return advised;
#else
  (void)bytes;
  return false;
#endif
}

}  // namespace portsim
