// Bad input: one line naming the file and the JSON path, with what was expected (exact text).
#include <catch2/catch.hpp>

#include "portsim/scenario/load.h"

using namespace portsim::scenario;

namespace {
std::string error_of(const std::string& text) {
  auto r = load_scenario_text(text, "x.json");
  return r.error ? r.error->message : "";
}
const std::string kMachines = R"("machines":[{"name":"h"}])";
}  // namespace

TEST_CASE("load: bad endpoints, ops and times are reported with their JSON path", "[load]") {
  CHECK(error_of("{" + kMachines + R"(,"timeline":[{"t":"0s","host":"h","op":"connect","sock":"c","to":"nowhere"}]})") ==
        "x.json: $.timeline[0].to: expected \"addr:port\" (e.g. \"10.0.0.2:80\" or \"[::1]:80\"), got \"nowhere\"");
  CHECK(error_of("{" + kMachines + R"(,"timeline":[{"t":"0s","host":"h","op":"conect","sock":"c"}]})") ==
        "x.json: $.timeline[0].op: unknown op 'conect', did you mean 'connect'? (ops: socket, setsockopt, bind, "
        "listen, connect, accept, close, shutdown, sysctl, send, recv)");
  CHECK(error_of("{" + kMachines + R"(,"timeline":[{"t":"1s","host":"h","op":"socket","sock":"a"},)" +
                 R"({"t":"0.5s","host":"h","op":"socket","sock":"b"}]})") ==
        "x.json: $.timeline[1].t: time 500ms is before the previous call's 1s");
  CHECK(error_of("{" + kMachines + R"(,"timeline":[{"t":"0s","op":"close","sock":"ghost"}]})") ==
        "x.json: $.timeline[0].sock: no socket named 'ghost' was created before this call");
}

TEST_CASE("load: sysctls are checked by name and by the kernel's own validation", "[load][sysctl]") {
  // net/ipv4/sysctl_net_ipv4.c ipv4_local_port_range(): high < low, or low below
  // ip_unprivileged_port_start (1024), is refused with EINVAL.
  CHECK(error_of(R"({"machines":[{"name":"h","sysctls":{"net.ipv4.ip_local_port_range":"40000 30000"}}],"timeline":[]})") ==
        "x.json: $.machines[0].sysctls.net.ipv4.ip_local_port_range: '40000 30000': high < low (the kernel answers EINVAL)");
  CHECK(error_of(R"({"machines":[{"name":"h","sysctls":{"net.ipv4.ip_local_port_range":"500 600"}}],"timeline":[]})") ==
        "x.json: $.machines[0].sysctls.net.ipv4.ip_local_port_range: '500 600': low 500 is below "
        "net.ipv4.ip_unprivileged_port_start 1024 (the kernel answers EINVAL)");
  // ...but lowering ip_unprivileged_port_start first makes it valid, as on the kernel.
  CHECK(error_of(R"({"machines":[{"name":"h","sysctls":{"net.ipv4.ip_unprivileged_port_start":"0",
                   "net.ipv4.ip_local_port_range":"500 600"}}],"timeline":[]})") == "");
  CHECK(error_of(R"({"machines":[{"name":"h","sysctls":{"net.ipv4.ip_local_port_rang":"1 2"}}],"timeline":[]})") ==
        "x.json: $.machines[0].sysctls.net.ipv4.ip_local_port_rang: unknown sysctl 'net.ipv4.ip_local_port_rang', "
        "did you mean 'net.ipv4.ip_local_port_range'?");
}

TEST_CASE("load: invalid JSON gives line and column", "[load]") {
  CHECK(error_of("{\n  \"machines\": [,]\n}").rfind("x.json:2:", 0) == 0);
}

TEST_CASE("load: unknown keys are rejected with a suggestion", "[load]") {
  CHECK(error_of(R"({"machines":[{"name":"h"}],"timeline":[],"sed":1})") ==
        "x.json: $.sed: unknown key 'sed', did you mean 'seed'?");
}

