// BM_Notifier_InvalidateRangeDriver/<impl>/n:N/k:K: one driver owns all N subscribers
// (one per page) under one driver lock, as a device with many buffers does; an
// invalidation over K consecutive pages reaches K of them.
// - itn_per_notifier: every notifier's invalidate() takes the driver lock (K round trips);
// - itn_batched: BatchedNotifiers whose batcher takes the driver lock once per
//   invalidation (notifier/invalidation_batcher.h);
// - kernel_design: B1, one invalidate() and lock round trip per subscriber.
// Counter hits_per_op (expected K).
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "benchmark/benchmark.h"

#include "bench/notifier_impls.h"
#include "notifier/domain.h"
#include "notifier/invalidation_batcher.h"
#include "sync/check.h"
#include "sync/mutex.h"

namespace itn::bench {
namespace {

struct DriverState {
  Mutex mu;
  std::uint64_t hits ABSL_GUARDED_BY(mu) = 0;
};

class PerNotifier : public IntervalNotifier {
 public:
  explicit PerNotifier(DriverState& d) : driver_(d) {}
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    MutexLock l(driver_.mu);
    set_seq(cur_seq);
    ++driver_.hits;
    return true;
  }

 private:
  DriverState& driver_;
};

class Batcher : public InvalidationBatcher {
 public:
  explicit Batcher(DriverState& d) : driver_(d) {}
  bool invalidate(const Range&, std::uint64_t cur_seq,
                  std::span<IntervalNotifier* const> hits) override {
    MutexLock l(driver_.mu);
    for (IntervalNotifier* n : hits) n->set_seq(cur_seq);
    driver_.hits += hits.size();
    return true;
  }

 private:
  DriverState& driver_;
};

class Buffer : public BatchedNotifier {
 public:
  using BatchedNotifier::BatchedNotifier;
};

template <bool kBatched>
class ItnDriverImpl {
 public:
  explicit ItnDriverImpl(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      Ref<IntervalNotifier> sub;
      if constexpr (kBatched) {
        sub = make_ref<Buffer>(batcher_);
      } else {
        sub = make_ref<PerNotifier>(driver_);
      }
      check_ok(domain_->insert(sub, Interval::sized(i * kPage, kPage), nullptr));
      subs_.push_back(std::move(sub));
    }
  }
  ~ItnDriverImpl() {
    for (const Ref<IntervalNotifier>& s : subs_) check_ok(domain_->remove(*s));
  }
  void invalidate(std::uint64_t page, std::uint64_t pages) {
    absl::StatusOr<InvalidationToken> token =
        domain_->invalidate_range_start(page_range(page, pages));
    check_ok(token.status());
    domain_->invalidate_range_end(*std::move(token));
  }
  std::uint64_t hits() {
    MutexLock l(driver_.mu);
    return driver_.hits;
  }

 private:
  DriverState driver_;
  Batcher batcher_{driver_};
  Ref<NotifierDomain> domain_ = make_ref<NotifierDomain>();
  std::vector<Ref<IntervalNotifier>> subs_;
};

template <class Impl>
void BM_Notifier_InvalidateRangeDriver(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const auto k = static_cast<std::uint64_t>(state.range(1));
  Impl impl(n);
  std::mt19937_64 rng(1);
  std::vector<std::uint64_t> first(4096);
  for (std::uint64_t& p : first) p = rng() % (n - k + 1);
  std::size_t i = 0;
  for (auto _ : state) impl.invalidate(first[i++ % first.size()], k);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["hits_per_op"] =
      static_cast<double>(impl.hits()) / static_cast<double>(state.iterations());
}

#define ITN_DRIVER_ARGS ->ArgNames({"n", "k"})->ArgsProduct({{10000}, {1, 16, 256}})
BENCHMARK(BM_Notifier_InvalidateRangeDriver<ItnDriverImpl<false>>)
    ->Name("BM_Notifier_InvalidateRangeDriver/itn_per_notifier") ITN_DRIVER_ARGS;
BENCHMARK(BM_Notifier_InvalidateRangeDriver<ItnDriverImpl<true>>)
    ->Name("BM_Notifier_InvalidateRangeDriver/itn_batched") ITN_DRIVER_ARGS;
BENCHMARK(BM_Notifier_InvalidateRangeDriver<KernelSpinImpl>)
    ->Name("BM_Notifier_InvalidateRangeDriver/kernel_design") ITN_DRIVER_ARGS;

}  // namespace
}  // namespace itn::bench
