# Keeps a program's --help text in a docs page identical to what the program prints (cmake -P;
# run by ctest). The block follows a marker line in the page:
#
#   <!-- help: copy_task -->
#   ```text
#   $ build/examples/copy_task --help
#   ...the output...
#   ```
#
#   cmake -DPROGRAM=<binary> -DNAME=copy_task -DPAGE=<snap>/docs/copy-task.md -P tests/docs/check_help.cmake   # check
#   ... -DUPDATE=ON ...   rewrites the block from the program's output instead
cmake_minimum_required(VERSION 3.20)
foreach(variable PROGRAM NAME PAGE)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "check_help.cmake: -D${variable}=... is required")
  endif()
endforeach()

execute_process(COMMAND ${PROGRAM} --help OUTPUT_VARIABLE help RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "check_help.cmake: ${PROGRAM} --help exited with ${status}")
endif()
set(expected "$ build/examples/${NAME} --help\n${help}")

file(READ ${PAGE} page)
set(marker "<!-- help: ${NAME} -->\n```text\n")
string(FIND "${page}" "${marker}" start)
if(start EQUAL -1)
  message(FATAL_ERROR "check_help.cmake: ${PAGE} has no '<!-- help: ${NAME} -->' marker followed by a ```text block")
endif()
string(LENGTH "${marker}" marker_length)
math(EXPR body_start "${start} + ${marker_length}")
string(SUBSTRING "${page}" ${body_start} -1 rest)
string(FIND "${rest}" "```\n" body_length)
if(body_length EQUAL -1)
  message(FATAL_ERROR "check_help.cmake: the help block of ${NAME} in ${PAGE} is not closed")
endif()
string(SUBSTRING "${rest}" 0 ${body_length} shown)

if(UPDATE)
  string(SUBSTRING "${page}" 0 ${body_start} head)
  string(SUBSTRING "${rest}" ${body_length} -1 tail)
  file(WRITE ${PAGE} "${head}${expected}${tail}")
  message(STATUS "check_help.cmake: ${PAGE}: the help of ${NAME} rewritten")
elseif(NOT shown STREQUAL expected)
  message(FATAL_ERROR "check_help.cmake: ${PAGE} shows another --help of ${NAME} than the program prints; "
                      "rewrite it with `cmake --build build --target docs_help`.\nThe program prints:\n${expected}")
else()
  message(STATUS "check_help.cmake: ${PAGE}: the help of ${NAME} is the program's")
endif()
