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

// kernel_override (--kernel): every machine runs this kernel profile, whatever the file says.
LoadResult load_scenario_file(const std::string& path, const std::string& kernel_override = {});
LoadResult load_scenario_text(const std::string& text, const std::string& file_label,
                              const std::string& kernel_override = {});

}  // namespace portsim::scenario
