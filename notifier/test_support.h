// notifier/test_support.h
//
// Helpers for itn's own tests: invalidations that must succeed, a counting notifier, and
// domains that free every tree node on its own (so AddressSanitizer sees each free). Test-only; no
// library target includes it.
#ifndef ITN_NOTIFIER_TEST_SUPPORT_H_
#define ITN_NOTIFIER_TEST_SUPPORT_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <utility>

#include "notifier/domain.h"
#include "sync/check.h"
#include "sync/test_util.h"

namespace itn::testing {

// A domain that hands every replaced tree node to its grace period at once, so that a
// reader that touches one too late is reported by AddressSanitizer.
inline Ref<NotifierDomain> domain_freeing_each_node() {
  return make_ref<NotifierDomain>(NotifierDomainOptions{.free_batch_nodes = 1});
}

// A notifier that counts its invalidate() calls and, in `*destroyed` if given, its
// destruction (for tests of who frees a notifier when).
class CountedNotifier : public IntervalNotifier {
 public:
  explicit CountedNotifier(std::atomic<int>* destroyed = nullptr) : destroyed_(destroyed) {}
  ~CountedNotifier() override {
    if (destroyed_ != nullptr) destroyed_->fetch_add(1);
  }
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    set_seq(cur_seq);
    calls.fetch_add(1);
    return true;
  }
  std::atomic<int> calls{0};

 private:
  std::atomic<int>* destroyed_;
};

// A thread that calls `n.read_begin()`. The constructor returns once that call returned or
// `domain` counted it waiting; returned() says which. The destructor joins the thread.
class ReadBeginCall {
 public:
  ReadBeginCall(NotifierDomain& domain, IntervalNotifier& n)
      : waits_before_(domain.stats().read_begin_waits), thread_([this, &n] {
          (void)n.read_begin();
          returned_.store(true);
        }) {
    wait_until([&] { return returned() || domain.stats().read_begin_waits > waits_before_; });
  }
  ~ReadBeginCall() { join(); }
  bool returned() const { return returned_.load(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  const std::uint64_t waits_before_;
  std::atomic<bool> returned_{false};
  std::thread thread_;  // last: starts once the members above exist
};

// Starts `range` on `domain`; dies with the status if the start failed.
inline InvalidationToken start_ok(NotifierDomain& domain, const Range& range) {
  absl::StatusOr<InvalidationToken> token = domain.invalidate_range_start(range);
  ITN_CHECK_OK(token, "the test expects this invalidation to start");
  return *std::move(token);
}

// One whole invalidation of `range`.
inline void invalidate(NotifierDomain& domain, const Range& range) {
  domain.invalidate_range_end(start_ok(domain, range));
}

}  // namespace itn::testing

#endif  // ITN_NOTIFIER_TEST_SUPPORT_H_
