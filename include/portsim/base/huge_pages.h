#pragma once
// Transparent huge pages for the run's large tables. The ehash (IdTable) is probed at random
// addresses on every connect, and the socks it points to are read at random: with 4 KiB pages
// a 30 MiB table and 200 MiB of socks miss the TLB on nearly every probe. madvise(MADV_HUGEPAGE)
// asks the kernel for 2 MiB pages there (THP mode "madvise" or "always"; with "never", or a
// kernel without THP, it changes nothing). Measured on exhaust-100: 1.37 -> 1.25 s.
#include <cstddef>
#include <cstdint>

namespace portsim {

// The whole pages inside [p, p + bytes) (madvise() takes whole pages): [begin, end), empty
// when end <= begin. Shared with the Prefaulter (prefault.h).
struct page_span {
  uintptr_t begin = 0, end = 0;
};
page_span whole_pages(const void* p, size_t bytes);

// Advises 2 MiB pages for the whole pages inside [p, p + bytes); arrays under kHugeMinBytes
// are left alone (they fit the TLB anyway). Errors are ignored: it is only advice.
inline constexpr size_t kHugeMinBytes = size_t(4) << 20;
void advise_huge_pages(const void* p, size_t bytes);

// The process heap in 2 MiB pages as well: the run's many smaller tables (bind buckets, the
// destination bitmaps, the event queue, memo tables, an ehash under 32 MiB) are read at random
// too, and under nested paging (a VM) every TLB miss walks two page tables. What glibc's
// tunable glibc.malloc.hugetlb=1 does, from inside: the main heap grows by `bytes`, from a 2 MiB
// boundary (so that no 4 KiB page of the run's heap is a fault of its own), advised before any
// of it is touched, and keeps it (no trimming); blocks up to 32 MiB come from the heap. Call
// first thing in main(). Memory is committed 2 MiB at a time where touched.
// False when nothing was advised: not glibc's malloc (AddressSanitizer's, whose mallopt()
// refuses), or madvise() refused. Measured (README "Performance", session 8): churn-random
// 3.7 -> 4.7-4.9 M events/s, the 1 000-destination workload 2.1 -> 3.1 M events/s.
bool advise_huge_page_heap(size_t bytes);
// What portsim advises at start: room for the tables of a large run (exhaust-100 keeps ~34 MiB
// on the heap), only virtual until touched.
inline constexpr size_t kHugeHeapBytes = size_t(64) << 20;

}  // namespace portsim
