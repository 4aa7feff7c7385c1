#include "portsim/base/output_file.h"

#include <sys/stat.h>

namespace portsim {

bool OutputFile::open(const std::string& path) {
  abandon();
  path_ = path;
  tmp_.clear();
  if (path == "-") {
    f_ = stdout;
    owned_ = false;
    return true;
  }
  struct stat st {};
  const bool special = ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
  if (!special) tmp_ = path + ".tmp";
  f_ = std::fopen(special ? path.c_str() : tmp_.c_str(), "w");
  owned_ = f_ != nullptr;
  if (f_ && !special) std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  return f_ != nullptr;
}

bool OutputFile::commit() {
  if (!f_) return false;
  bool ok;
  if (owned_) {
    ok = std::fclose(f_) == 0;
  } else {
    ok = std::fflush(f_) == 0;
  }
  f_ = nullptr;
  if (ok && !tmp_.empty()) ok = std::rename(tmp_.c_str(), path_.c_str()) == 0;
  if (!ok && !tmp_.empty()) std::remove(tmp_.c_str());
  tmp_.clear();
  return ok;
}

void OutputFile::abandon() {
  if (!f_) return;
  if (owned_) std::fclose(f_);
  f_ = nullptr;
  if (!tmp_.empty()) std::remove(tmp_.c_str());
  tmp_.clear();
}

}  // namespace portsim
