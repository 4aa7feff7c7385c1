# VM oracle tests (issue 13): the oracle-checkable scenarios on Debian's 5.10, 6.1 and 6.12
# kernels, each booted in a throw-away qemu VM (tools/oracle/vm.py, tools/kernel-oracle
# --kernel X), portsim under the matching release's profile. Needs qemu-system-x86
# (tools/install-deps.sh --vm) and, on first use, the Debian archive (~60 MB per kernel, cached
# in $PORTSIM_VM_CACHE or ~/.cache/portsim/vm).
#   ctest --test-dir build -L oracle-vm-smoke   one small batch per kernel (< 2 min, warm cache)
#   ctest --test-dir build -L oracle-vm         every checkable scenario, 3 runs, one boot per kernel
# Both labels match `-LE oracle` (a regular expression), so tools/test.sh and .ci/run never run
# them. The kernels run one after the other (RESOURCE_LOCK portsim-vm: 2 cores). A machine
# without qemu reports them skipped (the oracle's one line names install-deps.sh --vm).
# The JSON of every comparison goes to build/oracle-vm/<kernel>/<scenario>.json:
# tests/oracle-vm/freeze.py turns it into the fixtures of tests/live/vm/.
set(_vm_python /usr/bin/python3)
if(NOT EXISTS ${_vm_python})
  set(_vm_python python3)
