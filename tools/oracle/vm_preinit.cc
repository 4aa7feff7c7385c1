// portsim-vm-preinit: the /init of the VM oracle's initramfs (tools/oracle/vm.py). Debian builds
// the bridge and veth drivers as modules, and a multi-host plan needs both (portsim-replay's
// rtnetlink topology), so this loads the modules listed in /modules.order (dependencies first,
// as vm.py resolved them from modules.dep) with finit_module(2), then execs /portsim-replay,
// which stays PID 1 and so runs as the guest executor. Static: the initramfs has no libc.
// A module that fails to load is reported on the console; the executor then reports the
// operation the plan needed ("Operation not supported"), so nothing is hidden.
// Before that it reads the sysctl defaults a fresh network namespace gets (a forked child that
// unshare()s, as every experiment does) and writes them as one `@@PORTSIM-SYSCTLS {...}` line
// to the record port ttyS1 (vm.py: run_batch()["sysctls"]; tests/oracle-vm/sysctl_oracle.py).
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {
// The version-dependent sysctls of the profile table (sim/net/kernel_profile.cc sysctl_rows)
// plus the memory-scaled ones (recorded, never compared: they follow the guest's RAM).
const char* const kSysctls[] = {
    "net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_autobind_reuse", "net.ipv4.ip_nonlocal_bind", "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_tw_reuse_delay", "net.ipv4.tcp_timestamps", "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_syn_linear_timeouts", "net.ipv4.tcp_synack_retries", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_rto_max_ms", "net.ipv4.tcp_tw_recycle", "net.core.somaxconn",
    "net.ipv4.tcp_ehash_entries", "net.ipv4.udp_hash_entries", "net.ipv4.tcp_rto_min_us"};

void dump_sysctl_defaults() {
  pid_t pid = fork();
  if (pid != 0) {
    if (pid > 0) waitpid(pid, nullptr, 0);
    return;
  }
  if (unshare(CLONE_NEWNET) != 0) _exit(1);
  mkdir("/proc", 0555);
  if (mount("proc", "/proc", "proc", 0, nullptr) != 0) _exit(1);
  FILE* out = std::fopen("/dev/ttyS1", "w");
  if (!out) _exit(1);
  std::fputs("@@PORTSIM-SYSCTLS {", out);
  bool first = true;
  for (const char* name : kSysctls) {
    char path[256] = "/proc/sys/";
    std::size_t n = std::strlen(path);
    for (const char* c = name; *c && n + 1 < sizeof path; ++c) path[n++] = *c == '.' ? '/' : *c;
    path[n] = '\0';
    std::fprintf(out, "%s\"%s\":", first ? "" : ",", name);
    first = false;
    FILE* f = std::fopen(path, "r");
    if (!f) {
      std::fputs("null", out);
      continue;
    }
    char buf[512] = "";
    std::size_t len = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[len] = '\0';
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) buf[--len] = '\0';
    std::fputc('"', out);
    for (char* c = buf; *c; ++c) std::fputc(*c == '\t' ? ' ' : (*c == '"' || *c == '\\') ? '?' : *c, out);
    std::fputc('"', out);
  }
  std::fputs("}\n", out);
  std::fclose(out);
  umount("/proc");
  _exit(0);
}
}  // namespace

int main() {
  // Console for the messages below (the executor mounts devtmpfs again; EBUSY is harmless).
  mkdir("/dev", 0755);
  mount("devtmpfs", "/dev", "devtmpfs", 0, nullptr);
  if (FILE* con = std::fopen("/dev/console", "w")) {
    setvbuf(con, nullptr, _IONBF, 0);
    if (FILE* order = std::fopen("/modules.order", "r")) {
      char line[512];
      while (std::fgets(line, sizeof line, order)) {
        line[std::strcspn(line, "\r\n")] = '\0';
        if (!*line) continue;
        int fd = open(line, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST))
          std::fprintf(con, "portsim-vm-preinit: %s: %s\n", line, std::strerror(errno));
        if (fd >= 0) close(fd);
      }
      std::fclose(order);
    }
    std::fclose(con);
  }
  dump_sysctl_defaults();
  umount("/dev");
  char arg0[] = "/init";
  char* argv[] = {arg0, nullptr};
  execv("/portsim-replay", argv);
  std::perror("portsim-vm-preinit: exec /portsim-replay");
  return 1;
}
