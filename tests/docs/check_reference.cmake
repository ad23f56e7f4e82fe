# Builds the API reference (the `docs` target) and checks it (cmake -P; run by ctest as
# test_docs_reference_links): Doxygen warns of nothing, and every local link of the HTML
# resolves to a file that exists, and to an id of that file for page.html#anchor
# (check_links.py).
#
#   cmake -DBINARY_DIR=<build> -DPYTHON=/usr/bin/python3 -P tests/docs/check_reference.cmake
cmake_minimum_required(VERSION 3.20)
foreach(variable BINARY_DIR PYTHON)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "check_reference.cmake: -D${variable}=... is required")
  endif()
endforeach()
set(html ${BINARY_DIR}/docs/html)
set(warnings ${BINARY_DIR}/docs/warnings.txt)

execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} --target docs RESULT_VARIABLE built)
if(NOT built EQUAL 0)
  message(FATAL_ERROR "the docs target failed (${built})")
endif()
if(NOT EXISTS ${html}/index.html)
  message(FATAL_ERROR "the docs target wrote no ${html}/index.html (is doxygen installed?)")
endif()

set(count 0)
if(EXISTS ${warnings})
  file(STRINGS ${warnings} lines REGEX "warning:")
  list(LENGTH lines count)
endif()

execute_process(COMMAND ${PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_links.py ${html} RESULT_VARIABLE links)

if(count GREATER 0)
  list(JOIN lines "\n" listed)
  message(FATAL_ERROR "Doxygen wrote ${count} warnings (${warnings}):\n${listed}")
endif()
if(NOT links EQUAL 0)
  message(FATAL_ERROR "the API reference has broken local links (listed above)")
endif()
