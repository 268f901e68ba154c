// Process and AddressSpace lifetime: users (mmget/mmput) versus memory (grabs), the exit
// order (exit_mm before exit_files, R6), file tables shared by fork and passed
// between processes.
#include "hw_model/process.h"

#include <functional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "hw_model/mirror_device.h"

namespace itn::hw {
namespace {

using ::testing::ElementsAre;

constexpr std::uint64_t kPage = kPageSize;

// Records the order in which the address space dies and device files close.
struct Journal {
  std::vector<std::string> events;
  Ref<OpenFile> file(const std::string& name) {
    return make_ref<OpenFile>(name, [this, name] { events.push_back("close " + name); });
  }
};

class ReleaseRecorder : public Notifier {
 public:
  explicit ReleaseRecorder(Journal& journal) : journal_(journal) {}
  void release(NotifierDomain&) override {
    journal_.events.push_back("mm release");
    if (during_release) during_release();
  }
  std::function<void()> during_release;  // runs inside release(), if set

 private:
  Journal& journal_;
};

TEST(ProcessTest, ExitReleasesTheMmBeforeClosingFiles) {
  Journal journal;
  Ref<Process> p = make_ref<Process>();
  ReleaseRecorder recorder(journal);
  ASSERT_TRUE(p->mm().notifiers().register_notifier(recorder).ok());
  const int fd = *p->install(journal.file("gpu"));
  // Until exit_files, the descriptor is still there (the kernel's exit_mm runs with the
  // file table intact), though the exiting process can add none.
  recorder.during_release = [&] {
    journal.events.push_back(p->file(fd).ok() ? "descriptor still there" : "descriptor gone");
    journal.events.push_back(p->install(journal.file("late")).ok() ? "installed" : "refused");
  };
  p->exit();
  EXPECT_THAT(journal.events, ElementsAre("mm release", "descriptor still there", "refused",
                                          "close late", "close gpu"));
  EXPECT_TRUE(p->mm().exited());
  EXPECT_EQ(p->mm().mmap(kPage, Prot::kRead, MapKind::kAnonPrivate).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(p->file(fd).status().code(), absl::StatusCode::kNotFound);
  p->exit();  // a second exit does nothing
  EXPECT_EQ(journal.events.size(), 5u);
  ASSERT_TRUE(p->mm().notifiers().unregister_notifier(recorder).ok());
}

TEST(ProcessTest, AUserKeepsTheAddressSpaceAliveAndTheLastMmputTearsItDown) {
  Ref<Process> p = make_ref<Process>();
  const std::uint64_t buf = *p->mm().mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(p->mm().mmget_not_zero());  // e.g. a device walk in progress
  p->exit();
  EXPECT_FALSE(p->mm().exited()) << "a user is still there";
  EXPECT_TRUE(p->mm().cpu_write(buf, 1).ok());
  p->mm().mmput();
  EXPECT_TRUE(p->mm().exited());
  EXPECT_FALSE(p->mm().mmget_not_zero()) << "no user can come back";
}

TEST(ProcessTest, AGrabKeepsTheMemoryButNotTheAddressSpace) {
  Ref<AddressSpace> grab;
  {
    Ref<Process> p = make_ref<Process>();
    grab = p->mm().mmgrab();
    p->mm().mmget();
    p->exit();
    EXPECT_FALSE(grab->exited()) << "the mmget() user is still there";
    grab->mmput();
  }  // destroying a process that exited does nothing more
  EXPECT_TRUE(grab->exited());
  EXPECT_EQ(grab->cpu_read(0).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(grab->ref_count_for_testing(), 1u) << "only the grab is left";
  mmdrop(grab);
  EXPECT_FALSE(grab);
}

TEST(ProcessTest, DestroyingALiveProcessExitsIt) {
  Ref<AddressSpace> grab;
  {
    Ref<Process> p = make_ref<Process>();
    grab = p->mm_ref();
  }
  EXPECT_TRUE(grab->exited());
}

TEST(ProcessTest, ForkSharesFilesAndTheLastCloseRunsTheRelease) {
  Journal journal;
  Ref<Process> parent = make_ref<Process>();
  const int fd = *parent->install(journal.file("gpu"));
  Ref<Process> child = *parent->fork();
  parent->exit();
  EXPECT_TRUE(journal.events.empty()) << "the child still has the file open";
  EXPECT_FALSE(child->mm().exited()) << "the child has its own address space";
  ASSERT_TRUE(child->close(fd).ok());
  EXPECT_THAT(journal.events, ElementsAre("close gpu"));
  EXPECT_EQ(child->close(fd).code(), absl::StatusCode::kNotFound);
}

TEST(ProcessTest, APassedFileOutlivesTheProcessThatOpenedIt) {
  Journal journal;
  Ref<Process> a = make_ref<Process>();
  Ref<Process> b = make_ref<Process>();
  const int fd = *a->install(journal.file("gpu"));
  const int in_b = *a->pass_file(fd, *b);
  a->exit();
  EXPECT_TRUE(journal.events.empty());
  EXPECT_EQ(a->install(journal.file("late")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  journal.events.clear();  // the refused file closed at once
  b->exit();
  EXPECT_THAT(journal.events, ElementsAre("close gpu"));
  EXPECT_EQ(a->pass_file(in_b, *b).status().code(), absl::StatusCode::kNotFound);
}

TEST(ProcessTest, ForkOfAnExitedProcessFails) {
  Ref<Process> p = make_ref<Process>();
  p->exit();
  EXPECT_EQ(p->fork().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ProcessTest, ForkCopiesPrivateMemoryOnWriteAndSharesSharedMemory) {
  Ref<Process> parent = make_ref<Process>();
  AddressSpace& mm = parent->mm();
  const std::uint64_t priv = *mm.mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  const std::uint64_t shared = *mm.mmap(kPage, Prot::kReadWrite, MapKind::kAnonShared);
  const std::uint64_t untouched = *mm.mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(mm.cpu_write(priv, 1).ok());
  ASSERT_TRUE(mm.cpu_write(shared, 2).ok());
  Ref<Process> child = *parent->fork();
  ASSERT_TRUE(child->mm().cpu_write(priv, 10).ok());
  ASSERT_TRUE(child->mm().cpu_write(shared, 20).ok());
  ASSERT_TRUE(child->mm().cpu_write(untouched, 30).ok());
  EXPECT_EQ(*mm.cpu_read(priv), 1u);
  EXPECT_EQ(*mm.cpu_read(shared), 20u);
  EXPECT_EQ(*mm.cpu_read(untouched), 0u);
  ASSERT_TRUE(mm.cpu_write(priv, 3).ok());
  EXPECT_EQ(*child->mm().cpu_read(priv), 10u);
  // A later mapping in either does not collide with the other's addresses.
  EXPECT_NE(*mm.mmap(kPage, Prot::kRead, MapKind::kAnonPrivate), untouched);
}

}  // namespace
}  // namespace itn::hw
