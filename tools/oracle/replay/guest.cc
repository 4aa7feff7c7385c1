// portsim-replay: guest mode (PID 1 in a VM). Record format: tools/oracle/replay/README.md.
#include "guest.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <sched.h>
#include <sstream>
#include <string>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "errors.h"
#include "netns.h"
#include "plan.h"
#include "replay.h"
#include "rtnl.h"

namespace portsim_replay {
namespace {

constexpr const char* kBatch = "/batch.json";
constexpr const char* kRecords = "/dev/ttyS1";
constexpr std::size_t kStderrMax = 65536;  // stderr kept per experiment

/// proc, sysfs and devtmpfs (the initramfs has no device nodes), and a /tmp.
void guest_mount() {
  for (const char* d : {"/proc", "/sys", "/dev", "/tmp"}) mkdir(d, 0755);
  mount("proc", "/proc", "proc", 0, nullptr);
  mount("sysfs", "/sys", "sysfs", 0, nullptr);
  mount("devtmpfs", "/dev", "devtmpfs", 0, nullptr);
}

/// fds 0-2 on /dev/console (the kernel could not open one for init before devtmpfs existed).
void guest_console() {
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0) return;
  for (int k = 0; k < 3; ++k) dup2(fd, k);
  if (fd > 2) close(fd);
}

/// The record port, raw (no \n -> \r\n); the console if there is no second serial port.
int guest_records_open() {
  int fd = open(kRecords, O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "portsim-replay: cannot open %s (%s): records go to the console\n", kRecords,
                 std::strerror(errno));
    return 1;
  }
  termios t{};
  if (tcgetattr(fd, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);
  }
  return fd;
}

void write_all(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void record(int fd, const char* tag, const nlohmann::json& j) {
  write_all(fd, std::string(tag) + " " + j.dump() + "\n");
}

std::string read_file(const std::string& path, std::size_t max) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > max) s = s.substr(0, max) + "\n[... truncated]";
  return s;
}

/// Real seconds an experiment may take: the last step's time + 60 s + 3 s per step (the
/// host oracle's limit, tools/kernel-oracle).
long experiment_limit_s(const Plan& plan) {
  std::int64_t last = 0;
  for (const auto& st : plan.steps)
    if (!plan.until || st.t <= *plan.until) last = std::max(last, st.t);
  return static_cast<long>(last / 1000000000 + 60 + 3 * static_cast<std::int64_t>(plan.steps.size()));
}

/// Wait for `child` (reaping orphans meanwhile, we are PID 1); SIGKILL it after limit_s.
/// Its exit code, 128 + signal, or -1 when it was killed for time.
int wait_child(pid_t child, long limit_s) {
  timespec start{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  bool killed = false;
  for (;;) {
    int status = 0;
    pid_t w = waitpid(-1, &status, WNOHANG);
    if (w == child) {
      if (killed) return -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (w > 0) continue;  // an orphan (a holder whose parent died)
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!killed && now.tv_sec - start.tv_sec > limit_s) {
      kill(child, SIGKILL);
      killed = true;
    }
    timespec nap{0, 5000000};
    nanosleep(&nap, nullptr);
  }
}

/// One experiment in a forked child that unshare(CLONE_NEWNET)s: {"id","rc","result","stderr"}.
nlohmann::json guest_experiment(const nlohmann::json& exp, std::size_t k) {
  nlohmann::json rec;
  rec["id"] = exp.is_object() && exp.contains("id") ? exp["id"] : nlohmann::json(k);
  Plan plan;
  try {
    if (!exp.is_object() || !exp.contains("plan")) throw PlanError("expected {\"id\", \"plan\"}");
    plan = plan_from_json(exp["plan"]);
  } catch (const std::exception& ex) {
    rec["rc"] = 2;
    rec["result"] = nullptr;
    rec["stderr"] = std::string(kBatch) + ": $.experiments[" + std::to_string(k) + "]: " + ex.what();
    return rec;
  }
  const std::string out = "/tmp/replay.out", err = "/tmp/replay.err";
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o >= 0) dup2(o, 1);
    if (e >= 0) dup2(e, 2);
    if (unshare(CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", std::strerror(errno));
      _exit(1);
    }
    int rc = replay_main(plan);
    std::fflush(nullptr);
    _exit(rc);
  }
  int rc = pid < 0 ? 1 : wait_child(pid, experiment_limit_s(plan));
  std::string err_text = pid < 0 ? std::string("fork: ") + std::strerror(errno) : read_file(err, kStderrMax);
  if (rc == -1) {
    rc = 1;
    err_text += "portsim-replay: timed out after " + std::to_string(experiment_limit_s(plan)) + " s (killed)\n";
  }
  rec["rc"] = rc;
  rec["result"] = nullptr;
  if (rc == 0) {
    try {
      rec["result"] = nlohmann::json::parse(read_file(out, SIZE_MAX));
    } catch (const std::exception&) {
      rec["rc"] = 1;
      err_text += "portsim-replay: the result is not JSON\n";
    }
  }
  rec["stderr"] = err_text;
  return rec;
}

void guest_run(int rec_fd) {
  utsname u{};
  uname(&u);
  record(rec_fd, "@@PORTSIM-KERNEL", {{"release", u.release}, {"version", u.version}});
  nlohmann::json batch;
  std::string error;
  try {
    std::ifstream in(kBatch);
    if (!in) throw PlanError(std::string(kBatch) + ": cannot read");
    std::stringstream text;
    text << in.rdbuf();
    batch = nlohmann::json::parse(text.str());
    if (!batch.is_object() || !batch.contains("experiments") || !batch["experiments"].is_array())
      throw PlanError(std::string(kBatch) + ": expected {\"experiments\": [...]}");
  } catch (const std::exception& ex) {
    record(rec_fd, "@@PORTSIM-END", {{"experiments", 0}, {"error", ex.what()}});
    return;
  }
  setenv("PROBE_HOST_NETNS", netns_id().c_str(), 1);  // every experiment must leave this one
  std::size_t n = 0;
  for (const auto& exp : batch["experiments"]) record(rec_fd, "@@PORTSIM", guest_experiment(exp, n++));
  record(rec_fd, "@@PORTSIM-END", {{"experiments", n}});
}

}  // namespace

void guest_main() {
  guest_mount();
  guest_console();
  int rec_fd = 1;
  try {
    rtnl_link_up("lo");
    rec_fd = guest_records_open();
    guest_run(rec_fd);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "portsim-replay (init): %s\n", ex.what());
    record(rec_fd, "@@PORTSIM-END", {{"experiments", 0}, {"error", ex.what()}});
  }
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();  // PID 1 must not exit (the kernel would panic)
}

}  // namespace portsim_replay
