// sva_exit_ordering: what an SVA driver sees when the process it serves exits.
//
// Two devices bind one process: they share its IoMm and its PASID. The process exits in
// the kernel's do_exit() order: exit_mm first (the address space dies and the IoMm hears
// release()), exit_files after (the device file's last close runs the driver's release,
// which unbinds). Here the process forked before exiting, so its child still holds the
// device file and the window between release and unbind stays open for as long as the
// child wants. Inside that window DMA fails, and a PASID allocated by another process
// differs from the dying one: the PASID is freed only after the last unbind and a grace
// period (NotifierDomain::barrier()). The Iommu's trace prints each lifetime event.
//
//   sva_exit_ordering
//
// Exit status: 0 if the events came in the expected order, 1 otherwise.
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

#include "hw_model/iommu.h"
#include "hw_model/process.h"
#include "hw_model/sva.h"

namespace {

// The events of the dying PASID, in the order they happened ("close" is the device file's
// last close, recorded by the driver).
class EventLog {
 public:
  void add(std::string_view event, std::uint32_t pasid) {
    std::lock_guard<std::mutex> l(mu_);  // the trace may be called from the SRCU worker
    std::printf("      iommu: %-7s pasid %u\n", std::string(event).c_str(), pasid);
    if (pasid == watched_) events_.emplace_back(event);
  }
  void watch(std::uint32_t pasid) {
    std::lock_guard<std::mutex> l(mu_);
    watched_ = pasid;
  }
  void mark(std::string_view event) {
    std::lock_guard<std::mutex> l(mu_);
    events_.emplace_back(event);
  }
  std::string sequence() {
    std::lock_guard<std::mutex> l(mu_);
    std::string out;
    for (const std::string& e : events_) out += (out.empty() ? "" : " ") + e;
    return out;
  }

 private:
  std::mutex mu_;
  std::uint32_t watched_ = 1;  // the lowest free PASID: the first bind gets it
  std::vector<std::string> events_;
};

bool expect(bool ok, const char* what) {
  std::printf("    %-6s %s\n", ok ? "ok" : "WRONG", what);
  return ok;
}

}  // namespace

int main() {
  EventLog log;
  itn::hw::Iommu iommu(/*max_pasids=*/16,
                       [&](std::string_view e, std::uint32_t p) { log.add(e, p); });
  itn::hw::SvaDevice accel(iommu), dsp(iommu);
  bool ok = true;
  std::printf("sva_exit_ordering: two devices share a process's PASID; the process exits\n");

  std::printf(" 1. process A maps a buffer; devices accel and dsp bind to it\n");
  itn::Ref<itn::hw::Process> a = itn::make_ref<itn::hw::Process>();
  const std::uint64_t buf =
      a->mm()
          .mmap(itn::hw::kPageSize, itn::hw::Prot::kReadWrite, itn::hw::MapKind::kAnonPrivate)
          .value();
  itn::Ref<itn::hw::SvaBond> accel_bond = accel.bind(*a).value();
  itn::Ref<itn::hw::SvaBond> dsp_bond = dsp.bind(*a).value();
  const std::uint32_t pasid = accel_bond->pasid();
  log.watch(pasid);
  ok &= expect(dsp_bond->pasid() == pasid, "both bonds use the same PASID (one IoMm per mm)");
  ok &= expect(accel_bond->dma_write(buf, 42).ok() && dsp_bond->dma_read(buf).value_or(0) == 42,
               "accel DMA-writes 42, dsp DMA-reads 42");

  std::printf(" 2. A opens /dev/accel, whose last close unbinds both bonds, and forks B\n");
  auto driver_release = [&, bonds = std::vector{accel_bond, dsp_bond}] {
    std::printf("    /dev/accel: last close; the driver's release unbinds both bonds\n");
    log.mark("close");
    for (const itn::Ref<itn::hw::SvaBond>& bond : bonds) (void)bond->unbind();
  };
  const int fd = a->install(itn::make_ref<itn::hw::OpenFile>("/dev/accel", driver_release)).value();
  itn::Ref<itn::hw::Process> b = a->fork().value();  // B inherits the descriptor

  std::printf(" 3. A exits: exit_mm, then exit_files (B still holds /dev/accel)\n");
  a->exit();

  std::printf(" 4. between release and unbind\n");
  const absl::Status dma = accel_bond->dma_write(buf, 7);
  std::printf("    accel dma_write: %s\n", dma.ToString().c_str());
  std::printf("    dsp dma_read:    %s\n", dsp_bond->dma_read(buf).status().ToString().c_str());
  ok &= expect(absl::IsFailedPrecondition(dma), "DMA is fenced");
  ok &= expect(accel_bond->mm_released() && dsp_bond->mm_released(),
               "both bonds report mm_released()");
  std::printf("    B binds accel to its own address space:\n");
  itn::Ref<itn::hw::SvaBond> b_bond = accel.bind(*b).value();
  ok &= expect(b_bond->pasid() != pasid && iommu.pasid_in_use(pasid),
               "B gets another PASID: A's is still allocated");

  std::printf(" 5. B closes its descriptor of /dev/accel\n");
  ok &= expect(b->close(fd).ok(), "closed");
  accel_bond.reset();  // the file (and the references its release held) is gone: these
  dsp_bond.reset();    // were the last ones, and the bonds are unbound already

  std::printf(" 6. NotifierDomain::barrier() on A's address space\n");
  a->mm().notifiers().barrier();  // the IoMm (and its PASID) is freed a grace period on
  ok &= expect(!iommu.pasid_in_use(pasid), "A's PASID is free");

  std::printf(" 7. B unbinds and exits\n");
  (void)b_bond->unbind();
  b->exit();
  b->mm().notifiers().barrier();  // the Iommu must outlive every IoMm

  const std::string seq = log.sequence();
  std::printf("events of PASID %u: %s\n", pasid, seq.c_str());
  ok &= seq == "bind bind release close unbind unbind free";
  std::printf("%s\n", ok ? "OK: release, then close and unbind, then free"
                         : "FAILED: expected bind bind release close unbind unbind free");
  return ok ? 0 : 1;
}
