// tools/oracle/replay/kcore.cc without a kernel: /proc/kcore's layout (an ELF64 core file whose
// PT_LOAD program headers map kernel virtual addresses to file offsets, fs/proc/kcore.c) and
// /proc/kallsyms' line format ("ADDR TYPE NAME [module]", kernel/kallsyms.c s_show()), on
// synthetic files. The probe itself runs in the VM (tests/live/vm/exact-*.json).
#include <catch2/catch.hpp>

#include <elf.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kcore.h"

using portsim_replay::kcore::KallsymsResult;
using portsim_replay::kcore::KcoreReader;
using portsim_replay::kcore::kallsyms_lookup;

namespace {

std::string temp_path(const char* name) { return std::string("/tmp/portsim-kcore-test-") + name; }

// Two PT_LOAD segments as /proc/kcore has them (kernel text/data, and the direct map) and one
// PT_NOTE, which must be ignored.
std::string write_core() {
  const std::string path = temp_path("core");
  std::vector<uint8_t> file(0x3000, 0);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_type = ET_CORE;
  eh.e_phoff = sizeof eh;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 3;
  std::memcpy(file.data(), &eh, sizeof eh);
  Elf64_Phdr ph[3]{};
  ph[0].p_type = PT_NOTE;
  ph[0].p_offset = 0x800;
  ph[0].p_filesz = 0x10;
  ph[1].p_type = PT_LOAD;
  ph[1].p_vaddr = 0xffffffff82000000ull;
  ph[1].p_offset = 0x1000;
  ph[1].p_memsz = ph[1].p_filesz = 0x1000;
  ph[2].p_type = PT_LOAD;
  ph[2].p_vaddr = 0xffff888000100000ull;
  ph[2].p_offset = 0x2000;
  ph[2].p_memsz = ph[2].p_filesz = 0x1000;
  std::memcpy(file.data() + sizeof eh, ph, sizeof ph);
  const uint64_t jiffies = 4294893466ull, pointer = 0xffff888000100040ull;
  std::memcpy(file.data() + 0x1010, &jiffies, 8);
  std::memcpy(file.data() + 0x1020, &pointer, 8);
  for (uint32_t i = 0; i < 16; ++i) {
    const uint32_t cell = 1000 + i;
    std::memcpy(file.data() + 0x2040 + 4 * i, &cell, 4);
  }
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(file.data()), std::streamsize(file.size()));
  return path;
}

}  // namespace

TEST_CASE("kcore: kernel virtual addresses through the PT_LOAD headers", "[exact][kcore]") {
  const std::string path = write_core();
  KcoreReader core;
  std::string err;
  REQUIRE(core.open(path.c_str(), &err));
  uint64_t v = 0;
  REQUIRE(core.read_u64(0xffffffff82000010ull, &v));
  CHECK(v == 4294893466ull);
  REQUIRE(core.read_u64(0xffffffff82000020ull, &v));  // table_perturb: a pointer into the direct map
  CHECK(v == 0xffff888000100040ull);
  uint32_t cells[16] = {};
  REQUIRE(core.read(v, cells, sizeof cells));
  CHECK(cells[0] == 1000);
  CHECK(cells[15] == 1015);
  CHECK_FALSE(core.read_u64(0xffffffff82000ffcull, &v));  // runs past the segment's end
  CHECK_FALSE(core.read_u64(0xffffffff81000000ull, &v));  // not mapped
  std::remove(path.c_str());
}

TEST_CASE("kcore: a file that is not an ELF64 core is refused with its name", "[exact][kcore]") {
  const std::string path = temp_path("notelf");
  std::ofstream(path) << "hello";
  KcoreReader core;
  std::string err;
  CHECK_FALSE(core.open(path.c_str(), &err));
  CHECK(err == path + ": not an ELF64 core file");
  KcoreReader none;
  CHECK_FALSE(none.open("/nonexistent/kcore", &err));
  CHECK(err == "/nonexistent/kcore: No such file or directory");
  std::remove(path.c_str());
}

TEST_CASE("kallsyms: core-kernel data symbols only, first match", "[exact][kcore]") {
  const std::string path = temp_path("kallsyms");
  std::ofstream(path) << "ffffffff81000000 T _text\n"
                         "ffffffffc0001000 b net_secret\t[some_module]\n"  // a module's: not ours
                         "ffffffff82c1e2a0 b net_secret\n"
                         "ffffffff82c1e2b0 t table_perturb\n"               // text: not data
                         "ffffffff83a00040 b table_perturb\n"
                         "ffffffff82c1e2c0 b net_secret\n"                  // a later duplicate
                         "ffffffff82805000 D jiffies_64\n";
  KallsymsResult r;
  std::string err;
  REQUIRE(kallsyms_lookup(path.c_str(), &r, &err));
  CHECK(r.net_secret == 0xffffffff82c1e2a0ull);
  CHECK(r.table_perturb == 0xffffffff83a00040ull);
  CHECK(r.jiffies_64 == 0xffffffff82805000ull);
  std::ofstream(path) << "ffffffff82805000 D jiffies_64\n";
  KallsymsResult partial;
  CHECK_FALSE(kallsyms_lookup(path.c_str(), &partial, &err));
  CHECK(err == path + ": no address for net_secret table_perturb (needs CONFIG_KALLSYMS_ALL, root, kptr_restrict < 2)");
  std::remove(path.c_str());
}
