# Tests of itn::sync (included from sync/CMakeLists.txt when ITN_BUILD_TESTS is on).
itn_test(sync_test
  SOURCES check_test.cc mutex_test.cc ref_test.cc rw_mutex_test.cc sched_hooks_test.cc srcu_test.cc
  DEPS itn::sync)
itn_test(trace_test SOURCES trace_test.cc DEPS itn::sync)
itn_test(sync_stress_test
  SOURCES ref_stress_test.cc srcu_stress_test.cc
  DEPS itn::sync
  LABELS stress)

# The thread-safety analysis must reject a guarded field touched without its lock, and
# accept the same file with the lock taken (the control, part of the normal build).
if(ITN_THREAD_SAFETY)
  add_library(tsa_guarded_access_ok OBJECT tsa_guarded_access.cc)
  target_link_libraries(tsa_guarded_access_ok PRIVATE itn::sync itn::warnings)
  add_library(tsa_guarded_access_broken OBJECT EXCLUDE_FROM_ALL tsa_guarded_access.cc)
  target_link_libraries(tsa_guarded_access_broken PRIVATE itn::sync itn::warnings)
  target_compile_definitions(tsa_guarded_access_broken PRIVATE ITN_TSA_BREAK=1)
  add_test(NAME sync.tsa_rejects_unguarded_access
    COMMAND ${CMAKE_COMMAND} --build ${PROJECT_BINARY_DIR} --target tsa_guarded_access_broken)
  set_tests_properties(sync.tsa_rejects_unguarded_access PROPERTIES
    PASS_REGULAR_EXPRESSION "writing variable 'balance_' requires holding mutex 'mu_' exclusively"
    RUN_SERIAL TRUE LABELS tsa)
endif()
