// Exact probe for portsim-replay's exact mode (issue 13): reads the kernel's own inputs of the
// connect() port choice — net_secret, jiffies_64 and the table_perturb array — through
// /proc/kallsyms (addresses; needs KALLSYMS_ALL and root) and /proc/kcore (an ELF64 core file
// whose PT_LOAD program headers map kernel virtual addresses to file offsets).
//
// Kernel sources of the symbols (Debian 5.10.262, 6.1.192, 6.12.118 all have them):
//   net/core/secure_seq.c      static siphash_aligned_key_t net_secret (2 x u64), filled by
//                              net_secret_init() -> net_get_random_once() on first use;
//   net/ipv4/inet_hashtables.c static u32 *table_perturb (e8161345ddbb, 5.18; stable 5.10.125),
//                              INET_TABLE_PERTURB_SIZE cells = 1 << 16 (4c2c8f03a5ab), since
//                              "tcp: configurable source port perturb table size" 1 <<
//                              CONFIG_INET_TABLE_PERTURB_ORDER: =16 in the config-* of all three
//                              Debian packages (5.10.0-46, 6.1.0-57, 6.12.118). Allocated at boot,
//                              filled with random bytes by the first __inet_hash_connect()
//                              (net_get_random_once; get_random_sleepable_once in 6.x). 5.12-5.17
//                              had a static u32 table_perturb[256] (190cc82489f4).
//                              PORTSIM_PERTURB_SIZE=N overrides the size the probe assumes.
//   kernel/time/jiffies.c      jiffies_64 (jiffies is its alias on 64-bit).
// The probe is only useful as root inside a throw-away VM (the guest of tools/oracle/vm.py);
// on a host without /proc/kcore open() says so and returns false.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace portsim_replay::kcore {

// /proc/kcore: kernel virtual address -> file offset through the PT_LOAD headers.
class KcoreReader {
 public:
  bool open(const char* path, std::string* err);
  bool read(uint64_t vaddr, void* buf, size_t len) const;  // false: unmapped or short read
  bool read_u64(uint64_t vaddr, uint64_t* v) const { return read(vaddr, v, sizeof *v); }
  ~KcoreReader();

 private:
  struct Segment {
    uint64_t vaddr, size, offset;
  };
  int fd_ = -1;
  std::vector<Segment> segs_;
};

// Looks names up in /proc/kallsyms (text "ADDR TYPE NAME [module]"); only core-kernel data
// symbols (types b B d D r R) count. Returns 0 for a name it did not find.
struct KallsymsResult {
  uint64_t net_secret = 0, table_perturb = 0, jiffies_64 = 0;
};
bool kallsyms_lookup(const char* path, KallsymsResult* out, std::string* err);

struct ExactProbe {                // reads /proc/kallsyms + /proc/kcore
  bool open(std::string* err);     // false: not available (e.g. host without kcore)
  nlohmann::json secret();         // {"net_secret":"<32 hex>", "hz":250, ...} once per experiment
  void before();                   // snapshot jiffies_64 + the table_perturb array
  nlohmann::json after();          // {"jiffies_before":J0,"jiffies_after":J1,"perturb":[[idx,old,new],...]}

 private:
  bool read_table(std::vector<uint32_t>* cells) const;
  uint64_t jiffies() const;
  KcoreReader core_;
  KallsymsResult sym_;
  uint64_t table_ = 0;             // address of cell 0
  bool table_is_pointer_ = true;   // static u32 *table_perturb (5.10.125+, 5.18+) vs u32 [256]
  uint32_t table_size_ = 0;        // INET_TABLE_PERTURB_SIZE
  uint32_t hz_ = 0;                // measured: jiffies_64 ticks per second of CLOCK_MONOTONIC
  bool warmed_ = false;            // did open() make the first-use random fills happen?
  uint64_t j_before_ = 0;
  std::vector<uint32_t> snap_;
  bool snap_ok_ = false;
};

}  // namespace portsim_replay::kcore
