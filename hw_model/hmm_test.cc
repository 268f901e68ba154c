// HmmDevice / HmmMirror (R1): release on mm death delivered once, unregister as a
// synchronous fence, device unregister refused while mirrors remain, and the 2015 race
// (R1) replayed deterministically through the sync seam.
#include "hw_model/hmm.h"

#include <atomic>
#include <memory>
#include <thread>

#include "gtest/gtest.h"

#include "sync/test_util.h"

namespace itn::hw {
namespace {

using testing::wait_until;

TEST(HmmMirrorTest, ProcessExitDeliversReleaseOnceAndUnregisterStillWorks) {
  std::atomic<int> releases{0};
  HmmDevice device([&](HmmMirror&) { releases.fetch_add(1); });
  Ref<Process> p = make_ref<Process>();
  Ref<HmmMirror> mirror = *device.register_mirror(*p);
  EXPECT_FALSE(mirror->released());
  p->exit();
  EXPECT_TRUE(mirror->released());
  EXPECT_EQ(releases.load(), 1);
  ASSERT_TRUE(mirror->unregister().ok());
  EXPECT_EQ(releases.load(), 1) << "unregister after the mm died must not release again (I14)";
  EXPECT_EQ(mirror->unregister().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(device.unregister().ok());
  EXPECT_EQ(device.register_mirror(*make_ref<Process>()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(HmmMirrorTest, UnregisterBeforeExitDeliversTheReleaseItself) {
  std::atomic<int> releases{0};
  HmmDevice device([&](HmmMirror&) { releases.fetch_add(1); });
  Ref<Process> p = make_ref<Process>();
  Ref<HmmMirror> mirror = *device.register_mirror(*p);
  ASSERT_TRUE(mirror->unregister().ok());
  EXPECT_EQ(releases.load(), 1);
  p->exit();
  EXPECT_EQ(releases.load(), 1);
}

TEST(HmmDeviceTest, UnregisterFailsWhileAMirrorIsRegistered) {
  HmmDevice device([](HmmMirror&) {});
  Ref<Process> p = make_ref<Process>();
  Ref<HmmMirror> a = *device.register_mirror(*p);
  Ref<HmmMirror> b = *device.register_mirror(*p);
  EXPECT_EQ(device.unregister().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(a->unregister().ok());
  EXPECT_EQ(device.unregister().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(b->unregister().ok());
  EXPECT_TRUE(device.unregister().ok());
}

TEST(HmmDeviceTest, RegisterOnAnExitedProcessFails) {
  HmmDevice device([](HmmMirror&) {});
  Ref<Process> p = make_ref<Process>();
  p->exit();
  EXPECT_EQ(device.register_mirror(*p).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(device.unregister().ok());
}

// Pauses one thread right after it unlocks a mutex, once `armed` is set: the window in
// which the 2015 code let the driver free the device under the releasing thread.
class PauseAfterUnlock : public testing::CountingHooks {
 public:
  void on_wake(const void* mutex) override {
    CountingHooks::on_wake(mutex);
    if (std::this_thread::get_id() != thread || !armed.load() || paused.exchange(true)) return;
    wait_until([&] { return may_leave.load(); });
  }
  std::thread::id thread;
  std::atomic<bool> armed{false}, paused{false}, may_leave{false};
};

TEST(HmmMirrorTest, UnregisterRacingProcessExitWaitsForTheWholeReleaseR1) {
  if (!ITN_SCHED_SEAM) {
    GTEST_SKIP() << "needs the sync seam (ITN_SCHED_SEAM) to hold the exit thread between "
                    "unlocking the device mutex and leaving release()";
  }
  // Hooks first: threads the library starts from a hooked thread inherit them.
  PauseAfterUnlock exit_hooks;
  testing::CountingHooks unregister_hooks;
  auto device = std::make_unique<HmmDevice>([&](HmmMirror&) { exit_hooks.armed.store(true); });
  Ref<Process> p = make_ref<Process>();
  Ref<HmmMirror> mirror = *device->register_mirror(*p);

  // Thread B, the process exit: release() runs on_release inside the device mutex and is
  // paused just after unlocking it, still inside the release callback.
  std::thread exiting([&] {
    exit_hooks.thread = std::this_thread::get_id();
    set_thread_hooks(&exit_hooks);
    p->exit();
    set_thread_hooks(nullptr);
  });
  wait_until([&] { return exit_hooks.paused.load(); });

  // Thread A, the file close: unregister the mirror, then the device, then free it.
  std::atomic<bool> unregistered{false};
  std::thread closing([&] {
    set_thread_hooks(&unregister_hooks);
    EXPECT_TRUE(mirror->unregister().ok());
    set_thread_hooks(nullptr);
    unregistered.store(true);
    EXPECT_TRUE(device->unregister().ok());
    device.reset();  // I21: no thread may touch the device any more
  });
  wait_until([&] { return unregistered.load() || unregister_hooks.count(SchedPoint::kPoll) > 0; });
  EXPECT_FALSE(unregistered.load())
      << "R1: mirror unregister returned while the exit path was still inside release()";
  exit_hooks.may_leave.store(true);
  closing.join();
  exiting.join();
  EXPECT_TRUE(mirror->released());
}

}  // namespace
}  // namespace itn::hw
