# Exact oracle (issue 13, tools/oracle/exact.py): portsim given a real kernel's net_secret,
# jiffies, table_perturb cells and random draws must pick every port that kernel picked.
#   vm-fixtures.exact      no VM: the frozen runs tests/live/vm/exact-<kernel>.json (Debian
#                          5.10 / 6.1 / 6.12 guests, package named in each) replayed through
#                          the model; every connect() must match (label vm-fixtures: normal suite)
#   vm-fixtures.exact-mutated  the check can fail: one observed port changed must be reported
#   oracle-vm-exact.<k>    with qemu: boot the kernel, run the exact scenarios, compare
#                          (label oracle-vm-exact; excluded by -LE oracle like the other VM labels)
# The exact probe's file readers (kcore.cc) on synthetic files, in the unit-test binary.
target_sources(portsim_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests/exact/kcore_test.cc
                                     ${PROJECT_SOURCE_DIR}/tools/oracle/replay/kcore.cc)
target_include_directories(portsim_tests PRIVATE ${PROJECT_SOURCE_DIR}/tools/oracle/replay)
set(_ex_python /usr/bin/python3)
if(NOT EXISTS ${_ex_python})
  set(_ex_python python3)
endif()
file(GLOB _ex_fx CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/tests/live/vm/exact-*.json")
if(_ex_fx)
  add_test(NAME vm-fixtures.exact
           COMMAND ${_ex_python} ${PROJECT_SOURCE_DIR}/tools/oracle/exact.py fixture ${_ex_fx}
                   --portsim $<TARGET_FILE:portsim>)
  set_tests_properties(vm-fixtures.exact PROPERTIES LABELS vm-fixtures TIMEOUT 300)
  add_test(NAME vm-fixtures.exact-mutated
           COMMAND ${_ex_python} ${PROJECT_SOURCE_DIR}/tests/exact/mutate_check.py
                   ${PROJECT_SOURCE_DIR}/tests/live/vm/exact-6.1.json $<TARGET_FILE:portsim>)
  set_tests_properties(vm-fixtures.exact-mutated PROPERTIES LABELS vm-fixtures TIMEOUT 120)
  # exact-mono-*.json (executor with "mono" per call): the guest's clock decides the 0.5-s
  # TIME_WAIT verdict; moving that connect across a second boundary must be reported.
  if(EXISTS ${PROJECT_SOURCE_DIR}/tests/live/vm/exact-mono-5.10.json)
    add_test(NAME vm-fixtures.exact-mono-mutated
             COMMAND ${_ex_python} ${PROJECT_SOURCE_DIR}/tests/exact/mutate_check.py
                     ${PROJECT_SOURCE_DIR}/tests/live/vm/exact-mono-5.10.json $<TARGET_FILE:portsim> --mono)
    set_tests_properties(vm-fixtures.exact-mono-mutated PROPERTIES LABELS vm-fixtures TIMEOUT 120)
  endif()
endif()
# The scenarios of the exact VM runs: connect() autobind in a 10-port range (IPv4, IPv6), three
# destinations, the default range with three destinations, and TIME_WAIT reuse 0.5 / 1.2 s after
# the last timestamp (the seconds granularity of 4.19-6.13), and IP_LOCAL_PORT_RANGE's step-1
# walk (6.8+; ENOPROTOOPT before 6.3).
set(_ex_scenarios ${PROJECT_SOURCE_DIR}/scenarios/exhaust-one-destination.json
                  ${PROJECT_SOURCE_DIR}/scenarios/exhaust-one-destination-v6.json
                  ${PROJECT_SOURCE_DIR}/scenarios/three-destinations.json
                  ${PROJECT_SOURCE_DIR}/tests/exact/wide-three-destinations.json
                  ${PROJECT_SOURCE_DIR}/tests/exact/tw-reuse-new-second.json
                  ${PROJECT_SOURCE_DIR}/tests/exact/iplpr-step1.json)
# The two scenarios of tests/exact run in the normal suite too, with their expectations.
foreach(_s wide-three-destinations tw-reuse-new-second iplpr-step1)
  add_test(NAME scenario.exact.${_s} COMMAND portsim run --quiet ${PROJECT_SOURCE_DIR}/tests/exact/${_s}.json)
endforeach()
foreach(_k 5.10 6.1 6.12)
  add_test(NAME oracle-vm-exact.${_k}
           COMMAND ${_ex_python} ${PROJECT_SOURCE_DIR}/tools/kernel-oracle --kernel ${_k} --exact --runs 3
                   --portsim $<TARGET_FILE:portsim> --replay $<TARGET_FILE:portsim-replay>
                   --exact-fixture ${CMAKE_BINARY_DIR}/oracle-vm/exact-${_k}.json ${_ex_scenarios}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(oracle-vm-exact.${_k} PROPERTIES LABELS oracle-vm-exact TIMEOUT 600
                       RESOURCE_LOCK portsim-vm
                       SKIP_REGULAR_EXPRESSION "not found: install it with tools/install-deps.sh --vm")
endforeach()
