// Compiled twice by the `tsa` preset. Normally it locks correctly and must compile with
// -Wthread-safety -Werror. With ITN_TSA_BREAK it writes a guarded field without the lock,
// and the ctest sync.tsa_rejects_unguarded_access expects the analysis to reject it.
#include "sync/mutex.h"

namespace itn {

class Account {
 public:
  void deposit(int amount) {
#if ITN_TSA_BREAK
    balance_ += amount;
#else
    MutexLock l(mu_);
    balance_ += amount;
#endif
  }

 private:
  Mutex mu_;
  int balance_ ABSL_GUARDED_BY(mu_) = 0;
};

void tsa_guarded_access_use() {
  Account a;
  a.deposit(1);
}

}  // namespace itn
