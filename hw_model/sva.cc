#include "hw_model/sva.h"

#include "absl/strings/str_cat.h"

#include "sync/atomic.h"

namespace itn::hw {

// The per-address-space SVA state (the kernel's io_mm / iommu_mm_data).
class IoMm : public Notifier {
 public:
  IoMm(Iommu& iommu, std::uint32_t pasid) : iommu_(iommu), pasid_(pasid) {}

  void release(NotifierDomain&) override {
    // Fence every bond's DMA; free nothing (the bonds still name this IoMm and its PASID).
    // Idempotent, though the domain delivers it once. Release: pairs with released().
    if (!released_.exchange(true, std::memory_order_release)) iommu_.trace("release", pasid_);
  }
  bool released() const { return released_.load(std::memory_order_acquire); }
  std::uint32_t pasid() const { return pasid_; }
  Iommu& iommu() const { return iommu_; }

 private:
  Iommu& iommu_;
  const std::uint32_t pasid_;
  Atomic<bool> released_{false};
};

namespace {

absl::StatusOr<Notifier*> alloc_io_mm(NotifierDomain&, void* priv) {
  Iommu& iommu = *static_cast<Iommu*>(priv);
  absl::StatusOr<std::uint32_t> pasid = iommu.alloc_pasid();
  if (!pasid.ok()) return pasid.status();  // get_notifier() returns it unchanged
  return new IoMm(iommu, *pasid);          // complete before the domain publishes it
}

void free_io_mm(Notifier* n) {
  // After the last put and a grace period: nothing names the PASID any more (I20).
  auto* io_mm = static_cast<IoMm*>(n);
  io_mm->iommu().free_pasid(io_mm->pasid());
  io_mm->iommu().trace("free", io_mm->pasid());
  delete io_mm;
}

constexpr NotifierOps kIoMmOps{&alloc_io_mm, &free_io_mm};

}  // namespace

absl::StatusOr<Ref<SvaBond>> SvaDevice::bind(Process& process) {
  absl::StatusOr<Notifier*> n = process.mm().notifiers().get_notifier(&kIoMmOps, &iommu_);
  if (absl::IsResourceExhausted(n.status())) return n.status();  // no PASID left
  if (!n.ok()) return absl::FailedPreconditionError(absl::StrCat("bind: ", n.status().message()));
  auto& io_mm = static_cast<IoMm&>(**n);
  iommu_.trace("bind", io_mm.pasid());
  return make_ref<SvaBond>(process.mm_ref(), io_mm, iommu_, io_mm.pasid());
}

SvaBond::~SvaBond() {
  bool bound;
  {
    MutexLock l(mu_);
    bound = bound_;
  }
  if (bound) (void)unbind();
}

absl::Status SvaBond::check_dma_locked(const char* what) const {
  if (!bound_) return absl::FailedPreconditionError(absl::StrCat(what, ": the bond is unbound"));
  if (io_mm_.released()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": the address space exited; DMA is fenced until unbind"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::uint64_t> SvaBond::dma_read(std::uint64_t addr) {
  MutexLock l(mu_);
  if (absl::Status s = check_dma_locked("dma_read"); !s.ok()) return s;
  return mm_->cpu_read(addr);  // the IOMMU walks the CPU's page tables
}

absl::Status SvaBond::dma_write(std::uint64_t addr, std::uint64_t value) {
  MutexLock l(mu_);
  if (absl::Status s = check_dma_locked("dma_write"); !s.ok()) return s;
  return mm_->cpu_write(addr, value);
}

absl::Status SvaBond::unbind() {
  {
    MutexLock l(mu_);  // waits for DMA in flight
    if (!bound_) return absl::FailedPreconditionError("unbind: already unbound");
    bound_ = false;
  }
  iommu_.trace("unbind", pasid_);
  ITN_CHECK_OK(mm_->notifiers().put_notifier(io_mm_), "bind() took a use");
  return absl::OkStatus();
}

bool SvaBond::mm_released() const {
  MutexLock l(mu_);
  ITN_CHECK(bound_, "SvaBond::mm_released() after unbind (the IoMm may be freed)");
  return io_mm_.released();
}

}  // namespace itn::hw
