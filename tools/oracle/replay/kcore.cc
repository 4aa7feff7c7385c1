// See kcore.h. Linux-only, static-link friendly: libc + libstdc++ + nlohmann_json (header).
#include "kcore.h"

#include <arpa/inet.h>
#include <elf.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace portsim_replay::kcore {

namespace {

// Cells reported per connect at most; more means the table was (re)filled, not incremented.
constexpr size_t kMaxChangedCells = 64;
// Where a boot's probe results are kept for the next experiment (each runs in a forked child;
// the kallsyms scan costs ~1.5 s under TCG). Keyed by the boot id, so a stale file is ignored.
constexpr const char* kCacheFile = "/tmp/portsim-kcore.cache";

std::string boot_id() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string s;
  f >> s;
  return s;
}

bool is_kernel_address(uint64_t a) { return a >= 0xffff800000000000ull; }

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

std::string hex_bytes(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

// Brings lo up in the calling process's network namespace (SIOCSIFFLAGS IFF_UP).
bool loopback_up() {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = short(ifr.ifr_flags | IFF_UP);
  ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  close(fd);
  return ok;
}

// One autobinding connect() to 127.0.0.1:1 in a throw-away namespace of a forked child: it runs
// __inet_hash_connect() once, which makes the kernel fill net_secret (net_secret_init) and
// table_perturb (net_get_random_once / get_random_sleepable_once) if no connect() did yet, so
// that every later before() sees the table the experiment's connects use. It changes one cell
// (that of 127.0.0.1 -> 127.0.0.1:1); before()/after() record the cells exactly anyway.
bool warm_up() {
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    if (unshare(CLONE_NEWNET) != 0 || !loopback_up()) _exit(3);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) _exit(4);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(1);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int r = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    _exit(r == 0 || errno == ECONNREFUSED ? 0 : 5);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

}  // namespace

// --- /proc/kcore -----------------------------------------------------------------------------

KcoreReader::~KcoreReader() {
  if (fd_ >= 0) close(fd_);
}

bool KcoreReader::open(const char* path, std::string* err) {
  fd_ = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    *err = std::string(path) + ": " + std::strerror(errno);
    return false;
  }
  Elf64_Ehdr eh{};
  if (pread(fd_, &eh, sizeof eh, 0) != ssize_t(sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
    *err = std::string(path) + ": not an ELF64 core file";
    return false;
  }
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    if (pread(fd_, &ph, sizeof ph, off_t(eh.e_phoff + uint64_t(i) * sizeof ph)) != ssize_t(sizeof ph)) {
      *err = std::string(path) + ": short read of the program headers";
      return false;
    }
    if (ph.p_type == PT_LOAD && ph.p_memsz) segs_.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset});
  }
  if (segs_.empty()) {
    *err = std::string(path) + ": no PT_LOAD segment";
    return false;
  }
  return true;
}

bool KcoreReader::read(uint64_t vaddr, void* buf, size_t len) const {
  for (const Segment& s : segs_) {
    if (vaddr < s.vaddr || vaddr - s.vaddr >= s.size || len > s.size - (vaddr - s.vaddr)) continue;
    const off_t off = off_t(s.offset + (vaddr - s.vaddr));
    size_t done = 0;
    while (done < len) {
      const ssize_t n = pread(fd_, static_cast<char*>(buf) + done, len - done, off + off_t(done));
      if (n <= 0) return false;
      done += size_t(n);
    }
    return true;
  }
  return false;
}

// --- /proc/kallsyms --------------------------------------------------------------------------

bool kallsyms_lookup(const char* path, KallsymsResult* out, std::string* err) {
  std::ifstream in(path);
  if (!in) {
    *err = std::string(path) + ": cannot open";
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    // "ffffffff82c1e2a0 b net_secret" — module symbols carry a "\t[mod]" tail: not ours.
    if (line.find('[') != std::string::npos) continue;
    const size_t sp1 = line.find(' '), sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string::npos || sp2 != sp1 + 2) continue;
    const char type = line[sp1 + 1];
    if (!std::strchr("bBdDrR", type)) continue;
    const std::string name = line.substr(sp2 + 1);
    uint64_t* slot = name == "net_secret" ? &out->net_secret
                     : name == "table_perturb" ? &out->table_perturb
                     : name == "jiffies_64" ? &out->jiffies_64
                                            : nullptr;
    if (!slot || *slot) continue;
    *slot = std::strtoull(line.substr(0, sp1).c_str(), nullptr, 16);
  }
  if (!out->net_secret || !out->table_perturb || !out->jiffies_64) {
    *err = std::string(path) + ": no address for" + (out->net_secret ? "" : " net_secret") +
           (out->table_perturb ? "" : " table_perturb") + (out->jiffies_64 ? "" : " jiffies_64") +
           " (needs CONFIG_KALLSYMS_ALL, root, kptr_restrict < 2)";
    return false;
  }
  return true;
}

// --- the probe ---------------------------------------------------------------------------------

