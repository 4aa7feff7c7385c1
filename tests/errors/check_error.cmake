# Runs portsim on a bad scenario: exit code must be 2 and stderr exactly the .err file's line.
# MODE=check runs `portsim check` instead of `portsim run` (both must reject the same way).
if(MODE STREQUAL "check")
  set(cmd ${PORTSIM} check ${SCENARIO})
else()
  set(cmd ${PORTSIM} run ${SCENARIO} --trace ${SCENARIO}.trace.jsonl)
endif()
execute_process(COMMAND ${cmd}
                WORKING_DIRECTORY ${WORKDIR}
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
file(READ ${EXPECTED} want)
string(STRIP "${want}" want)
string(STRIP "${err}" err)
string(REPLACE "${WORKDIR}/" "" err "${err}")
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "exit code ${rc}, expected 2; stderr: ${err}")
endif()
if(NOT err STREQUAL want)
  message(FATAL_ERROR "stderr:\n${err}\nexpected:\n${want}")
endif()
if(EXISTS ${SCENARIO}.trace.jsonl OR EXISTS ${SCENARIO}.trace.jsonl.tmp)
  message(FATAL_ERROR "a trace file was left behind")
endif()
