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

LoadResult load_scenario_file(const std::string& path);
LoadResult load_scenario_text(const std::string& text, const std::string& file_label);

}  // namespace portsim::scenario
