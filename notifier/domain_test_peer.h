// notifier/domain_test_peer.h
//
// Test-only access to a NotifierDomain's insides: its mutex (to show which operations do
// not need it), its trees' roots (to pause a writer at a publish), a notifier's claim
// word (to pause an insert at its claim) and its deferred frees (to run them while a
// writer is paused: barrier() would wait for that writer's tree lock).
#ifndef ITN_NOTIFIER_DOMAIN_TEST_PEER_H_
#define ITN_NOTIFIER_DOMAIN_TEST_PEER_H_

#include "notifier/domain.h"

namespace itn {

class NotifierDomainTestPeer {
 public:
  static Mutex& mu(NotifierDomain& d) { return d.mu_; }
  static const void* tree_root(const NotifierDomain& d) {
    return d.tree_.root_address_for_testing();
  }
  static const void* deferred_tree_root(const NotifierDomain& d) {
    return d.deferred_inserts_.root_address_for_testing();
  }
  static const void* claim_word(const IntervalNotifier& n) { return &n.claim_; }
  static void run_queued_frees(NotifierDomain& d) { d.srcu_.barrier(); }
};

}  // namespace itn

#endif  // ITN_NOTIFIER_DOMAIN_TEST_PEER_H_
