// Prefaulter (prefault.h): pages mapped ahead of use, never more than kAhead beyond it; and the
// huge-page advice of large tables (huge_pages.h), read back from /proc/self/smaps.
// Residency is read back from the kernel with mincore(2).
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "portsim/base/huge_pages.h"
#include "portsim/base/prefault.h"
#include "portsim/net/id_table.h"

using namespace portsim;

namespace {

size_t resident_bytes(void* p, size_t bytes) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> v((bytes + page - 1) / page);
  REQUIRE(mincore(p, bytes, v.data()) == 0);
  size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n * page;
}

// With transparent huge pages ("always"), a fault may map the whole 2 MiB page around it.
constexpr size_t kHugeSlack = size_t(2) << 20;

// Waits until the thread mapped at least `want` bytes (or 5 s passed).
size_t wait_mapped(const Prefaulter& pf, size_t want) {
  for (int i = 0; i < 5000 && pf.mapped() < want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return pf.mapped();
}

}  // namespace

TEST_CASE("prefault: maps kAhead bytes ahead of use, then follows advance()", "[prefault]") {
  const size_t bytes = 8 * Prefaulter::kAhead;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  REQUIRE(resident_bytes(p, bytes) == 0);
  {
    Prefaulter pf;
    pf.start(p, bytes);
    if (wait_mapped(pf, Prefaulter::kAhead) == 0) {
      WARN("madvise(MADV_POPULATE_WRITE) unsupported by this kernel (< 5.14): nothing to check");
      munmap(p, bytes);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // it must stop at kAhead
    CHECK(pf.mapped() == Prefaulter::kAhead);
    CHECK(resident_bytes(p, bytes) >= Prefaulter::kAhead);
    CHECK(resident_bytes(p, bytes) <= Prefaulter::kAhead + kHugeSlack);
    pf.advance(Prefaulter::kAhead / 4);  // below the wake-up mark: nothing moves
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(pf.mapped() == Prefaulter::kAhead);
    pf.advance(Prefaulter::kAhead + 12);  // a use that is no whole number of pages
    CHECK(wait_mapped(pf, 2 * Prefaulter::kAhead) == 2 * Prefaulter::kAhead);
    pf.advance(3 * Prefaulter::kAhead);  // the lead is restored again: up to 4 kAhead
    CHECK(wait_mapped(pf, 4 * Prefaulter::kAhead) == 4 * Prefaulter::kAhead);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(pf.mapped() == 4 * Prefaulter::kAhead);
    CHECK(resident_bytes(p, bytes) >= 4 * Prefaulter::kAhead);
    CHECK(resident_bytes(p, bytes) <= 4 * Prefaulter::kAhead + kHugeSlack);
    pf.stop();
    pf.advance(bytes);  // after stop(): no thread, nothing mapped
  }
  CHECK(resident_bytes(p, bytes) <= 4 * Prefaulter::kAhead + kHugeSlack);
  munmap(p, bytes);
}

TEST_CASE("prefault: a small array gets no thread; the contents stay as they were", "[prefault]") {
  std::vector<unsigned char> small(Prefaulter::kMinBytes - 1, 7);
  Prefaulter pf;
  pf.start(small.data(), small.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(pf.mapped() == 0);
  // A large array that holds data: populating maps pages, it never writes to them.
  const size_t bytes = Prefaulter::kMinBytes * 2;
  std::vector<unsigned char> big(bytes, 0x5a);
  pf.start(big.data(), bytes);
  wait_mapped(pf, bytes - 2 * size_t(sysconf(_SC_PAGESIZE)));
  pf.stop();
  size_t bad = 0;
  for (unsigned char c : big) bad += c != 0x5a;
  CHECK(bad == 0);
}

namespace {

// The VmFlags of the mapping that holds `p` (/proc/self/smaps): "hg" = MADV_HUGEPAGE advised.
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const uintptr_t a = uintptr_t(p);
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return {};
}

// The mapping that holds `p` (/proc/self/maps): [first, second); {0, 0} when none does.
std::pair<uintptr_t, uintptr_t> mapping_of(const void* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const uintptr_t a = uintptr_t(p);
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && a >= lo && a < hi) return {lo, hi};
  }
  return {0, 0};
}

// Does this kernel have transparent huge pages (any mode)?
bool thp_available() {
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  return thp && std::getline(thp, mode);
}

bool has_flag(const std::string& vm_flags, const char* flag) {
  return (vm_flags + " ").find(std::string(" ") + flag + " ") != std::string::npos;
}

}  // namespace

TEST_CASE("huge pages: the ehash of a large run and the planned socks are advised 2 MiB pages", "[prefault]") {
  if (!thp_available()) {
    WARN("no transparent huge pages in this kernel: nothing to check");
    return;
  }
  net::IdTable big;
  big.reserve(1 << 20);  // 1.4 M slots, 11 MiB: above kHugeMinBytes
  const std::string flags = vm_flags_of(big.slots() + big.bytes() / 16);
  INFO(flags);
  CHECK(has_flag(flags, "hg"));
  big.insert(12345, 7);  // still a working table
  CHECK(big.find(12345, [](uint32_t id) { return id == 7; }) == 7);

  net::IdTable small;  // 16 slots: left alone
  small.reserve(100);
  CHECK(!has_flag(vm_flags_of(small.slots()), "hg"));
}

TEST_CASE("huge pages: the heap is advised 2 MiB pages, and a table of a few MiB lives there", "[prefault]") {
  if (!thp_available()) {
    WARN("no transparent huge pages in this kernel: nothing to check");
    return;
  }
  if (!advise_huge_page_heap(size_t(32) << 20)) {
    WARN("not glibc's malloc (a sanitizer build): the heap is not advised");
    return;
  }
  // A table of a few MiB (under M_MMAP_THRESHOLD, now 32 MiB) is carved from the advised top.
  std::vector<uint64_t> table(size_t(3) << 17, 1);  // 3 MiB
  const std::string flags = vm_flags_of(table.data() + table.size() / 2);
  INFO(flags);
  CHECK(has_flag(flags, "hg"));
  CHECK(!has_flag(vm_flags_of(&flags), "hg"));  // the stack is left alone
  // The 2 MiB range around the table lies wholly inside the advised mapping: a 2 MiB page backs
  // only a whole aligned range, none of whose 4 KiB pages is mapped yet, so a mapping starting
  // inside a range leaves the run's first heap (up to 2 MiB) in 4 KiB pages, each a fault of
  // its own (session 13: 830 -> 312 faults on churn-random). Fails on a941648's huge_pages.cc,
  // whose advice started where the heap's top happened to be.
  const auto [lo, hi] = mapping_of(table.data());
  const uintptr_t range = uintptr_t(table.data()) & ~((uintptr_t(2) << 20) - 1);
  INFO(fmt::format("advised mapping {:#x}-{:#x}, the table's 2 MiB range at {:#x}", lo, hi, range));
  CHECK(lo <= range);
  CHECK(range + (uintptr_t(2) << 20) <= hi);
}
