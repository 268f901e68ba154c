// notifier/domain_test_peer.h
//
// Test-only access to a NotifierDomain's insides: its mutex (to show which operations do
// not need it) and its tree's root (to pause a writer at the publish).
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
};

}  // namespace itn

#endif  // ITN_NOTIFIER_DOMAIN_TEST_PEER_H_
