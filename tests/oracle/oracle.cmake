# Kernel-oracle tests: one ctest per scenario marked oracle-checkable, i.e. whose file contains
# "checkable": true (the "oracle" block read by tools/kernel-oracle). Each runs the scenario on
# the live kernel in throw-away network namespaces (needs root and unshare -n) and diffs it
# against portsim. Label: oracle.  Run: ctest --test-dir build -L '^oracle$' (-L oracle also selects the VM labels)
# Include from tests/CMakeLists.txt:  include(${PROJECT_SOURCE_DIR}/tests/oracle/oracle.cmake)
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  set(_oracle_python "${Python3_EXECUTABLE}")
else()
  set(_oracle_python python3)
endif()
file(GLOB _oracle_scenarios CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/scenarios/*.json")
list(SORT _oracle_scenarios)
foreach(_sc IN LISTS _oracle_scenarios)
  file(READ "${_sc}" _txt)
  string(REGEX MATCH "\"checkable\"[ \t\r\n]*:[ \t\r\n]*true" _checkable "${_txt}")
  if(_checkable)
    get_filename_component(_name "${_sc}" NAME_WE)
    add_test(NAME oracle.${_name}
             COMMAND ${_oracle_python} ${PROJECT_SOURCE_DIR}/tools/kernel-oracle ${_sc}
                     --portsim $<TARGET_FILE:portsim>
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    # exit 2 = namespaces not permitted / not performable here: reported as skipped, not failed
    set_tests_properties(oracle.${_name} PROPERTIES LABELS oracle SKIP_RETURN_CODE 2 TIMEOUT 600
                         RESOURCE_LOCK kernel-oracle)
  endif()
endforeach()
