// Prefaulter (prefault.h): madvise(MADV_POPULATE_WRITE) on a second thread, ahead of use.
#include "portsim/base/prefault.h"

#include "portsim/base/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace portsim {

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // include/uapi/asm-generic/mman-common.h (Linux 5.14)
#endif

void Prefaulter::start(const void* begin, size_t bytes) {
  stop();
  if (bytes < kMinBytes) return;
  // Whole pages inside the array only: the partial first and last pages fault as usual.
  const page_span pages = whole_pages(begin, bytes);
  const uintptr_t b = pages.begin, e = pages.end;
  if (e <= b) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    used_ = 0;
    stopping_ = false;
  }
  mapped_.store(0, std::memory_order_release);
  next_wake_ = kAhead / 2;
  thread_ = std::thread([this, b, e] { run(b, e); });
}

void Prefaulter::wake(size_t used) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    used_ = used;
  }
  cv_.notify_one();
  next_wake_ = used + kAhead / 2;  // the next wake-up: when half the lead is used up
}

void Prefaulter::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  next_wake_ = SIZE_MAX;
}

void Prefaulter::run(uintptr_t begin, uintptr_t end) {
  const uintptr_t first = begin;
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  while (begin < end) {
    size_t limit;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || ((first + used_ + kAhead) & ~(page - 1)) > begin; });
      if (stopping_) return;
      limit = used_ + kAhead;
    }
    const uintptr_t upto = std::min(end, (first + limit) & ~(page - 1));  // madvise() takes whole pages
    while (begin < upto) {
      const size_t n = std::min<uintptr_t>(kChunk, upto - begin);
      if (madvise(reinterpret_cast<void*>(begin), n, MADV_POPULATE_WRITE) != 0) return;  // < 5.14: EINVAL
      begin += n;
      mapped_.store(begin - first, std::memory_order_release);
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
  }
}

}  // namespace portsim
