# Helpers shared by every folder's CMakeLists.txt.
include(GNUInstallDirs)

# itn_library(<folder> SOURCES ... DEPS ...)
# Defines itn_<folder> with alias itn::<folder> (an INTERFACE library when there are no
# SOURCES). Headers live beside sources and are included by their path from the
# repository root ("sync/srcu.h"): in the build tree from the root, installed from
# <prefix>/include/itn, where the HEADERS file set puts them with the same paths.
function(itn_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;HEADERS;DEPS" ${ARGN})
  if(ARG_SOURCES)
    add_library(itn_${name} ${ARG_SOURCES})
    set(scope PUBLIC)
    target_link_libraries(itn_${name} PRIVATE $<BUILD_INTERFACE:itn::warnings>)
  else()  # header-only (templates)
    add_library(itn_${name} INTERFACE)
    set(scope INTERFACE)
  endif()
  add_library(itn::${name} ALIAS itn_${name})
  set_target_properties(itn_${name} PROPERTIES EXPORT_NAME ${name})
  target_compile_features(itn_${name} ${scope} cxx_std_20)
  target_sources(itn_${name} ${scope}
    FILE_SET HEADERS BASE_DIRS ${PROJECT_SOURCE_DIR} FILES ${ARG_HEADERS})
  target_link_libraries(itn_${name} ${scope} ${ARG_DEPS})
  set_property(GLOBAL APPEND PROPERTY ITN_LIBRARIES itn_${name})
endfunction()

# itn_skipped_test(<name> NEEDS "<what>")
# Stands in for a test binary this build cannot have: one ctest entry that reports itself
# skipped and says what it needs, so every preset's summary shows what it leaves out.
function(itn_skipped_test name)
  cmake_parse_arguments(ARG "" "NEEDS" "" ${ARGN})
  add_test(NAME ${name}.skipped
    COMMAND sh -c "echo '${name} is not built here: it needs ${ARG_NEEDS}'; exit 77")
  set_tests_properties(${name}.skipped PROPERTIES SKIP_RETURN_CODE 77)
endfunction()

# itn_test(<name> SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s])
# A GoogleTest executable whose tests are registered one by one with ctest.
function(itn_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main itn::warnings)
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()
