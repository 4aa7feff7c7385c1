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

}  // namespace portsim
