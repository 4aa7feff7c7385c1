// An output file that is either complete or absent: a regular file is written as PATH.tmp and
// renamed into place on commit(); "-" is stdout, and an existing non-regular file (a FIFO, a
// terminal, /dev/stdout) is written in place — never replaced by a rename.
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
  bool commit();                        // flush, close, rename into place; false on an I/O error
  void abandon();                       // close; remove the temporary file if there is one

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  bool owned_ = false;  // we opened f_ (not stdout)
};

}  // namespace portsim
