# Prints where the reference is and how many warnings Doxygen wrote (run by the docs target).
#   WARNINGS  Doxygen's WARN_LOGFILE;  INDEX  the generated html/index.html
set(count 0)
if(EXISTS ${WARNINGS})
  file(STRINGS ${WARNINGS} lines REGEX "warning:")
  list(LENGTH lines count)
endif()
message(STATUS "API reference: ${INDEX}")
if(count EQUAL 0)
  message(STATUS "Doxygen: no warnings")
else()
  message(STATUS "Doxygen: ${count} warnings, listed in ${WARNINGS}")
endif()
