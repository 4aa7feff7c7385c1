#pragma once
// Prefaulter: the page faults of a large reserved array (the socks of a run with 10^6 planned
// connections: 76 MB) are taken on another core, a bounded distance ahead of the array's use,
// with madvise(MADV_POPULATE_WRITE) (Linux 5.14+; on an older kernel it does nothing).
// The owner reports how far the array is used (advance()); the thread never runs more than
// kAhead bytes beyond that, so a run that stops early does not pay for pages it never uses.
// Touches no byte of the array itself: it only asks the kernel to map its pages.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>

namespace portsim {

class Prefaulter {
 public:
  static constexpr size_t kAhead = size_t(32) << 20;  // bytes mapped ahead of use
  static constexpr size_t kChunk = size_t(2) << 20;   // one madvise() call
  static constexpr size_t kMinBytes = size_t(8) << 20;  // smaller arrays: not worth a thread

  Prefaulter() = default;
  Prefaulter(const Prefaulter&) = delete;
  Prefaulter& operator=(const Prefaulter&) = delete;
  ~Prefaulter() { stop(); }

  // Maps [begin, begin + bytes) ahead of its use; nothing when bytes < kMinBytes.
  void start(const void* begin, size_t bytes);
  // The first `used` bytes are in use: the thread may map up to used + kAhead.
  void advance(size_t used) {
    if (used < next_wake_) return;  // one compare on the hot path
    wake(used);
  }
  void stop();
  // Bytes the thread asked the kernel to map so far (tests).
  size_t mapped() const { return mapped_.load(std::memory_order_acquire); }

 private:
  void wake(size_t used);
  void run(uintptr_t begin, uintptr_t end);

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t used_ = 0;          // under mu_
  bool stopping_ = false;    // under mu_
  size_t next_wake_ = SIZE_MAX;  // owner thread only: advance() wakes the thread at this use
  std::atomic<size_t> mapped_{0};
};

}  // namespace portsim