endif()
file(GLOB _vm_scenarios CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/scenarios/*.json")
list(SORT _vm_scenarios)
set(_vm_checkable "")
foreach(_sc IN LISTS _vm_scenarios)
  file(READ "${_sc}" _txt)
  string(REGEX MATCH "\"checkable\"[ \t\r\n]*:[ \t\r\n]*true" _checkable "${_txt}")
  if(_checkable)
    list(APPEND _vm_checkable ${_sc})
  endif()
endforeach()
# The smoke batch: connect() autobind over IPv4 and IPv6 (parity order, final errno), three
# destinations (the per-destination perturb cells), UDP autobind, a host's own IPv4 and IPv6
# addresses on a veth called at t = 0 (the executor's wait for links and non-tentative
# addresses); plus (both labels) the sysctl probe (tests/oracle-vm/sysctl_oracle.py: presence
# and accepted values per kernel).
set(_vm_smoke ${PROJECT_SOURCE_DIR}/scenarios/exhaust-one-destination.json
              ${PROJECT_SOURCE_DIR}/scenarios/exhaust-one-destination-v6.json
              ${PROJECT_SOURCE_DIR}/scenarios/edge-one-host-addresses.json
              ${PROJECT_SOURCE_DIR}/scenarios/three-destinations.json
              ${PROJECT_SOURCE_DIR}/scenarios/udp-exhaust.json)
foreach(_k 5.10 6.1 6.12)
  add_test(NAME oracle-vm.${_k}
           COMMAND ${_vm_python} ${PROJECT_SOURCE_DIR}/tools/kernel-oracle --kernel ${_k} --runs 3
                   --portsim $<TARGET_FILE:portsim> --replay $<TARGET_FILE:portsim-replay>
                   --json-dir ${CMAKE_BINARY_DIR}/oracle-vm/${_k}
                   ${_vm_checkable}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(oracle-vm.${_k} PROPERTIES LABELS oracle-vm TIMEOUT 3600
                       RESOURCE_LOCK portsim-vm
                       SKIP_REGULAR_EXPRESSION "not found: install it with tools/install-deps.sh --vm")
  add_test(NAME oracle-vm-smoke.${_k}
           COMMAND ${_vm_python} ${PROJECT_SOURCE_DIR}/tools/kernel-oracle --kernel ${_k} --runs 2
                   --seeds 50 --portsim $<TARGET_FILE:portsim> --replay $<TARGET_FILE:portsim-replay>
                   ${_vm_smoke}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(oracle-vm-smoke.${_k} PROPERTIES LABELS oracle-vm-smoke TIMEOUT 300
                       RESOURCE_LOCK portsim-vm
                       SKIP_REGULAR_EXPRESSION "not found: install it with tools/install-deps.sh --vm")
  add_test(NAME oracle-vm-sysctls.${_k}
           COMMAND ${_vm_python} ${PROJECT_SOURCE_DIR}/tests/oracle-vm/sysctl_oracle.py --kernel ${_k}
                   --portsim $<TARGET_FILE:portsim> --replay $<TARGET_FILE:portsim-replay>)
  set_tests_properties(oracle-vm-sysctls.${_k} PROPERTIES LABELS "oracle-vm;oracle-vm-smoke"
                       TIMEOUT 300 RESOURCE_LOCK portsim-vm
                       SKIP_REGULAR_EXPRESSION "not found: install it with tools/install-deps.sh --vm")
endforeach()
# The initramfs' /init: loads the bridge/veth modules, then execs portsim-replay (vm.py).
add_executable(portsim-vm-preinit ${PROJECT_SOURCE_DIR}/tools/oracle/vm_preinit.cc)
set_target_properties(portsim-vm-preinit PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
if(NOT PORTSIM_SANITIZE)
  target_link_options(portsim-vm-preinit PRIVATE -static)
endif()

# No VM: portsim's profiles against the frozen VM outputs (tests/live/vm/<kernel>/, with the
# exact Debian package in each file). Label vm-fixtures: part of the normal suite (tools/test.sh),
# not of the ASan pass (portsim under 20 seeds per scenario is slow there and adds nothing).
foreach(_k 5.10 6.1 6.12)
  file(GLOB _vm_fx CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/tests/live/vm/${_k}/*.json")
  if(_vm_fx)
    add_test(NAME vm-fixtures.${_k}
             COMMAND ${_vm_python} ${PROJECT_SOURCE_DIR}/tests/oracle-vm/fixtures.py check ${_k}
                     --portsim $<TARGET_FILE:portsim>)
    set_tests_properties(vm-fixtures.${_k} PROPERTIES LABELS vm-fixtures TIMEOUT 600)
  endif()
  if(EXISTS ${PROJECT_SOURCE_DIR}/tests/live/vm/${_k}/sysctl-presence.json)
    add_test(NAME vm-fixtures.sysctls.${_k}
             COMMAND ${_vm_python} ${PROJECT_SOURCE_DIR}/tests/oracle-vm/sysctl_oracle.py
                     --fixture ${PROJECT_SOURCE_DIR}/tests/live/vm/${_k}/sysctl-presence.json
                     --portsim $<TARGET_FILE:portsim>)
    set_tests_properties(vm-fixtures.sysctls.${_k} PROPERTIES LABELS vm-fixtures TIMEOUT 120)
  endif()
endforeach()
# The check can fail: one fixture with its final errno flipped must be reported (exit 1).
if(EXISTS ${PROJECT_SOURCE_DIR}/tests/live/vm/6.1/exhaust-one-destination.json)
  add_test(NAME vm-fixtures.mutated-setup
           COMMAND ${_vm_python} ${PROJECT_SOURCE_DIR}/tests/oracle-vm/fixtures.py mutate
                   ${PROJECT_SOURCE_DIR}/tests/live/vm/6.1/exhaust-one-destination.json
                   ${CMAKE_CURRENT_BINARY_DIR}/vm-fixtures-mutated)
  add_test(NAME vm-fixtures.mutated-fails
           COMMAND ${_vm_python} ${PROJECT_SOURCE_DIR}/tests/oracle-vm/fixtures.py check 6.1
                   --portsim $<TARGET_FILE:portsim> --fixdir ${CMAKE_CURRENT_BINARY_DIR}/vm-fixtures-mutated
                   --known ${PROJECT_SOURCE_DIR}/tests/live/vm/known-disagreements.json)
  set_tests_properties(vm-fixtures.mutated-setup PROPERTIES LABELS vm-fixtures FIXTURES_SETUP vm_mutated)
  set_tests_properties(vm-fixtures.mutated-fails PROPERTIES LABELS vm-fixtures FIXTURES_REQUIRED vm_mutated
                       PASS_REGULAR_EXPRESSION "FAIL exhaust-one-destination: portsim --kernel 6.1.192 disagrees")
endif()
