// notifier/invalidation_batcher.h
//
// itn::InvalidationBatcher and itn::BatchedNotifier: driver-side batching of
// invalidations. A driver that subscribes many intervals (one notifier per buffer, say)
// under one driver lock would take that lock once per notifier an invalidation reaches;
// with a batcher it takes it once per invalidation. Each BatchedNotifier names its
// batcher; a walk hands all of one invalidation's batched notifiers to their batcher in
// one call, after it has called the unbatched ones.
//
//   class Driver : public InvalidationBatcher {
//     bool invalidate(const Range& r, std::uint64_t cur_seq,
//                     std::span<IntervalNotifier* const> hits) override {
//       MutexLock l(mu_);                        // once, not once per hit
//       for (IntervalNotifier* n : hits) n->set_seq(cur_seq);
//       clear device PTEs in r;
//       return true;
//     }
//   };
//   class Buffer : public BatchedNotifier { using BatchedNotifier::BatchedNotifier; };
//   domain->insert(make_ref<Buffer>(driver), Interval::sized(addr, len), key);
//
// The fault path is unchanged: read_begin(), walk, driver lock, read_retry() on the
// buffer's notifier.
//
// Thread safety: invalidate() may run on any thread, concurrently for different
// invalidations; the driver lock serialises it with the read_retry() callers.
// Lifetime: a batcher must outlive the insertion of every notifier that names it (until
// their remove() returned).
// Memory ordering: as IntervalNotifier::set_seq(), which the batcher calls for each hit.
#ifndef ITN_NOTIFIER_INVALIDATION_BATCHER_H_
#define ITN_NOTIFIER_INVALIDATION_BATCHER_H_

#include <cstdint>
#include <span>

#include "notifier/interval_notifier.h"
#include "notifier/range.h"
#include "sync/check.h"

namespace itn {

class InvalidationBatcher {
 public:
  virtual ~InvalidationBatcher() = default;

  // InvalidationBatcher::invalidate()
  //
  // Called once for every invalidation that reaches at least one of this batcher's
  // notifiers, with every such notifier (each once, in key order), under the same rules
  // as IntervalNotifier::invalidate() for each of them: set_seq(cur_seq) on every hit
  // under the driver lock. Return false only when !range.blockable and the callback would
  // have to sleep: the invalidation then fails (kUnavailable) for all of `hits`.
  // Context: as IntervalNotifier::invalidate().
  virtual bool invalidate(const Range& range, std::uint64_t cur_seq,
                          std::span<IntervalNotifier* const> hits) = 0;
};

// BatchedNotifier: a notifier whose invalidations go to its batcher.
class BatchedNotifier : public IntervalNotifier {
 public:
  explicit BatchedNotifier(InvalidationBatcher& batcher) : IntervalNotifier(&batcher) {}

  // Never called: walks call the batcher instead.
  bool invalidate(const Range&, std::uint64_t) final {
    ITN_CHECK(false, "BatchedNotifier::invalidate() called: walks hand it to its batcher");
    return false;
  }
};

}  // namespace itn

#endif  // ITN_NOTIFIER_INVALIDATION_BATCHER_H_