TEST_CASE("load: limits are checked at load, the memory estimate against its budget", "[load][limits]") {
  // Two machines, one namespace each: two 256 KiB bind-hash indexes and table_perturbs at least.
  const std::string two = R"({"machines":[{"name":"a"},{"name":"b"}],"timeline":[]})";
  auto r = load_scenario_text(two, "x.json");
  REQUIRE(r.scenario);
  CHECK(estimate_memory(*r.scenario) > 2 * 2 * 65536 * sizeof(uint32_t));
  Limits small;
  small.memory = 1 << 20;
  auto tight = load_scenario_text(two, "x.json", small);
  REQUIRE(tight.error);
  CHECK(tight.error->message.rfind("x.json: $: the run needs about ", 0) == 0);
  small.memory = 0;
  small.machines = 1;
  CHECK(load_scenario_text(two, "x.json", small).error->message ==
        "x.json: $.machines: 2 machines, more than the limit of 1 (--no-limits lifts it)");
  CHECK(load_scenario_text(two, "x.json", Limits::none()).scenario);
}

TEST_CASE("load: names of repeated calls are found by prefix and suffix", "[load][names]") {
  // "a1{i}" names a10, a11, a12; a repetition number has no leading zero (sock_name()).
  const std::string text = "{" + kMachines + R"(,"timeline":[
      {"t":"0s","host":"h","op":"socket","sock":"a1{i}","repeat":{"count":3}},
      {"t":"0s","host":"h","op":"socket","sock":"x{i}y","repeat":{"count":2}},
      {"t":"1s","op":"close","sock":"a12"},
      {"t":"1s","op":"close","sock":"x1y"}]})";
  CHECK(error_of(text) == "");
  CHECK(error_of("{" + kMachines + R"(,"timeline":[
      {"t":"0s","host":"h","op":"socket","sock":"x{i}y","repeat":{"count":2}},
      {"t":"1s","op":"close","sock":"x01y"}]})") == "x.json: $.timeline[1].sock: no socket named 'x01y' was created before this call");
  CHECK(error_of("{" + kMachines + R"(,"timeline":[
      {"t":"0s","host":"h","op":"socket","sock":"x{i}y","repeat":{"count":2}},
      {"t":"1s","op":"close","sock":"x2y"}]})") == "x.json: $.timeline[1].sock: no socket named 'x2y' was created before this call");
}

