itn_test(itree_test SOURCES interval_tree_test.cc node_pool_test.cc DEPS itn::itree)
itn_test(itree_stress_test SOURCES interval_tree_stress_test.cc DEPS itn::itree LABELS stress)
