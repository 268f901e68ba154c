#include "sync/ref.h"

#include <atomic>

#include "gtest/gtest.h"

#include "sync/srcu.h"

namespace itn {
namespace {

class Tracked : public RefCounted {
 public:
  explicit Tracked(std::atomic<int>* destroyed, SrcuDomain* reclaim = nullptr)
      : destroyed_(destroyed) {
    if (reclaim) free_after_grace_period(*reclaim);
  }
  ~Tracked() override { destroyed_->fetch_add(1); }
  int value = 7;

 private:
  std::atomic<int>* destroyed_;
};

class Derived : public Tracked {
 public:
  using Tracked::Tracked;
};

TEST(RefTest, CountsCopiesAndDestroysAtZero) {
  std::atomic<int> destroyed{0};
  Ref<Tracked> a = make_ref<Tracked>(&destroyed);
  EXPECT_EQ(a->ref_count_for_testing(), 1u);
  {
    Ref<Tracked> b = a;
    EXPECT_EQ(a->ref_count_for_testing(), 2u);
    Ref<Tracked> c = std::move(b);
    EXPECT_EQ(b, nullptr);  // NOLINT(bugprone-use-after-move): moved-from is null
    EXPECT_EQ(a->ref_count_for_testing(), 2u);
  }
  EXPECT_EQ(a->ref_count_for_testing(), 1u);
  EXPECT_EQ(destroyed.load(), 0);
  a.reset();
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_FALSE(a);
}

TEST(RefTest, ConvertsToBase) {
  std::atomic<int> destroyed{0};
  Ref<Derived> d = make_ref<Derived>(&destroyed);
  Ref<Tracked> base = d;
  EXPECT_EQ(base.get(), d.get());
  EXPECT_EQ(d->ref_count_for_testing(), 2u);
  Ref<Tracked> moved = std::move(d);
  EXPECT_EQ(moved->ref_count_for_testing(), 2u);
  base = nullptr;
  moved = nullptr;
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(RefTest, TryGetFailsOnceCountReachedZeroAndMemoryStaysUntilGracePeriod) {
  SrcuDomain domain;
  std::atomic<int> destroyed{0};
  Ref<Tracked> owner = make_ref<Tracked>(&destroyed, &domain);
  Tracked* raw = owner.get();  // what a lock-free container would hold
  {
    auto guard = domain.read_lock();
    Ref<Tracked> got = Ref<Tracked>::try_get(raw);
    ASSERT_TRUE(got);
    EXPECT_EQ(raw->ref_count_for_testing(), 2u);
    got.reset();
    owner.reset();  // count 0: freeing is deferred past our read section
    EXPECT_FALSE(Ref<Tracked>::try_get(raw)) << "try_get resurrected a dying object";
    EXPECT_EQ(raw->value, 7);  // memory still valid inside the section
    EXPECT_EQ(destroyed.load(), 0);
  }
  domain.barrier();
  EXPECT_EQ(destroyed.load(), 1);
}

// A counted class with functions named like the counting ones (and a release(), as
// NotifierDomain has for the exit path): Ref<T> must never call them.
class HasOwnRelease : public RefCounted {
 public:
  void add_ref() const { ++own_calls; }
  bool try_add_ref() const { return ++own_calls != 0; }
  void drop_ref() const { ++own_calls; }
  void release() { ++own_calls; }
  mutable int own_calls = 0;
};

TEST(RefTest, NeverCallsASubclassesOwnCountingFunctions) {
  Ref<HasOwnRelease> a = make_ref<HasOwnRelease>();
  {
    Ref<HasOwnRelease> b = a;
    Ref<HasOwnRelease> c = Ref<HasOwnRelease>::try_get(a.get());
    EXPECT_EQ(a->ref_count_for_testing(), 3u);
  }
  EXPECT_EQ(a->ref_count_for_testing(), 1u);
  EXPECT_EQ(a->own_calls, 0);
}

TEST(RefTest, FromThisAddsAReference) {
  std::atomic<int> destroyed{0};
  Ref<Tracked> a = make_ref<Tracked>(&destroyed);
  Ref<Tracked> b = Ref<Tracked>::from_this(a.get());
  EXPECT_EQ(a->ref_count_for_testing(), 2u);
}

}  // namespace
}  // namespace itn
