// portsim-replay: performs a portsim scenario's calls with real sockets (the live side of
// tools/kernel-oracle). README.md in this directory: plan format, output, exit codes.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "errors.h"
#include "guest.h"
#include "plan.h"
#include "replay.h"

namespace {

constexpr const char* kUsage =
    "usage: portsim-replay run PLAN.json      (PLAN.json '-' = stdin)\n"
    "       portsim-replay --help\n"
    "\n"
    "Performs the calls of a replay plan (python3 tools/oracle/scenario.py plan SCENARIO) with real\n"
    "sockets and prints {\"kernel\", \"calls\", \"notes\"} as one JSON line on stdout. It must run in a\n"
    "fresh network namespace (unshare -n portsim-replay run PLAN.json): it refuses (exit 3) in a\n"
    "namespace that has interfaces besides lo or is $PROBE_HOST_NETNS. Every sysctl is written\n"
    "only inside namespaces it created.\n"
    "\n"
    "Run as PID 1 without arguments (the /init of a VM) it is the guest executor: it runs every\n"
    "experiment of /batch.json, each in a fresh namespace, writes @@PORTSIM records to /dev/ttyS1\n"
    "and powers off.\n"
    "\n"
    "Exit: 0 done; 1 a system call of the replay failed; 2 usage or a bad plan file; 3 not in a\n"
    "fresh private network namespace; 4 the plan cannot be performed here (reason on stderr).\n";

/// The plan from `path` ("-" = stdin).
portsim_replay::Plan load(const std::string& path) {
  if (path != "-") return portsim_replay::plan_load(path);
  std::stringstream text;
  text << std::cin.rdbuf();
  try {
    return portsim_replay::plan_from_json(nlohmann::json::parse(text.str()));
  } catch (const nlohmann::json::parse_error& ex) {
    throw portsim_replay::PlanError("-: invalid JSON (byte " + std::to_string(ex.byte) + ")");
  } catch (const portsim_replay::PlanError& ex) {
    throw portsim_replay::PlanError(std::string("-: ") + ex.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Guest mode only as the kernel starts init: PID 1 and no arguments. `portsim-replay run PLAN`
  // as PID 1 of a PID namespace on a host stays host mode (no mounts, no power-off).
  if (getpid() == 1 && argc == 1) portsim_replay::guest_main();
  if (argc == 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc != 3 || std::strcmp(argv[1], "run") != 0) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  portsim_replay::Plan plan;
  try {
    plan = load(argv[2]);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "portsim-replay: %s\n", ex.what());
    return 2;
  }
  return portsim_replay::replay_main(plan);
}
