// SVA bonds (seeds 000, 001, 003): one IoMm and PASID per address space shared by every
// bond, the PASID freed only after the last unbind and a grace period, and process exit
// releasing the mm before the device file closes (R6, R7, I20).
#include "hw_model/sva.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace itn::hw {
namespace {

using ::testing::ElementsAre;

constexpr std::uint64_t kPage = kPageSize;

struct Trace {
  std::vector<std::string> events;
  Iommu::Trace callback() {
    return [this](std::string_view event, std::uint32_t pasid) {
      events.push_back(absl::StrCat(std::string(event), " ", pasid));
    };
  }
};

TEST(SvaTest, TwoDevicesShareOneIoMmAndPasidFreedAfterBothUnbindsAndAGracePeriod) {
  Trace trace;
  Iommu iommu(/*max_pasids=*/16, trace.callback());
  SvaDevice gpu(iommu), nic(iommu);
  Ref<Process> p = make_ref<Process>();
  Ref<SvaBond> a = *gpu.bind(*p);
  Ref<SvaBond> b = *nic.bind(*p);
  EXPECT_EQ(a->pasid(), b->pasid());
  const std::uint32_t pasid = a->pasid();
  const std::uint64_t buf = *p->mm().mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(a->dma_write(buf, 5).ok());
  EXPECT_EQ(*b->dma_read(buf), 5u);
  EXPECT_EQ(*p->mm().cpu_read(buf), 5u);

  ASSERT_TRUE(a->unbind().ok());
  p->mm().notifiers().barrier();
  EXPECT_TRUE(iommu.pasid_in_use(pasid)) << "the other bond still names it";
  EXPECT_EQ(a->dma_read(buf).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(a->unbind().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(b->unbind().ok());
  p->mm().notifiers().barrier();  // free_notifier runs after a grace period
  EXPECT_FALSE(iommu.pasid_in_use(pasid));
  const std::string id = absl::StrCat(pasid);
  EXPECT_THAT(trace.events, ElementsAre("bind " + id, "bind " + id, "unbind " + id, "unbind " + id,
                                        "free " + id));
  EXPECT_EQ(*iommu.alloc_pasid(), pasid) << "lowest free first: it is reusable now";
}

TEST(SvaTest, ProcessExitReleasesBeforeTheFileClosesAndThePasidOutlivesItR6) {
  Trace trace;
  Iommu iommu(16, trace.callback());
  SvaDevice accel(iommu);
  Ref<Process> p = make_ref<Process>();
  Ref<SvaBond> bond = *accel.bind(*p);
  const std::uint32_t pasid = bond->pasid();
  const std::uint64_t buf = *p->mm().mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(bond->dma_write(buf, 1).ok());

  // The device file's release: what a driver does on close, with checks of the window
  // between mm release and unbind.
  absl::Status dma_in_window;
  std::uint32_t other_pasid = 0;
  Ref<Process> other = make_ref<Process>();
  Ref<SvaBond> other_bond;
  auto on_close = [&] {
    EXPECT_TRUE(bond->mm_released()) << "exit_mm runs before exit_files";
    dma_in_window = bond->dma_write(buf, 2).ok() ? absl::OkStatus() : bond->dma_read(buf).status();
    other_bond = *accel.bind(*other);  // a new PASID must not be the one still held
    other_pasid = other_bond->pasid();
    EXPECT_TRUE(bond->unbind().ok());
  };
  ASSERT_TRUE(p->install(make_ref<OpenFile>("accel", on_close)).ok());
  p->exit();

  EXPECT_EQ(dma_in_window.code(), absl::StatusCode::kFailedPrecondition) << dma_in_window;
  EXPECT_NE(other_pasid, pasid) << "R6: PASID reused while a bond still held it";
  p->mm().notifiers().barrier();
  EXPECT_FALSE(iommu.pasid_in_use(pasid));
  const std::string id = absl::StrCat(pasid), other_id = absl::StrCat(other_pasid);
  EXPECT_THAT(trace.events, ElementsAre("bind " + id, "release " + id, "bind " + other_id,
                                        "unbind " + id, "free " + id));
  ASSERT_TRUE(other_bond->unbind().ok());
}

TEST(SvaTest, ReleaseIsDeliveredOnceR7) {
  Trace trace;
  Iommu iommu(16, trace.callback());
  SvaDevice accel(iommu);
  Ref<Process> p = make_ref<Process>();
  Ref<SvaBond> bond = *accel.bind(*p);
  p->exit();
  p->mm().notifiers().release();  // a second teardown attempt
  ASSERT_TRUE(bond->unbind().ok());
  p->mm().notifiers().barrier();
  const std::string id = absl::StrCat(bond->pasid());
  EXPECT_THAT(trace.events,
              ElementsAre("bind " + id, "release " + id, "unbind " + id, "free " + id));
}

TEST(SvaTest, BindFailsClearlyAfterExitOrWithoutPasids) {
  Iommu iommu(/*max_pasids=*/1);
  SvaDevice accel(iommu);
  Ref<Process> p = make_ref<Process>();
  Ref<Process> q = make_ref<Process>();
  Ref<SvaBond> bond = *accel.bind(*p);
  EXPECT_EQ(accel.bind(*q).status().code(), absl::StatusCode::kResourceExhausted);
  Ref<SvaBond> again = *accel.bind(*p);  // same address space: same IoMm, no new PASID
  EXPECT_EQ(again->pasid(), bond->pasid());
  ASSERT_TRUE(again->unbind().ok());
  q->exit();
  EXPECT_EQ(accel.bind(*q).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(bond->unbind().ok());
}

TEST(SvaTest, DroppingABondUnbindsIt) {
  Iommu iommu(16);
  SvaDevice accel(iommu);
  Ref<Process> p = make_ref<Process>();
  std::uint32_t pasid;
  {
    Ref<SvaBond> bond = *accel.bind(*p);
    pasid = bond->pasid();
  }
  p->mm().notifiers().barrier();
  EXPECT_FALSE(iommu.pasid_in_use(pasid));
}

}  // namespace
}  // namespace itn::hw