bool ExactProbe::open(std::string* err) {
  // The boot's cache: "boot_id net_secret table_perturb jiffies_64 hz warmed" in hex/decimal.
  bool cached = false;
  const std::string boot = boot_id();
  if (std::ifstream c(kCacheFile); c && !boot.empty()) {
    std::string id;
    unsigned warmed = 0;
    c >> id >> std::hex >> sym_.net_secret >> sym_.table_perturb >> sym_.jiffies_64 >> std::dec >> hz_ >> warmed;
    cached = c && id == boot && sym_.net_secret && sym_.table_perturb && sym_.jiffies_64 && hz_;
    warmed_ = cached && warmed;
    if (!cached) sym_ = {}, hz_ = 0, warmed_ = false;
  }
  if (!core_.open("/proc/kcore", err)) return false;
  if (!cached) {
    sym_ = {};
    if (!kallsyms_lookup("/proc/kallsyms", &sym_, err)) return false;
    if (sym_.net_secret < 0x1000) {
      *err = "/proc/kallsyms shows zero addresses (kptr_restrict, or not root)";
      return false;
    }
  }
  uint64_t j = 0;
  if (!core_.read_u64(sym_.jiffies_64, &j)) {
    *err = "/proc/kcore: cannot read jiffies_64";
    return false;
  }
  // table_perturb: a pointer to the cells (5.10.125+, 5.18+), or the 256 cells themselves.
  uint64_t word = 0;
  if (!core_.read_u64(sym_.table_perturb, &word)) {
    *err = "/proc/kcore: cannot read table_perturb";
    return false;
  }
  table_is_pointer_ = is_kernel_address(word);
  table_ = table_is_pointer_ ? word : sym_.table_perturb;
  table_size_ = table_is_pointer_ ? 65536 : 256;  // 1 << 16 (4c2c8f03a5ab; CONFIG default 16), 1 << 8
  if (const char* s = getenv("PORTSIM_PERTURB_SIZE")) table_size_ = uint32_t(std::strtoul(s, nullptr, 10));
  std::vector<uint32_t> probe;
  if (!read_table(&probe)) {
    *err = "/proc/kcore: cannot read the table_perturb cells";
    return false;
  }
  if (!hz_) {  // HZ: jiffies_64 ticks over 100 ms of CLOCK_MONOTONIC, rounded to a CONFIG_HZ value
    const uint64_t t0 = monotonic_ns(), j0 = jiffies();
    timespec d{0, 100000000};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
    const uint64_t t1 = monotonic_ns(), j1 = jiffies();
    const double rate = double(j1 - j0) * 1e9 / double(t1 - t0);
    hz_ = 100;
    for (uint32_t h : {250u, 300u, 1000u})
      if (std::abs(rate - h) < std::abs(rate - hz_)) hz_ = h;
  }
  if (!warmed_) warmed_ = warm_up();
  mkdir("/tmp", 01777);  // the guest's initramfs has none
  if (std::ofstream c(kCacheFile); c && !boot.empty())
    c << boot << ' ' << std::hex << sym_.net_secret << ' ' << sym_.table_perturb << ' ' << sym_.jiffies_64 << std::dec << ' ' << hz_
      << ' ' << unsigned(warmed_) << '\n';
  return true;
}

uint64_t ExactProbe::jiffies() const {
  uint64_t j = 0;
  (void)core_.read_u64(sym_.jiffies_64, &j);
  return j;
}

bool ExactProbe::read_table(std::vector<uint32_t>* cells) const {
  cells->assign(table_size_, 0);
  return core_.read(table_, cells->data(), size_t(table_size_) * sizeof(uint32_t));
}

nlohmann::json ExactProbe::secret() {
  uint8_t key[16] = {};
  const bool ok = core_.read(sym_.net_secret, key, sizeof key);
  nlohmann::json j;
  // The 16 bytes in memory order: siphash_key_t {u64 key[2]} little-endian, as portsim's
  // machine "net_secret" field reads them.
  j["net_secret"] = ok ? hex_bytes(key, sizeof key) : "";
  j["hz"] = hz_;
  j["jiffies"] = jiffies();
  j["perturb_size"] = table_size_;
  j["perturb_layout"] = table_is_pointer_ ? "pointer" : "static";
  j["warmed"] = warmed_;
  if (!ok) j["error"] = "cannot read net_secret";
  return j;
}

void ExactProbe::before() {
  j_before_ = jiffies();
  snap_ok_ = read_table(&snap_);
}

nlohmann::json ExactProbe::after() {
  const uint64_t j_after = jiffies();
  nlohmann::json j;
  j["jiffies_before"] = j_before_;
  j["jiffies_after"] = j_after;
  std::vector<uint32_t> now;
  if (!snap_ok_ || !read_table(&now)) {
    j["error"] = "cannot read table_perturb";
    j["perturb"] = nlohmann::json::array();
    return j;
  }
  nlohmann::json cells = nlohmann::json::array();
  size_t changed = 0;
  for (uint32_t i = 0; i < table_size_; ++i) {
    if (now[i] == snap_[i]) continue;
    if (++changed <= kMaxChangedCells) cells.push_back({i, snap_[i], now[i]});
  }
  j["perturb"] = std::move(cells);
  if (changed > kMaxChangedCells) j["perturb_refilled"] = changed;  // first use: random fill
  return j;
}

}  // namespace portsim_replay::kcore
