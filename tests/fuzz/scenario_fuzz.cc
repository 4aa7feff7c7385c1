// libFuzzer target: any bytes as a scenario file → load (parse, validate, limits) and, when it
// loads, a bounded run with a full trace (written to /dev/null). Whatever the input, portsim
// must neither crash nor trip a sanitizer: bad input is a Diag line, never an abort.
// Built with clang (-fsanitize=fuzzer,address,undefined) when PORTSIM_FUZZ is on; otherwise
// fuzz_replay.cc supplies a main() that runs given files once (the seed corpus as a test).
#include <cstddef>
#include <cstdint>
#include <string>

#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace portsim::scenario;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Limits lim;  // small worlds: every execution stays fast, none is refused for memory
  lim.machines = 4;
  lim.sockets = 2000;
  lim.calls = 2000;
  lim.events = 5000;
  lim.memory = 256u << 20;
  const LoadResult lr = load_scenario_text(text, "fuzz.json", lim);
  if (!lr.scenario) return 0;
  RunOptions ro;
  ro.trace_path = "/dev/null";
  ro.max_events = 200'000;
  Runner runner(*lr.scenario, ro);
  (void)runner.run();
  return 0;
}
