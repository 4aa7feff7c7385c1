// JSON (comments allowed) → Scenario. Bad input becomes one Diag line: file, JSON path, what
// was expected and what was found. Nothing here throws to the caller.
#pragma once
#include <optional>
#include <string>

#include "portsim/scenario/scenario.h"

namespace portsim::scenario {

struct Diag {
  std::string message;  // "scenarios/x.json: $.timeline[3].to: expected \"addr:port\", got \"x\""
};

struct LoadResult {
  std::optional<Scenario> scenario;
  std::optional<Diag> error;
};

// What one scenario may ask for (README "Limits"): checked at load, so `check` rejects what
// `run` could not finish; --no-limits lifts them (Limits::none()).
struct Limits {
  uint64_t machines = 1024;           // machines, and network namespaces over all machines
  uint64_t sockets = 10'000'000;      // sockets the timeline and the pools create
  uint64_t calls = 100'000'000;       // timeline calls, repetitions included
  uint64_t events = 1'000'000'000;    // calls plus workload arrivals (each a connection or request)
  uint64_t memory = 0;                // bytes the run may need (estimate); 0: half the machine's RAM
  static Limits none() { return {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}; }
};

// The memory a run of `sc` needs at least, in bytes (tables per machine and namespace, sockets).
uint64_t estimate_memory(const Scenario& sc);
// Repeated creating calls whose "{i}" names no other call can name (conservatively, by their
// literal prefixes): true at their index. The lifetime check skips them; a quiet run keeps no
// name index for their sockets.
std::vector<bool> unreferenced_fresh_calls(const Scenario& sc);

constexpr size_t kMaxScenarioBytes = 64u << 20;  // a scenario file is at most 64 MiB
constexpr int kMaxJsonDepth = 64;                // nesting levels of arrays and objects

// Reads a whole scenario file; false with "FILE: cannot open the scenario file: <OS error>"
// (a directory: "Is a directory") or a too-large file in `error`.
bool read_scenario_file(const std::string& path, std::string& text, std::string& error);

// kernel_override (--kernel): every machine runs this kernel profile, whatever the file says.
LoadResult load_scenario_file(const std::string& path, const Limits& limits = {}, const std::string& kernel_override = {});
LoadResult load_scenario_text(const std::string& text, const std::string& file_label, const Limits& limits = {},
                              const std::string& kernel_override = {});

// `s` fit for a one-line message: bytes that are not valid UTF-8, control characters and DEL
// become \xNN; longer than `max` bytes, it is cut with "...".
std::string printable(std::string_view s, size_t max = 2000);

}  // namespace portsim::scenario
