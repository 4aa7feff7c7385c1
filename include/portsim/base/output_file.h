// An output file that is either complete or absent: a regular file is written as PATH.tmp and
// renamed into place on commit(); "-" is stdout, and an existing non-regular file (a FIFO, a
// terminal, /dev/stdout, /dev/full) is written in place — never replaced by a rename. A write
// error (ENOSPC, EFBIG under `ulimit -f`, EPIPE) makes commit() fail with the OS error, and the
// temporary file is removed; so is it when SIGINT, SIGTERM, SIGHUP or SIGPIPE end the process
// (install_signal_cleanup()).
#pragma once
#include <cstdio>
#include <string>

namespace portsim {

class OutputFile {
 public:
  OutputFile() = default;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile() { abandon(); }

  bool open(const std::string& path);  // false (and nothing created) when it cannot be opened
  std::FILE* get() const { return f_; }
  // Writes n bytes; after the first failure nothing more is written and commit() fails.
  void write(const char* data, size_t n);
  bool commit();                        // flush, close, rename into place; false on an I/O error
  void abandon();                       // close; remove the temporary file if there is one
  int error() const { return err_; }    // errno of the first failure (0: none)

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  bool owned_ = false;  // we opened f_ (not stdout)
  int err_ = 0;
  int slot_ = -1;       // in the signal handler's list of temporary files
};

// SIGINT, SIGTERM and SIGHUP (and SIGPIPE unless ignored) remove every open temporary output
// file and exit 128 + the signal number (130, 143, 129, 141); SIGXFSZ is ignored, so exceeding
// `ulimit -f` is a write error (EFBIG) rather than a core dump. A signal that is ignored when
// the program starts stays ignored.
void install_signal_cleanup();

}  // namespace portsim
