// portsim-vm-preinit: the /init of the VM oracle's initramfs (tools/oracle/vm.py). Debian builds
// the bridge and veth drivers as modules, and a multi-host plan needs both (portsim-replay's
// rtnetlink topology), so this loads the modules listed in /modules.order (dependencies first,
// as vm.py resolved them from modules.dep) with finit_module(2), then execs /portsim-replay,
// which stays PID 1 and so runs as the guest executor. Static: the initramfs has no libc.
// A module that fails to load is reported on the console; the executor then reports the
// operation the plan needed ("Operation not supported"), so nothing is hidden.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

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
  umount("/dev");
  char arg0[] = "/init";
  char* argv[] = {arg0, nullptr};
  execv("/portsim-replay", argv);
  std::perror("portsim-vm-preinit: exec /portsim-replay");
  return 1;
}
