// hw_model/testing/invalidation_recorder.h
//
// A whole-space notifier for tests that records every invalidation an address space
// announces (event, range, owner), in order.
//
// Thread safety: invalidate() and take() may run on any threads at once. Lifetime: owned
// through Ref, inserted and removed by the test. Memory ordering: the calls list is
// guarded by the recorder's mutex.
#ifndef ITN_HW_MODEL_TESTING_INVALIDATION_RECORDER_H_
#define ITN_HW_MODEL_TESTING_INVALIDATION_RECORDER_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "notifier/interval_notifier.h"
#include "sync/mutex.h"

namespace itn::hw::testing {

class InvalidationRecorder : public IntervalNotifier {
 public:
  struct Call {
    Event event;
    std::uint64_t start, end;
    const void* owner = nullptr;
    bool operator==(const Call&) const = default;
  };
  bool invalidate(const Range& r, std::uint64_t seq) override {
    MutexLock l(mu_);
    set_seq(seq);
    calls_.push_back({r.event, r.start, r.end, r.owner});
    return true;
  }
  // The calls recorded since the last take().
  std::vector<Call> take() {
    MutexLock l(mu_);
    return std::exchange(calls_, {});
  }

 private:
  Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace itn::hw::testing

#endif  // ITN_HW_MODEL_TESTING_INVALIDATION_RECORDER_H_
