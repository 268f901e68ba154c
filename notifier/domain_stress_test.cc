// Real-thread stress of NotifierDomain, for the ASan and TSan builds: an invalidator, a
// notifier churner and a reader run together. The reader keeps a "device copy" of a CPU
// version with the read_begin/read_retry protocol; after every invalidation the copy must
// be cleared or current, never stale. Lookups with find() race removals.
#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "notifier/domain.h"

namespace itn {
namespace {

constexpr std::uint64_t kPage = 4096;

class Device : public IntervalNotifier {
 public:
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    MutexLock l(mu);
    set_seq(cur_seq);
    copy = 0;  // clear the device's view of the range
    return true;
  }
  Mutex mu;
  std::uint64_t copy ABSL_GUARDED_BY(mu) = 0;
};

class Churned : public IntervalNotifier {
 public:
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    set_seq(cur_seq);
    calls.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  std::atomic<std::uint64_t> calls{0};
  std::uint64_t canary = 0xC0FFEE;  // read through find() references
};

TEST(NotifierDomainStress, ProtocolStaysCoherentUnderChurn) {
  constexpr int kInvalidations = 4000;
  auto domain = make_ref<NotifierDomain>();
  auto device = make_ref<Device>();
  ASSERT_TRUE(domain->insert(device, 0, 64 * kPage, nullptr).ok());
  std::atomic<std::uint64_t> cpu_version{1};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> stale{0}, installs{0}, found{0}, bad_canary{0};
  const int owner = 0;

  std::thread reader([&] {
    while (!stop.load()) {
      const std::uint64_t seq = device->read_begin();
      const std::uint64_t v = cpu_version.load();  // "walk the CPU page table"
      MutexLock l(device->mu);
      if (device->read_retry(seq)) continue;
      device->copy = v;
      installs.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::thread churner([&] {
    std::mt19937_64 rng(1);
    std::vector<Ref<Churned>> live;
    while (!stop.load()) {
      if (live.size() < 32 && rng() % 2) {
        auto n = make_ref<Churned>();
        const std::uint64_t page = rng() % 64;
        ASSERT_TRUE(domain->insert(n, page * kPage, kPage, &owner).ok());
        live.push_back(n);
      } else if (!live.empty()) {
        const std::size_t i = rng() % live.size();
        ASSERT_TRUE(domain->remove(*live[i]).ok());
        live.erase(live.begin() + static_cast<long>(i));
      }
      if (Ref<IntervalNotifier> f = domain->find(&owner, 0, 64 * kPage)) {
        found.fetch_add(1, std::memory_order_relaxed);
        if (static_cast<Churned*>(f.get())->canary != 0xC0FFEE) bad_canary.fetch_add(1);
      }
    }
    for (auto& n : live) ASSERT_TRUE(domain->remove(*n).ok());
  });

  std::mt19937_64 rng(2);
  // At least kInvalidations, and on until the reader has really run (a thread may start
  // late under a sanitizer), within a bound.
  for (int i = 0; i < kInvalidations || (installs.load() < 200 && i < 100 * kInvalidations); ++i) {
    const std::uint64_t page = rng() % 64;
    const Range r{page * kPage, (page + 1 + rng() % 4) * kPage, Event::kClear, i % 5 != 0, nullptr};
    absl::StatusOr<InvalidationToken> token = domain->invalidate_range_start(r);
    if (!token.ok()) continue;  // refused: nothing to end
    cpu_version.fetch_add(1);   // the CPU page table changes inside the bracket
    domain->invalidate_range_end(*std::move(token));
    MutexLock l(device->mu);
    if (device->copy != 0 && device->copy != cpu_version.load()) stale.fetch_add(1);
  }
  stop.store(true);
  reader.join();
  churner.join();
  ASSERT_TRUE(domain->remove(*device).ok());

  EXPECT_EQ(stale.load(), 0u) << "a device copy survived an invalidation stale";
  EXPECT_EQ(bad_canary.load(), 0u);
  EXPECT_GT(installs.load(), 0u);
  EXPECT_EQ(domain->active_for_testing(), 0u);
}

}  // namespace
}  // namespace itn
