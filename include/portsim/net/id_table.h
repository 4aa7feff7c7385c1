// An open-addressing hash index of uint32_t ids whose keys live elsewhere (in the sock or bucket
// arrays): linear probing, backward-shift deletion, no tombstones, no allocation in steady state.
// A slot is 8 bytes (32-bit hash ‖ id+1). The capacity is a multiple of 16, not a power of two:
// the home slot of a hash is group (hash >> 4) × groups >> 28 (Lemire's fast range), slot
// hash & 15 in that 16-slot group. Hashes must be well mixed in all 32 bits (keys that share
// their low bits all start in the same slot of their group and lengthen the clusters that
// every miss probes to the end). The load factor stays at most 3/4 and a
// reserve(n) costs n × 4/3 slots (~10.7 bytes per entry, not 16–32 as with power-of-two
// doubling). Used for ehash and the connect destination index.
#pragma once
#include <cstdint>
#include <vector>

#include "portsim/base/huge_pages.h"

namespace portsim::net {

class IdTable {
 public:
  IdTable() : slots_(kMinSlots, 0) {}

  // Returns the first id with this hash that eq(id) accepts, or -1.
  template <typename Eq>
  int64_t find(uint32_t hash, Eq&& eq) const {
    for (size_t i = home(hash);;) {
      const uint64_t s = slots_[i];
      if (s == 0) return -1;
      if (uint32_t(s >> 32) == hash && eq(uint32_t(s) - 1)) return int64_t(uint32_t(s) - 1);
      if (++i == slots_.size()) i = 0;
    }
  }

  // find(), which also tells, when nothing matched, the empty slot its probe ended at: the slot
  // insert(hash, ·) would fill. insert_at() takes it while the table has not changed since.
  template <typename Eq>
  int64_t find(uint32_t hash, Eq&& eq, size_t& empty_slot) const {
    for (size_t i = home(hash);;) {
      const uint64_t s = slots_[i];
      if (s == 0) {
        empty_slot = i;
        return -1;
      }
      if (uint32_t(s >> 32) == hash && eq(uint32_t(s) - 1)) return int64_t(uint32_t(s) - 1);
      if (++i == slots_.size()) i = 0;
    }
  }

  // Starts loading the slot a find(hash) begins at (a hint to the CPU; changes nothing).
  // always_inline: out of line, GCC's link-time optimizer takes a function that only prefetches
  // for one without effect and drops its calls (measured: the prefetch vanished, session 11).
  [[gnu::always_inline]] void prefetch(uint32_t hash) const { __builtin_prefetch(home_slot(hash)); }
  // Where a find(hash) begins (while the table keeps its size): to prefetch later.
  const void* home_slot(uint32_t hash) const { return &slots_[home(hash)]; }

  void insert(uint32_t hash, uint32_t id) {
    if ((size_ + 1) * 4 > slots_.size() * 3) rebuild(slots_.size() * 2);
    place(hash, id);
    ++size_;
  }

  // insert(hash, id) where `empty_slot` is what find(hash, ·, empty_slot) returned with no
  // change to the table since: the probe is not repeated (linear probing without tombstones
  // places a new entry at the first empty slot from its home, where that find stopped).
  void insert_at(uint32_t hash, uint32_t id, size_t empty_slot) {
    if ((size_ + 1) * 4 > slots_.size() * 3 || slots_[empty_slot] != 0) return insert(hash, id);
    slots_[empty_slot] = uint64_t(hash) << 32 | (uint64_t(id) + 1);
    ++size_;
  }

  // Removes `id`, which must be present under `hash`.
  void erase(uint32_t hash, uint32_t id) {
    const size_t cap = slots_.size();
    size_t i = home(hash);
    while (uint32_t(slots_[i]) - 1 != id) i = i + 1 == cap ? 0 : i + 1;
    for (size_t j = i + 1 == cap ? 0 : i + 1;; j = j + 1 == cap ? 0 : j + 1) {  // backward-shift the cluster
      const uint64_t s = slots_[j];
      if (s == 0) break;
      const size_t h = home(uint32_t(s >> 32));
      // s may move to i when its home is not in the cyclic interval (i, j].
      const size_t dist_j = j >= h ? j - h : j + cap - h;
      const size_t dist_i = j >= i ? j - i : j + cap - i;
      if (dist_j >= dist_i) {
        slots_[i] = s;
        i = j;
      }
    }
    slots_[i] = 0;
    --size_;
  }

  size_t size() const { return size_; }
  size_t bytes() const { return slots_.size() * sizeof(uint64_t); }
  const uint64_t* slots() const { return slots_.data(); }  // where the table lives (tests)
  // Room for n entries without a rebuild.
  void reserve(size_t n) {
    const size_t cap = (n + n / 3 + 16) & ~size_t(15);
    if (cap > slots_.size()) rebuild(cap);
  }

 private:
  static constexpr size_t kMinSlots = 16;
  size_t home(uint32_t hash) const {
    return size_t(((uint64_t(hash >> 4) * (slots_.size() >> 4)) >> 28) << 4 | (hash & 15));
  }
  void place(uint32_t hash, uint32_t id) {
    size_t i = home(hash);
    while (slots_[i] != 0) i = i + 1 == slots_.size() ? 0 : i + 1;
    slots_[i] = uint64_t(hash) << 32 | (uint64_t(id) + 1);
  }
  void rebuild(size_t cap) {
    std::vector<uint64_t> old;
    old.reserve(cap);
    advise_huge_pages(old.data(), cap * sizeof(uint64_t));  // before the first touch (huge_pages.h)
    old.resize(cap, 0);
    old.swap(slots_);
    for (uint64_t s : old)
      if (s) place(uint32_t(s >> 32), uint32_t(s) - 1);
  }

  std::vector<uint64_t> slots_;
  size_t size_ = 0;
};

}  // namespace portsim::net
