# ctest check of a refused command line (cmake -P): PROGRAM run with ARGS (one string, split as a
# shell would) must exit with status 2 and print EXPECTED (plain text) on stderr, before it trains.
#
#   cmake -DPROGRAM=<binary> "-DARGS=--layers 0" "-DEXPECTED=--layers: expected" -P check_refusal.cmake
cmake_minimum_required(VERSION 3.20)
foreach(variable PROGRAM ARGS EXPECTED)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "check_refusal.cmake: -D${variable}=... is required")
  endif()
endforeach()
separate_arguments(arguments UNIX_COMMAND "${ARGS}")
execute_process(COMMAND ${PROGRAM} ${arguments} RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE errors)
string(FIND "${errors}" "${EXPECTED}" found)
if(NOT status EQUAL 2 OR found EQUAL -1 OR NOT output STREQUAL "")
  message(FATAL_ERROR "check_refusal.cmake: ${PROGRAM} ${ARGS}\n  expected exit status 2, no output and '${EXPECTED}' "
                      "on stderr;\n  got status ${status}, stderr: ${errors}  stdout: ${output}")
endif()
message(STATUS "refused as expected: ${errors}")
