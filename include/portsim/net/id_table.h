// An open-addressing hash index of uint32_t ids whose keys live elsewhere (in the sock or bucket
// arrays): linear probing, backward-shift deletion, no tombstones, no allocation in steady state.
// A slot is 8 bytes (32-bit hash ‖ id+1); load factor at most 1/2. Used for ehash and the
// connect destination index.
#pragma once
#include <cstdint>
#include <vector>

namespace portsim::net {

class IdTable {
 public:
  IdTable() : slots_(16, 0), mask_(15) {}

  // Returns the first id with this hash that eq(id) accepts, or -1.
  template <typename Eq>
  int64_t find(uint32_t hash, Eq&& eq) const {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const uint64_t s = slots_[i];
      if (s == 0) return -1;
      if (uint32_t(s >> 32) == hash && eq(uint32_t(s) - 1)) return int64_t(uint32_t(s) - 1);
    }
  }

  // Starts loading the slot a find(hash) begins at (a hint to the CPU; changes nothing).
  void prefetch(uint32_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }

  void insert(uint32_t hash, uint32_t id) {
    if ((size_ + 1) * 2 > slots_.size()) rebuild(slots_.size() * 2);
    place(hash, id);
    ++size_;
  }

  // Removes `id`, which must be present under `hash`.
  void erase(uint32_t hash, uint32_t id) {
    size_t i = hash & mask_;
    while (uint32_t(slots_[i]) - 1 != id) i = (i + 1) & mask_;
    for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {  // backward-shift the cluster
      const uint64_t s = slots_[j];
      if (s == 0) break;
      const size_t home = uint32_t(s >> 32) & mask_;
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = s;
        i = j;
      }
    }
    slots_[i] = 0;
    --size_;
  }

  size_t size() const { return size_; }
  size_t bytes() const { return slots_.size() * sizeof(uint64_t); }
  void reserve(size_t n) {
    size_t cap = slots_.size();
    while (cap < n * 2) cap *= 2;
    if (cap != slots_.size()) rebuild(cap);
  }

 private:
  void place(uint32_t hash, uint32_t id) {
    size_t i = hash & mask_;
    while (slots_[i] != 0) i = (i + 1) & mask_;
    slots_[i] = uint64_t(hash) << 32 | (uint64_t(id) + 1);
  }
  void rebuild(size_t cap) {
    std::vector<uint64_t> old(cap, 0);
    old.swap(slots_);
    mask_ = cap - 1;
    for (uint64_t s : old)
      if (s) place(uint32_t(s >> 32), uint32_t(s) - 1);
  }

  std::vector<uint64_t> slots_;
  size_t mask_;
  size_t size_ = 0;
};

}  // namespace portsim::net
