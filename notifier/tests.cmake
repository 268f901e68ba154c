itn_test(notifier_test SOURCES domain_test.cc DEPS itn::notifier)
