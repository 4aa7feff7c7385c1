// portsim-replay: the three ways a replay stops early (tools/oracle/replay/README.md, "Exit").
#pragma once

#include <stdexcept>
#include <string>

namespace portsim_replay {

/// The plan asks for something this kernel / this executor cannot perform (exit 4).
struct Unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The plan is consistent JSON but names something that does not exist (exit 4, like
/// live.py's BadInput: "close: socket x does not exist").
struct BadStep : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The plan file is unreadable or not a plan (exit 2: bad input, one line).
struct PlanError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A system call the replay itself needs failed (exit 1).
struct SysError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// "what: strerror(errno)" as a SysError, for the replay's own system calls.
[[noreturn]] void throw_errno(const std::string& what, int err);

}  // namespace portsim_replay
