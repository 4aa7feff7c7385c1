// SysResult<T>: a modelled syscall's outcome — a value, or an errno (the observable behaviour).
// g++ 12 has no std::expected under C++20, hence this small type (LLVM ErrorOr shape).
#pragma once
#include <cassert>
#include <utility>

namespace portsim {

template <typename T>
class [[nodiscard]] SysResult {
 public:
  SysResult(T value) : value_(std::move(value)), err_(0) {}  // NOLINT: implicit on purpose
  static SysResult error(int err) { return SysResult(err, Tag{}); }

  explicit operator bool() const { return err_ == 0; }
  int err() const { return err_; }
  const T& value() const { assert(err_ == 0); return value_; }

 private:
  struct Tag {};
  SysResult(int err, Tag) : value_(), err_(err) {}
  T value_;
  int err_;
};

}  // namespace portsim
