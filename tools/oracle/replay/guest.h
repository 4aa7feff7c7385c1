// portsim-replay: guest mode, the /init of a throw-away VM (issue 13 contract).
#pragma once

namespace portsim_replay {

/// As PID 1: mount proc, sysfs, devtmpfs; fds 0-2 on /dev/console; lo up; run every experiment
/// of /batch.json in a forked child in a fresh network namespace; one "@@PORTSIM {...}" record
/// per experiment on /dev/ttyS1, then "@@PORTSIM-END {...}"; sync; power off. Never returns.
[[noreturn]] void guest_main();

}  // namespace portsim_replay
