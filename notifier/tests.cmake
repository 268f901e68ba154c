itn_test(notifier_test SOURCES deferred_insert_test.cc domain_test.cc fast_path_test.cc
  invalidation_batcher_test.cc
  invalidation_token_test.cc
  interval_test.cc leak_check_test.cc lifetime_test.cc misuse_test.cc range_test.cc stats_test.cc
  subscription_test.cc
  retired_memory_test.cc trace_test.cc whole_space_test.cc DEPS itn::notifier)
itn_test(notifier_stress_test SOURCES domain_stress_test.cc DEPS itn::notifier LABELS stress)
