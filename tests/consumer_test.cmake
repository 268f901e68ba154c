# cmake -P script run by the ctest `install.consumer_builds`: installs the build tree into
# a scratch prefix, checks that every header went under include/itn/ and nothing else
# under include/, then builds tests/consumer against it twice, with and without NDEBUG,
# and runs both: each must see the library's check level.
# Inputs: BUILD_DIR, SOURCE_DIR, WORK_DIR, CXX_COMPILER, CXX_FLAGS and LINKER_FLAGS (the
# sanitizer flags of the build being tested, which the consumer must share), and
# DEBUG_CHECKS (the library's ITN_DEBUG_CHECKS, 0 or 1).
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}"
                COMMAND_ERROR_IS_FATAL ANY)

file(GLOB top RELATIVE "${prefix}/include" "${prefix}/include/*")
if(NOT top STREQUAL "itn")
  message(FATAL_ERROR "the install put [${top}] under include/; only itn/ belongs there")
endif()
foreach(header IN ITEMS sync/srcu.h itree/interval_tree.h notifier/domain.h hw_model/process.h
                     testing/sched/explore.h testing/coherence.h)
  if(NOT EXISTS "${prefix}/include/itn/${header}")
    message(FATAL_ERROR "include/itn/${header} was not installed")
  endif()
endforeach()

foreach(variant IN ITEMS debug ndebug)
  set(flags "${CXX_FLAGS}")
  if(variant STREQUAL "ndebug")
    string(APPEND flags " -DNDEBUG")
  endif()
  set(build "${WORK_DIR}/build-${variant}")
  execute_process(COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/consumer" -B "${build}"
                          -G Ninja "-DCMAKE_PREFIX_PATH=${prefix}"
                          "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_CXX_FLAGS=${flags}"
                          "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}"
                  COMMAND_ERROR_IS_FATAL ANY)
  execute_process(COMMAND "${CMAKE_COMMAND}" --build "${build}" COMMAND_ERROR_IS_FATAL ANY)
  execute_process(COMMAND "${build}/itn_consumer" "${DEBUG_CHECKS}" COMMAND_ERROR_IS_FATAL ANY)
endforeach()
