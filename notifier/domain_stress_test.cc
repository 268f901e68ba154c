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
#include "notifier/test_support.h"

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

TEST(NotifierDomainStressTest, ProtocolStaysCoherentUnderChurn) {
  constexpr int kInvalidations = 4000;
  auto domain = testing::domain_freeing_each_node();
  auto device = make_ref<Device>();
  ASSERT_TRUE(domain->insert(device, Interval::sized(0, 64 * kPage), nullptr).ok());
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
        ASSERT_TRUE(domain->insert(n, Interval::sized(page * kPage, kPage), &owner).ok());
        live.push_back(n);
      } else if (!live.empty()) {
        const std::size_t i = rng() % live.size();
        ASSERT_TRUE(domain->remove(*live[i]).ok());
        live.erase(live.begin() + static_cast<long>(i));
      }
      if (Ref<IntervalNotifier> f = domain->find(&owner, Interval::closed(0, 64 * kPage))) {
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

// A notifier that counts its callbacks and its destruction, and says when it was used
// after it died (the canary is overwritten by the destructor).
class Counted : public IntervalNotifier {
 public:
  explicit Counted(std::atomic<int>* destroyed) : destroyed_(destroyed) {}
  ~Counted() override {
    canary.store(0, std::memory_order_relaxed);
    destroyed_->fetch_add(1);
  }
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    if (canary.load(std::memory_order_relaxed) != kAlive) dead_calls.fetch_add(1);
    set_seq(cur_seq);
    return true;
  }
  static constexpr std::uint64_t kAlive = 0xC0FFEE;
  std::atomic<std::uint64_t> canary{kAlive};
  static inline std::atomic<int> dead_calls{0};

 private:
  std::atomic<int>* destroyed_;
};

TEST(NotifierDomainStressTest, SoleOwnedNotifiersUnderConcurrentInvalidationsAndFinds) {
  constexpr int kRounds = 1500;
  auto domain = testing::domain_freeing_each_node();
  std::atomic<int> created{0}, destroyed{0}, bad{0};
  std::atomic<bool> stop{false};
  const int owner = 0;

  // Three invalidators at once: two over the churned pages (overlapping each other), one
  // far away (disjoint).
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(10 + t);
      for (int i = 0; i < kRounds; ++i) {
        const std::uint64_t page = (t == 2 ? 1000 : 0) + rng() % 64;
        testing::invalidate(*domain,
                            Range{.start = page * kPage, .end = (page + 1 + rng() % 8) * kPage});
      }
    });
  }
  // Two finders that hold what they find for a while and check it is alive.
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(20 + t);
      std::vector<Ref<IntervalNotifier>> held;
      while (!stop.load()) {
        const std::uint64_t page = rng() % 64;
        if (Ref<IntervalNotifier> f =
                domain->find(&owner, Interval::closed(page * kPage, (page + 4) * kPage))) {
          held.push_back(std::move(f));
        }
        if (held.size() > 8) held.erase(held.begin());
        for (const Ref<IntervalNotifier>& h : held) {
          if (static_cast<Counted*>(h.get())->canary.load() != Counted::kAlive) bad.fetch_add(1);
        }
      }
    });
  }
  // The churner: half of its notifiers it drops right after insert() (the domain holds the
  // only reference and remove() gets a plain reference), half it keeps and inserts again
  // after removing them.
  std::mt19937_64 rng(3);
  std::vector<IntervalNotifier*> sole;
  std::vector<Ref<Counted>> kept;
  std::vector<Ref<Counted>> kept_out;  // removed, kept for reinsertion
  for (int i = 0; i < 4 * kRounds; ++i) {
    const std::uint64_t page = rng() % 64;
    switch (rng() % 4) {
      case 0: {
        Ref<Counted> n = make_ref<Counted>(&destroyed);
        created.fetch_add(1);
        IntervalNotifier* raw = n.get();
        ASSERT_TRUE(
            domain->insert(std::move(n), Interval::sized(page * kPage, kPage), &owner).ok());
        sole.push_back(raw);
        break;
      }
      case 1:
        if (!kept_out.empty()) {
          ASSERT_TRUE(
              domain->insert(kept_out.back(), Interval::sized(page * kPage, kPage), &owner).ok());
          kept.push_back(std::move(kept_out.back()));
          kept_out.pop_back();
        } else {
          kept.push_back(make_ref<Counted>(&destroyed));
          created.fetch_add(1);
          ASSERT_TRUE(
              domain->insert(kept.back(), Interval::sized(page * kPage, kPage), &owner).ok());
        }
        break;
      case 2:
        if (!sole.empty()) {
          const std::size_t at = rng() % sole.size();
          ASSERT_TRUE(domain->remove(*sole[at]).ok());  // may free it, after a grace period
          sole.erase(sole.begin() + static_cast<long>(at));
        }
        break;
      case 3:
        if (!kept.empty()) {
          ASSERT_TRUE(domain->remove(*kept.back()).ok());
          kept_out.push_back(std::move(kept.back()));
          kept.pop_back();
        }
        break;
    }
  }
  for (int t = 0; t < 3; ++t) threads[t].join();
  stop.store(true);
  for (std::size_t t = 3; t < threads.size(); ++t) threads[t].join();
  for (IntervalNotifier* n : sole) ASSERT_TRUE(domain->remove(*n).ok());
  for (const Ref<Counted>& n : kept) ASSERT_TRUE(domain->remove(*n).ok());
  kept.clear();
  kept_out.clear();
  domain->barrier();
  EXPECT_EQ(bad.load(), 0) << "a find() reference outlived its notifier";
  EXPECT_EQ(Counted::dead_calls.load(), 0) << "invalidate() on a destroyed notifier";
  EXPECT_EQ(destroyed.load(), created.load()) << "notifiers leaked or freed twice";
  EXPECT_EQ(domain->active_for_testing(), 0u);
}

}  // namespace
}  // namespace itn