// Whatever `run` rejects, `check` rejects (issue 17): a socket name's life is followed in the
// engine's execution order (runner.cc run_call: calls by time, then insertion; repetition k + 1
// is scheduled when repetition k runs). Each rejected text below made `portsim check` say ok and
// `portsim run` exit 2 (or, for the missing "host", crash with SIGSEGV) before this check.
TEST_CASE("load: a socket name is used only while it exists, in execution order", "[load][names]") {
  const auto tl = [](const std::string& calls) { return "{" + kMachines + ",\"timeline\":[" + calls + "]}"; };
  // A second close (tests/errors/closed-socket.json).
  CHECK(error_of(tl(R"({"t":"0s","host":"h","op":"socket","sock":"a"},{"t":"1s","op":"close","sock":"a"},
                       {"t":"2s","op":"close","sock":"a"})")) ==
        "x.json: $.timeline[2]: socket 'a' does not exist at 2s (not created yet, or closed)");
  // More repetitions than the creating call made: c3 never exists.
  CHECK(error_of(tl(R"({"t":"0s","host":"h","op":"socket","sock":"c{i}","repeat":{"count":3,"every":"1s"}},
                       {"t":"0s","op":"close","sock":"c{i}","repeat":{"count":4,"every":"1s"}})")) ==
        "x.json: $.timeline[1]: socket 'c3' does not exist at 3s (not created yet, or closed)");
  // A name used before the repetition that creates it: c3 comes at 3s.
  CHECK(error_of(tl(R"({"t":"0s","host":"h","op":"socket","sock":"c{i}","repeat":{"count":5,"every":"1s"}},
                       {"t":"500ms","op":"close","sock":"c3"})")) ==
        "x.json: $.timeline[1]: socket 'c3' does not exist at 500ms (not created yet, or closed)");
  // Same instant: repetition 1 is scheduled when repetition 0 runs, after the close already queued.
  CHECK(error_of(tl(R"({"t":"0s","host":"h","op":"socket","sock":"c{i}","repeat":{"count":2}},
                       {"t":"0s","op":"close","sock":"c1"})")) ==
        "x.json: $.timeline[1]: socket 'c1' does not exist at 0s (not created yet, or closed)");
  // A creating call on a closed name makes a new socket: it needs "host".
  CHECK(error_of(tl(R"({"t":"0s","host":"h","op":"socket","sock":"a"},{"t":"1s","op":"close","sock":"a"},
                       {"t":"2s","op":"bind","sock":"a","addr":"127.0.0.1:0"})")) ==
        "x.json: $.timeline[2]: \"host\" is needed to create socket 'a' again at 2s (it was closed)");
  // What run accepts stays accepted: a new socket under a closed name, paired repetitions, a
  // close one repetition behind its socket, an accepted child closed later.
  CHECK(error_of(tl(R"({"t":"0s","host":"h","op":"socket","sock":"a"},{"t":"1s","op":"close","sock":"a"},
                       {"t":"2s","host":"h","op":"bind","sock":"a","addr":"127.0.0.1:0"},{"t":"3s","op":"close","sock":"a"})")) == "");
  CHECK(error_of(tl(R"({"t":"0s","host":"h","op":"socket","sock":"c{i}","repeat":{"count":3,"every":"1s"}},
                       {"t":"0s","op":"close","sock":"c{i}","repeat":{"count":3,"every":"1s"}})")) == "");
  CHECK(error_of(tl(R"({"t":"0s","host":"h","op":"socket","sock":"c{i}","repeat":{"count":3,"every":"1s"}},
                       {"t":"1s","op":"close","sock":"c{i}","repeat":{"count":3,"every":"1s"}})")) == "");
  CHECK(error_of(tl(R"({"t":"0s","host":"h","op":"bind","sock":"l","addr":"127.0.0.1:80"},{"t":"0s","op":"listen","sock":"l"},
                       {"t":"0s","host":"h","op":"connect","sock":"c","to":"127.0.0.1:80"},
                       {"t":"1s","op":"accept","sock":"l","as":"s"},{"t":"2s","op":"close","sock":"s"})")) == "");
}

TEST_CASE("load: messages escape bytes that are not UTF-8", "[load]") {
  CHECK(printable("ok \xc3\xa9 \xff\x01") == "ok \xc3\xa9 \\xFF\\x01");
  CHECK(printable(std::string(10, 'a'), 4) == "aaaa...");
}

// unreferenced_fresh_calls(): a repeated creating call is unreferenced unless another call's
// name could start with its literal prefix or be a "{i}" pattern its prefix starts with (the
// runner keeps no name index for the unreferenced ones in quiet runs).
TEST_CASE("unreferenced_fresh_calls: prefixes clash, distinct prefixes do not", "[load]") {
  const std::string text = R"({"name":"u","machines":[{"name":"h","addresses":["10.0.0.1/24"]}],
    "external":["10.0.0.2:80"],
    "timeline":[
      {"t":"0s","host":"h","op":"connect","sock":"d1c{i}","to":"10.0.0.2:80","repeat":{"count":2,"every":"0s"}},
      {"t":"0s","host":"h","op":"connect","sock":"d10c{i}","to":"10.0.0.2:80","repeat":{"count":2,"every":"0s"}},
      {"t":"0s","host":"h","op":"connect","sock":"a{i}","to":"10.0.0.2:80","repeat":{"count":2,"every":"0s"}},
      {"t":"0s","host":"h","op":"connect","sock":"ab{i}","to":"10.0.0.2:80","repeat":{"count":2,"every":"0s"}},
      {"t":"0s","host":"h","op":"connect","sock":"x{i}","to":"10.0.0.2:80","repeat":{"count":2,"every":"0s"}},
      {"t":"1s","host":"h","op":"close","sock":"x1"}]})";
  auto r = load_scenario_text(text, "u.json");
  REQUIRE(r.scenario);
  const std::vector<bool> got = unreferenced_fresh_calls(*r.scenario);
  // d1c / d10c: neither literal starts with the other. a / ab: "ab…" starts with "a", and "a{i}"
  // is a pattern "ab" starts with. x{i}: the close names "x1".
  CHECK(got == std::vector<bool>{true, true, false, false, false, false});
}
