// Real-thread stress of Ref<T>::try_get() against the final release, for the ASan and
// TSan builds: lookups inside read sections must never resurrect or touch a freed object.
#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "sync/ref.h"
#include "sync/srcu.h"

namespace itn {
namespace {

class Tracked : public RefCounted {
 public:
  Tracked(std::atomic<int>* destroyed, SrcuDomain* reclaim) : destroyed_(destroyed) {
    free_after_grace_period(*reclaim);
  }
  ~Tracked() override {
    value = 0;  // poison
    destroyed_->fetch_add(1);
  }
  int value = 7;

 private:
  std::atomic<int>* destroyed_;
};

TEST(RefStressTest, ConcurrentTryGetAndReleaseNeverResurrects) {
  // Readers race try_get() against the owner dropping the last reference; every object
  // must be destroyed exactly once, and never while a reader holds a Ref to it.
  SrcuDomain domain;
  std::atomic<int> destroyed{0};
  constexpr int kRounds = 3000;
  std::atomic<Tracked*> shared{nullptr};
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto guard = domain.read_lock();
        if (Ref<Tracked> got = Ref<Tracked>::try_get(shared.load(std::memory_order_acquire))) {
          EXPECT_EQ(got->value, 7);
        }
      }
    });
  }
  for (int i = 0; i < kRounds; ++i) {
    Ref<Tracked> owner = make_ref<Tracked>(&destroyed, &domain);
    shared.store(owner.get(), std::memory_order_release);
    shared.store(nullptr, std::memory_order_release);
    // owner drops here: the object is freed after a grace period
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  domain.barrier();
  EXPECT_EQ(destroyed.load(), kRounds);
}

}  // namespace
}  // namespace itn
