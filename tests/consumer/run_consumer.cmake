# Builds and runs one consumer project as a user would (cmake -P; driven by ctest).
#   CONSUMER         add_subdirectory or find_package: the folder beside this script
#   SNAP_SOURCE_DIR  snap's source tree
#   SNAP_BINARY_DIR  snap's configured build tree (find_package installs from it)
#   WORK_DIR         scratch folder, emptied first
#   GENERATOR, CXX_COMPILER  those of snap's build
cmake_minimum_required(VERSION 3.20)

foreach(variable CONSUMER SNAP_SOURCE_DIR SNAP_BINARY_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "run_consumer.cmake: -D${variable}=... is required")
  endif()
endforeach()

# Runs a command and stops with its output if it fails.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${what} failed (${result}):\n${output}")
  endif()
  message(STATUS "${what}: done")
  set(output "${output}" PARENT_SCOPE)
endfunction()

set(build ${WORK_DIR}/build)
set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
set(configure ${CMAKE_COMMAND} -S ${SNAP_SOURCE_DIR}/tests/consumer/${CONSUMER} -B ${build} -G ${GENERATOR}
              -DCMAKE_CXX_COMPILER=${CXX_COMPILER})

if(CONSUMER STREQUAL "find_package")
  run("install snap to ${prefix}" ${CMAKE_COMMAND} --install ${SNAP_BINARY_DIR} --prefix ${prefix})
  if(NOT EXISTS ${prefix}/include/snap/snap.hpp)
    message(FATAL_ERROR "the install has no include/snap/snap.hpp")
  endif()
  file(GLOB_RECURSE configs ${prefix}/*/snapConfig.cmake)
  if(NOT configs)
    message(FATAL_ERROR "the install has no snapConfig.cmake")
  endif()
  # The installed package must be relocatable: no path back into the source or build tree.
  file(GLOB_RECURSE installedCMake ${prefix}/*.cmake)
  foreach(file IN LISTS installedCMake)
    file(READ ${file} text)
    foreach(tree ${SNAP_SOURCE_DIR} ${SNAP_BINARY_DIR})
      string(FIND "${text}" "${tree}" position)
      if(NOT position EQUAL -1)
        message(FATAL_ERROR "${file} refers to ${tree}")
      endif()
    endforeach()
  endforeach()
  set(consumer_arguments -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
      -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
  run("configure the consumer" ${configure} ${consumer_arguments})
  # The snap found must be the one just installed.
  file(STRINGS ${build}/CMakeCache.txt snapDir REGEX "^snap_DIR:")
  string(REGEX REPLACE "^snap_DIR:[A-Z]+=" "" snapDir "${snapDir}")
  cmake_path(IS_PREFIX prefix "${snapDir}" NORMALIZE found)
  if(NOT found)
    message(FATAL_ERROR "find_package(snap) found '${snapDir}', not the install under ${prefix}")
  endif()
elseif(CONSUMER STREQUAL "add_subdirectory")
  set(consumer_arguments -DSNAP_SOURCE_DIR=${SNAP_SOURCE_DIR})
  run("configure the consumer" ${configure} ${consumer_arguments})
  # As a subproject snap builds none of its own tests, examples or benchmarks.
  foreach(folder tests examples benchmarks)
    if(EXISTS ${build}/snap-build/${folder})
      message(FATAL_ERROR "snap added with add_subdirectory() configured its ${folder}")
    endif()
  endforeach()
else()
  message(FATAL_ERROR "unknown CONSUMER '${CONSUMER}'")
endif()

# Configured with no build type, the consumer builds Release and snap does not warn; configured
# as Debug, snap warns at configure time that it runs unoptimised.
set(warning "snap: this project builds without optimisation")
string(FIND "${output}" "${warning}" position)
if(NOT position EQUAL -1)
  message(FATAL_ERROR "snap warned of an unoptimised build in a Release consumer:\n${output}")
endif()
file(STRINGS ${build}/CMakeCache.txt buildType REGEX "^CMAKE_BUILD_TYPE:")
if(NOT buildType MATCHES "=Release$")
  message(FATAL_ERROR "the consumer did not default to Release: ${buildType}")
endif()
run("configure the consumer as Debug" ${configure} -B ${build}-debug -DCMAKE_BUILD_TYPE=Debug ${consumer_arguments})
string(FIND "${output}" "${warning}" position)
if(position EQUAL -1)
  message(FATAL_ERROR "snap did not warn of an unoptimised (Debug) consumer build:\n${output}")
endif()

run("build the consumer" ${CMAKE_COMMAND} --build ${build})
run("run the consumer" ${build}/consumer)
message(STATUS "${output}")
if(NOT output MATCHES "consumer: ok")
  message(FATAL_ERROR "the consumer did not report ok")
endif()
