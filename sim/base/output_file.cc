#include "portsim/base/output_file.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace portsim {

namespace {

// The temporary files a signal handler must remove: fixed storage, lock-free, so the handler
// only reads (async-signal-safe). A slot is claimed, filled, then published.
struct TmpSlot {
  std::atomic<bool> claimed{false}, live{false};
  char path[4096];
};
TmpSlot g_tmp[32];

int register_tmp(const std::string& p) {
  if (p.size() >= sizeof(g_tmp[0].path)) return -1;
  for (int i = 0; i < int(std::size(g_tmp)); ++i) {
    bool expected = false;
    if (!g_tmp[i].claimed.compare_exchange_strong(expected, true)) continue;
    std::memcpy(g_tmp[i].path, p.c_str(), p.size() + 1);
    g_tmp[i].live.store(true);
    return i;
  }
  return -1;  // more than 32 at once: that one is not cleaned up on a signal
}

void unregister_tmp(int& slot) {
  if (slot < 0) return;
  g_tmp[slot].live.store(false);
  g_tmp[slot].claimed.store(false);
  slot = -1;
}

void write_str(const char* s) { (void)!::write(2, s, std::strlen(s)); }

extern "C" void on_fatal_signal(int sig) {
  for (auto& s : g_tmp)
    if (s.live.load()) ::unlink(s.path);
  write_str(sig == SIGINT ? "portsim: interrupted (SIGINT)\n"
            : sig == SIGTERM ? "portsim: terminated (SIGTERM)\n"
            : sig == SIGHUP ? "portsim: hung up (SIGHUP)\n" : "");
  ::_exit(128 + sig);
}

}  // namespace

void install_signal_cleanup() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;  // nohup, `trap '' PIPE`
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
  ::signal(SIGXFSZ, SIG_IGN);
}

bool OutputFile::open(const std::string& path) {
  abandon();
  path_ = path;
  tmp_.clear();
  err_ = 0;
  if (path == "-") {
    f_ = stdout;
    owned_ = false;
    return true;
  }
  struct stat st {};
  const bool special = ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
  if (!special) tmp_ = path + ".tmp";
  f_ = std::fopen(special ? path.c_str() : tmp_.c_str(), "w");
  if (!f_) err_ = errno;
  owned_ = f_ != nullptr;
  if (f_ && !special) {
    slot_ = register_tmp(tmp_);
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  }
  return f_ != nullptr;
}

void OutputFile::write(const char* data, size_t n) {
  if (!f_ || err_) return;
  if (std::fwrite(data, 1, n, f_) != n) err_ = errno ? errno : EIO;
}

bool OutputFile::commit() {
  if (!f_) return false;
  bool ok = err_ == 0 && !std::ferror(f_);
  if (owned_) {
    if (std::fclose(f_) != 0 && ok) {
      ok = false;
      err_ = errno;
    }
  } else if (std::fflush(f_) != 0 && ok) {
    ok = false;
    err_ = errno;
  }
  if (!ok && !err_) err_ = EIO;
  f_ = nullptr;
  if (ok && !tmp_.empty() && std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    ok = false;
    err_ = errno;
  }
  if (!ok && !tmp_.empty()) std::remove(tmp_.c_str());
  unregister_tmp(slot_);
  tmp_.clear();
  return ok;
}

void OutputFile::abandon() {
  if (!f_) return;
  if (owned_) std::fclose(f_);
  f_ = nullptr;
  if (!tmp_.empty()) std::remove(tmp_.c_str());
  unregister_tmp(slot_);
  tmp_.clear();
}

}  // namespace portsim
