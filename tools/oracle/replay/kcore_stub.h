// portsim-replay: stand-in for vm-exact's kcore.h (issue 13 contract) while that file does not
// exist: the same interface, never available. replay.cc includes kcore.h when it is present.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace portsim_replay::kcore {

struct ExactProbe {
  bool open(std::string* err) {
    if (err) *err = "exact mode is not built in (tools/oracle/replay/kcore.cc is missing)";
    return false;
  }
  nlohmann::json secret() { return nlohmann::json::object(); }
  void before() {}
  nlohmann::json after() { return nlohmann::json::object(); }
};

}  // namespace portsim_replay::kcore
