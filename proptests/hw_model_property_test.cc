// L1: the whole simulated machine (hw_model/) against the serial model
// (testing/memory_model.h), as RapidCheck command sequences: processes created,
// forked and exited; anonymous private, anonymous shared and file-backed shared mappings
// (Files shared across processes) mapped, unmapped (partly, across holes) and
// re-protected; CPU reads and writes; mirror devices opened and closed, faulting, reading
// and writing through their page tables, migrating pages to and from their memory, taking
// exclusive access and taking snapshots; SVA bonds bound, unbound and doing DMA; HMM
// mirrors registered and unregistered. Every call's status code and result must match the
// model, and after every command check_machine() (proptests/hw_model_machine.h) checks
// I17 (device page tables agree with the CPU's; exclusive access is respected), I19 (every
// page's status, word, memory and exclusive owner are the model's; fork keeps parent and
// child apart) and I20 (what an exited process leaves behind; PASIDs).
// Every call is serial: nothing here waits for another thread. Defaults: 300 sequences
// (see CMakeLists.txt for the size); replay a failure with the RC_PARAMS it prints.
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

#include "hw_model/address_space.h"
#include "hw_model/hmm.h"
#include "hw_model/memory.h"
#include "hw_model/mirror_device.h"
#include "hw_model/process.h"
#include "hw_model/sva.h"
#include "hw_model/testing/radix_page_table.h"
#include "proptests/hw_model_machine.h"
#include "testing/memory_model.h"
#include "rapidcheck.h"

namespace itn::hw_model_test {
namespace {

using hw::MapKind;
using hw::PageSnapshot;
using models::kSystemRam;
using models::Migration;

// Processes ----------------------------------------------------------------------------

struct NewProcess : Command {
  void checkPreconditions(const MemoryModel& m) const override { require(room_for_process(m)); }
  void apply(MemoryModel& m) const override { m.new_process(); }
  void run(const MemoryModel& m, Sut& sut) const override {
    sut.procs.push_back(make_ref<hw::Process>());
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "new process"; }
};

struct Fork : Command {
  int p;
  explicit Fork(const MemoryModel& m) : p(pick_process(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(p < static_cast<int>(m.procs.size()) && room_for_process(m));
  }
  void apply(MemoryModel& m) const override { (void)m.fork(p); }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    const StatusCode want = next.fork(p);
    absl::StatusOr<Ref<hw::Process>> child = sut.procs[p]->fork();
    expect_code(child.status(), want, "fork");
    if (child.ok()) sut.procs.push_back(*std::move(child));
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override { os << "fork p" << p; }
};

// The OOM reaper: between commands no driver lock is held, so nothing refuses.
struct Reap : Command {
  int p;
  explicit Reap(const MemoryModel& m) : p(pick_process(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(p < static_cast<int>(m.procs.size()));
  }
  void apply(MemoryModel& m) const override { (void)m.reap(p); }
  void run(const MemoryModel& m, Sut& sut) const override {
    absl::StatusOr<std::uint64_t> skipped = sut.procs[p]->mm().reap();
    expect_code(skipped.status(),
                m.procs[p].alive ? StatusCode::kOk : StatusCode::kFailedPrecondition, "reap");
    if (skipped.ok()) expect(*skipped == 0, "reap: a VMA was refused with no driver lock held");
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "reap p" << p; }
};

struct Exit : Command {
  int p;
  explicit Exit(const MemoryModel& m) : p(pick_process(m)) {}
  // Some process stays alive, or the rest of the sequence could only fail.
  void checkPreconditions(const MemoryModel& m) const override {
    require(p < static_cast<int>(m.procs.size()));
    int others_alive = 0;
    for (int q = 0; q < static_cast<int>(m.procs.size()); ++q) {
      if (q != p && m.procs[q].alive) ++others_alive;
    }
    require(others_alive > 0);
  }
  void apply(MemoryModel& m) const override { m.exit(p); }
  void run(const MemoryModel& m, Sut& sut) const override {
    sut.procs[p]->exit();
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "exit p" << p; }
};

// Mappings -----------------------------------------------------------------------------

struct Mmap : Command {
  int p;
  std::uint64_t pages = *rc::gen::inRange<std::uint64_t>(1, 5);
  std::uint64_t short_by = *rc::gen::element(std::uint64_t{0}, std::uint64_t{0}, std::uint64_t{1},
                                             kPage - 1);  // rounds up
  Prot prot =
      *rc::gen::weightedElement<Prot>({{6, Prot::kReadWrite}, {2, Prot::kRead}, {1, Prot::kNone}});
  MapKind kind = *rc::gen::weightedElement<MapKind>({{5, MapKind::kAnonPrivate},
                                                     {1, MapKind::kAnonShared},
                                                     {2, MapKind::kFileShared},
                                                     {1, MapKind::kFilePrivate}});
  int file = *rc::gen::inRange(0, kFiles);
  std::uint64_t file_page = *rc::gen::inRange<std::uint64_t>(0, 4);
  explicit Mmap(const MemoryModel& m) : p(pick_process(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(p < static_cast<int>(m.procs.size()));
  }
  StatusCode model(MemoryModel& m, std::uint64_t* addr) const {
    return m.mmap(p, pages, prot, kind, file, file_page * kPage, addr);
  }
  void apply(MemoryModel& m) const override {
    std::uint64_t addr = 0;
    (void)model(m, &addr);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    std::uint64_t want_addr = 0;
    const StatusCode want = model(next, &want_addr);
    const bool file_backed = kind == MapKind::kFileShared || kind == MapKind::kFilePrivate;
    absl::StatusOr<std::uint64_t> addr = sut.procs[p]->mm().mmap(
        pages * kPage - short_by, prot, kind, file_backed ? sut.files[file] : nullptr,
        file_backed ? file_page * kPage : 0);
    expect_code(addr.status(), want, "mmap");
    if (addr.ok()) {
      expect(*addr == want_addr,
             absl::StrCat("mmap returned ", hex(*addr), ", the model predicts ", hex(want_addr)));
    }
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    os << "mmap p" << p << " " << pages << " pages " << prot_name(prot) << " "
       << (kind == MapKind::kAnonPrivate  ? "private"
           : kind == MapKind::kAnonShared ? "shared"
           : kind == MapKind::kFileShared ? "file"
                                          : "file-private")
       << (kind == MapKind::kFileShared || kind == MapKind::kFilePrivate
               ? absl::StrCat(" #", file, "@", file_page)
               : "");
  }
};

struct Munmap : Command {
  Spot spot;
  std::uint64_t pages;
  explicit Munmap(const MemoryModel& m)
      : spot(pick_spot(m, pick_process(m))), pages(pick_pages(m, spot, 6)) {}
  void checkPreconditions(const MemoryModel& m) const override { require(spot.valid(m)); }
  void apply(MemoryModel& m) const override {
    (void)m.munmap(spot.process, spot.addr(m), pages * kPage);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    const StatusCode want = next.munmap(spot.process, spot.addr(m), pages * kPage);
    expect_code(sut.procs[spot.process]->mm().munmap(spot.addr(m), pages * kPage), want, "munmap");
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override { os << "munmap " << spot << " " << pages; }
};

// To another spot of the process (unmapping what is there), or to fresh addresses past
// its mappings.
struct Mremap : Command {
  Spot spot;
  std::uint64_t pages;
  Spot to;
  bool fresh = *rc::gen::arbitrary<bool>();
  std::uint64_t gap = *rc::gen::inRange<std::uint64_t>(0, 3);  // pages past next_addr, if fresh
  bool keep_old = *rc::gen::inRange(0, 4) == 0;
  explicit Mremap(const MemoryModel& m)
      : spot(pick_spot(m, pick_process(m))),
        pages(pick_pages(m, spot, 3)),
        to(pick_spot(m, spot.process)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(spot.valid(m) && to.valid(m));
  }
  std::uint64_t new_addr(const MemoryModel& m) const {
    return fresh ? m.procs[spot.process].next_addr + gap * kPage : to.addr(m);
  }
  void apply(MemoryModel& m) const override {
    (void)m.mremap(spot.process, spot.addr(m), pages * kPage, new_addr(m), keep_old);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    const StatusCode want =
        next.mremap(spot.process, spot.addr(m), pages * kPage, new_addr(m), keep_old);
    expect_code(
        sut.procs[spot.process]->mm().mremap(spot.addr(m), pages * kPage, new_addr(m), keep_old),
        want, "mremap");
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    os << "mremap " << spot << " " << pages << " to ";
    if (fresh) {
      os << "next_addr+" << gap;
    } else {
      os << to;
    }
    if (keep_old) os << " keeping the old range";
  }
};

struct Mprotect : Command {
  Spot spot;
  std::uint64_t pages;
  Prot prot = *rc::gen::element(Prot::kNone, Prot::kRead, Prot::kReadWrite);
  explicit Mprotect(const MemoryModel& m)
      : spot(pick_spot(m, pick_process(m))), pages(pick_pages(m, spot, 4)) {}
  void checkPreconditions(const MemoryModel& m) const override { require(spot.valid(m)); }
  void apply(MemoryModel& m) const override {
    (void)m.mprotect(spot.process, spot.addr(m), pages * kPage, prot);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    const StatusCode want = next.mprotect(spot.process, spot.addr(m), pages * kPage, prot);
    expect_code(sut.procs[spot.process]->mm().mprotect(spot.addr(m), pages * kPage, prot), want,
                "mprotect");
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    os << "mprotect " << spot << " " << pages << " " << prot_name(prot);
  }
};

struct Madvise : Command {
  Spot spot;
  std::uint64_t pages;
  hw::Advice advice = *rc::gen::element(hw::Advice::kHugePage, hw::Advice::kNoHugePage,
                                        hw::Advice::kFree, hw::Advice::kFree);
  explicit Madvise(const MemoryModel& m)
      : spot(pick_spot(m, pick_process(m))), pages(pick_pages(m, spot, 4)) {}
  void checkPreconditions(const MemoryModel& m) const override { require(spot.valid(m)); }
  void apply(MemoryModel& m) const override {
    (void)m.madvise(spot.process, spot.addr(m), pages * kPage, advice);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    const StatusCode want = next.madvise(spot.process, spot.addr(m), pages * kPage, advice);
    expect_code(sut.procs[spot.process]->mm().madvise(spot.addr(m), pages * kPage, advice), want,
                "madvise");
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    os << "madvise " << spot << " " << pages << " "
       << (advice == hw::Advice::kFree       ? "free"
           : advice == hw::Advice::kHugePage ? "hugepage"
                                             : "nohugepage");
  }
};

// CPU ----------------------------------------------------------------------------------

struct CpuAccess : Command {
  Spot spot;
  bool write = *rc::gen::arbitrary<bool>();
  std::uint64_t value = *rc::gen::inRange<std::uint64_t>(1, 1000);
  explicit CpuAccess(const MemoryModel& m) : spot(pick_spot(m, pick_process(m))) {}
  void checkPreconditions(const MemoryModel& m) const override { require(spot.valid(m)); }
  StatusCode model(MemoryModel& m, std::uint64_t* word) const {
    return m.cpu_access(spot.process, spot.addr(m), write, value, word);
  }
  void apply(MemoryModel& m) const override {
    std::uint64_t word = 0;
    (void)model(m, &word);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    std::uint64_t want_word = 0;
    const StatusCode want = model(next, &want_word);
    hw::AddressSpace& mm = sut.procs[spot.process]->mm();
    if (write) {
      expect_code(mm.cpu_write(spot.addr(m), value), want, "cpu_write");
    } else {
      const absl::StatusOr<std::uint64_t> got = mm.cpu_read(spot.addr(m));
      expect_code(got.status(), want, "cpu_read");
      if (got.ok()) {
        expect(*got == want_word,
               absl::StrCat("cpu_read returned ", *got, ", the model says ", want_word));
      }
    }
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    if (write) {
      os << "cpu_write " << spot << " = " << value;
    } else {
      os << "cpu_read " << spot;
    }
  }
};

// Mirror devices -----------------------------------------------------------------------

struct PinUserPages : Command {
  Spot spot;
  std::uint64_t pages;
  bool write = *rc::gen::arbitrary<bool>();
  bool long_term = *rc::gen::arbitrary<bool>();
  explicit PinUserPages(const MemoryModel& m)
      : spot(pick_spot(m, pick_process(m))), pages(pick_pages(m, spot, 4)) {}
  void checkPreconditions(const MemoryModel& m) const override { require(spot.valid(m)); }
  void apply(MemoryModel& m) const override {
    std::vector<std::uint64_t> words;
    (void)m.pin(spot.process, spot.addr(m), pages, write, long_term, &words);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    std::vector<std::uint64_t> want_words;
    const StatusCode want =
        next.pin(spot.process, spot.addr(m), pages, write, long_term, &want_words);
    // The caller drops the pins at once.
    absl::StatusOr<std::vector<Ref<hw::Frame>>> frames =
        sut.procs[spot.process]->mm().pin_user_pages(
            spot.addr(m), pages * kPage, write,
            long_term ? hw::AddressSpace::Pin::kLongTerm : hw::AddressSpace::Pin::kShortTerm);
    expect_code(frames.status(), want, "pin_user_pages");
    if (frames.ok()) {
      for (std::size_t i = 0; i < frames->size(); ++i) {
        expect((*frames)[i]->read() == want_words[i],
               absl::StrCat("pinned page ", i, " holds ", (*frames)[i]->read(), ", the model ",
                            want_words[i]));
        expect(!long_term || (*frames)[i]->device() == nullptr,
               absl::StrCat("long-term pinned page ", i, " is in device memory"));
        absl::StatusOr<hw::PageEntry> mapped =
            sut.procs[spot.process]->mm().lookup(spot.addr(m) + i * kPage);
        expect(mapped.ok() && mapped->frame.get() == (*frames)[i].get(),
               absl::StrCat("pinned page ", i, " is not the frame mapped there"));
      }
    }
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    os << "pin " << spot << " " << pages << (write ? " write" : " read")
       << (long_term ? " long-term" : "");
  }
};

// As a file (open_file), the device is shared by fork children and closed by the last
// close of its descriptor, exit()'s included.
struct OpenDevice : Command {
  int p;
  bool coherent = *rc::gen::arbitrary<bool>();
  std::uint64_t chunk_pages = *rc::gen::element<std::uint64_t>(0, 1, 4);  // 0: whole space
  bool as_file = *rc::gen::arbitrary<bool>();
  bool radix = *rc::gen::arbitrary<bool>();  // the test's own page table format, or the B-tree
  explicit OpenDevice(const MemoryModel& m) : p(pick_process(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(p < static_cast<int>(m.procs.size()) && room_for_device(m));
  }
  void apply(MemoryModel& m) const override {
    if (!m.procs[p].alive) return;
    m.devices.push_back(
        models::MDevice{.process = p, .coherent = coherent, .file = as_file, .holders = {}});
    if (as_file) m.devices.back().holders.insert(p);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    const hw::MirrorOptions options{
        .memory = coherent ? hw::DeviceMemory::kCoherent : hw::DeviceMemory::kPrivate,
        .notifier_chunk_pages = chunk_pages};
    const StatusCode want = m.procs[p].alive ? StatusCode::kOk : StatusCode::kFailedPrecondition;
    auto table = [this]() -> std::unique_ptr<hw::DevicePageTable> {
      if (radix) return std::make_unique<hw::testing::RadixPageTable>();
      return nullptr;
    };
    if (as_file) {
      absl::StatusOr<int> fd = hw::MirrorDevice::open_file(*sut.procs[p], options, table());
      expect_code(fd.status(), want, "open_file");
      if (fd.ok()) {
        sut.devices.push_back(hw::MirrorDevice::from_file(*sut.procs[p], *fd)->device());
        sut.device_fds.push_back(*fd);
      }
    } else {
      absl::StatusOr<Ref<hw::MirrorDevice>> d =
          hw::MirrorDevice::open(*sut.procs[p], options, table());
      expect_code(d.status(), want, "open");
      if (d.ok()) {
        sut.devices.push_back(*std::move(d));
        sut.device_fds.push_back(-1);
      }
    }
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override {
    os << "open " << (coherent ? "coherent" : "private") << " device on p" << p;
    if (as_file) os << " as a file";
    if (radix) os << " over a radix page table";
    if (chunk_pages != 0) os << " (a notifier per " << chunk_pages << " pages)";
  }
};

// A file device: the opener closes its descriptor (children may still hold theirs).
struct CloseDevice : Command {
  int d;
  explicit CloseDevice(const MemoryModel& m) : d(pick_device(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(d < static_cast<int>(m.devices.size()));
  }
  void apply(MemoryModel& m) const override {
    if (m.devices[d].file) {
      (void)m.drop_descriptor(d, m.devices[d].process);
    } else {
      m.close_device(d);
    }
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    if (m.devices[d].file) {
      MemoryModel next = m;
      const StatusCode want = next.drop_descriptor(d, m.devices[d].process);
      expect_code(sut.procs[m.devices[d].process]->close(sut.device_fds[d]), want, "close(fd)");
      check_machine(next, sut);
      return;
    }
    sut.devices[d]->close();
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override {
    os << "close device " << d << " (its descriptor, if a file)";
  }
};

// Base of the commands a device runs on its own process's pages.
struct DeviceCommand : Command {
  int d;
  Spot spot;
  std::uint64_t pages;
  explicit DeviceCommand(const MemoryModel& m)
      : d(pick_device(m)),
        spot(pick_spot(m, m.devices[d].process)),
        pages(pick_pages(m, spot, 3)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(d < static_cast<int>(m.devices.size()) && spot.valid(m) &&
            spot.process == m.devices[d].process);
  }
};

struct RangeFault : DeviceCommand {
  bool write = *rc::gen::arbitrary<bool>();
  using DeviceCommand::DeviceCommand;
  void apply(MemoryModel& m) const override {
    (void)m.device_access(d, spot.addr(m), pages, write);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    const StatusCode want = next.device_access(d, spot.addr(m), pages, write);
    expect_code(sut.devices[d]->range_fault(spot.addr(m), pages * kPage, write), want,
                "range_fault");
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    os << "device " << d << " range_fault " << spot << " " << pages << (write ? " write" : "");
  }
};

struct DeviceRead : DeviceCommand {
  using DeviceCommand::DeviceCommand;
  void apply(MemoryModel& m) const override {
    (void)m.device_access(d, spot.addr(m), pages, /*write=*/false);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    const std::uint64_t addr = spot.addr(m);
    const StatusCode want = next.device_access(d, addr, pages, /*write=*/false);
    const absl::StatusOr<std::vector<std::uint64_t>> got = sut.devices[d]->read(addr, pages);
    expect_code(got.status(), want, "device read");
    if (got.ok()) {
      expect(got->size() == pages, "device read: wrong number of words");
      for (std::uint64_t i = 0; i < pages; ++i) {
        const std::uint64_t model_word = next.word(spot.process, addr + i * kPage);
        expect((*got)[i] == model_word,
               absl::StrCat("device read of ", hex(addr + i * kPage), " returned ", (*got)[i],
                            ", the model says ", model_word));
      }
    }
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    os << "device " << d << " read " << spot << " " << pages;
  }
};

struct DeviceWrite : DeviceCommand {
  std::vector<std::uint64_t> words;  // one per page
  explicit DeviceWrite(const MemoryModel& m)
      : DeviceCommand(m),
        words(*rc::gen::container<std::vector<std::uint64_t>>(
            pages, rc::gen::inRange<std::uint64_t>(1000, 2000))) {}
  void apply(MemoryModel& m) const override {
    (void)m.device_access(d, spot.addr(m), words.size(), /*write=*/true, words);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    const StatusCode want = next.device_access(d, spot.addr(m), words.size(), true, words);
    expect_code(sut.devices[d]->write(spot.addr(m), words), want, "device write");
    check_machine(next, sut);  // the written words are now in the CPU's frames
  }
  void show(std::ostream& os) const override {
    os << "device " << d << " write " << spot << " =";
    for (std::uint64_t w : words) os << " " << w;
  }
};

struct Migrate : DeviceCommand {
  Migration kind =
      *rc::gen::element(Migration::kToDevice, Migration::kToSystem, Migration::kExclusive);
  hw::Moves moves = *rc::gen::element(hw::Moves::kAllOrNothing, hw::Moves::kWhatItCan);
  using DeviceCommand::DeviceCommand;
  void apply(MemoryModel& m) const override {
    (void)m.migrate(d, kind, spot.addr(m), pages, moves);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    std::vector<hw::PageOutcome> want_outcomes;
    const StatusCode want = next.migrate(d, kind, spot.addr(m), pages, moves, &want_outcomes);
    hw::MirrorDevice& dev = *sut.devices[d];
    const std::uint64_t addr = spot.addr(m);
    absl::StatusOr<hw::MirrorDevice::Outcomes> got;
    switch (kind) {
      case Migration::kToDevice:
        got = dev.migrate_to_device(addr, pages * kPage, moves);
        break;
      case Migration::kToSystem:
        got = dev.migrate_to_system(addr, pages * kPage, moves);
        break;
      case Migration::kExclusive:
        got = dev.make_exclusive(addr, pages * kPage, moves);
        break;
    }
    expect_code(got.status(), want, "migrate");
    if (got.ok()) RC_ASSERT(*got == want_outcomes);
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    os << "device " << d << " "
       << (kind == Migration::kToDevice   ? "migrate_to_device "
           : kind == Migration::kToSystem ? "migrate_to_system "
                                          : "make_exclusive ")
       << spot << " " << pages << (moves == hw::Moves::kWhatItCan ? " what it can" : "");
  }
};

struct Snapshot : DeviceCommand {
  using DeviceCommand::DeviceCommand;
  void apply(MemoryModel&) const override {}
  void run(const MemoryModel& m, Sut& sut) const override {
    const std::uint64_t addr = spot.addr(m);
    const std::vector<PageSnapshot> got = sut.devices[d]->snapshot(addr, pages);
    expect(got.size() == pages, "snapshot: wrong number of pages");
    for (std::uint64_t i = 0; i < pages; ++i) {
      const std::uint64_t at = addr + i * kPage;
      const std::string where = absl::StrCat("snapshot of ", hex(at));
      const PageSnapshot s = got[i];
      if (m.lookup_code(spot.process, at) != StatusCode::kOk) {
        expect(s == PageSnapshot::kError, where + ": not kError");
        continue;
      }
      const int holder = m.device_of(spot.process, at);
      const auto either = [&](PageSnapshot kind) {
        return s == (kind | PageSnapshot::kRead) || s == (kind | PageSnapshot::kWrite);
      };
      if (holder != kSystemRam && m.devices[holder].coherent) {
        expect(either(holder == d ? PageSnapshot::kDeviceCoherentLocal
                                  : PageSnapshot::kDeviceCoherentRemote),
               where + ": a coherent device page not reported as one");
      } else if (holder == d) {
        expect(either(PageSnapshot::kDevicePrivateLocal), where + ": not kDevicePrivateLocal");
      } else if (holder != kSystemRam) {
        expect(s == PageSnapshot::kNone, where + ": another device's private page not kNone");
      } else {
        expect(s == PageSnapshot::kNone || s == PageSnapshot::kRead || s == PageSnapshot::kWrite ||
                   (s == (PageSnapshot::kZero | PageSnapshot::kRead) &&
                    m.is_private(spot.process, at) && m.word(spot.process, at) == 0),
               where + ": a CPU page reported as an error, a device page or a bad zero page");
      }
    }
  }
  void show(std::ostream& os) const override {
    os << "device " << d << " snapshot " << spot << " " << pages;
  }
};

// SVA ----------------------------------------------------------------------------------

struct Bind : Command {
  int p;
  int sva = *rc::gen::inRange(0, 2);
  explicit Bind(const MemoryModel& m) : p(pick_process(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(p < static_cast<int>(m.procs.size()) && room_for_bond(m));
  }
  void apply(MemoryModel& m) const override {
    if (m.procs[p].alive) m.bonds.push_back(models::MBond{p});
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    absl::StatusOr<Ref<hw::SvaBond>> b = sut.sva(sva).bind(*sut.procs[p]);
    expect_code(b.status(), m.procs[p].alive ? StatusCode::kOk : StatusCode::kFailedPrecondition,
                "bind");
    if (b.ok()) sut.bonds.push_back(*std::move(b));
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "sva " << sva << " bind p" << p; }
};

struct Unbind : Command {
  int b;
  explicit Unbind(const MemoryModel& m) : b(pick_bond(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(b < static_cast<int>(m.bonds.size()));
  }
  void apply(MemoryModel& m) const override { m.bonds[b].bound = false; }
  void run(const MemoryModel& m, Sut& sut) const override {
    expect_code(sut.bonds[b]->unbind(),
                m.bonds[b].bound ? StatusCode::kOk : StatusCode::kFailedPrecondition, "unbind");
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "unbind " << b; }
};

struct Dma : Command {
  int b;
  Spot spot;
  bool write = *rc::gen::arbitrary<bool>();
  std::uint64_t value = *rc::gen::inRange<std::uint64_t>(2000, 3000);
  explicit Dma(const MemoryModel& m) : b(pick_bond(m)), spot(pick_spot(m, m.bonds[b].process)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(b < static_cast<int>(m.bonds.size()) && spot.valid(m) &&
            spot.process == m.bonds[b].process);
  }
  // Fenced once unbound or once the address space died; otherwise a CPU access.
  StatusCode model(MemoryModel& m, std::uint64_t* word) const {
    if (!m.bonds[b].bound || !m.procs[spot.process].alive) return StatusCode::kFailedPrecondition;
    return m.cpu_access(spot.process, spot.addr(m), write, value, word);
  }
  void apply(MemoryModel& m) const override {
    std::uint64_t word = 0;
    (void)model(m, &word);
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    std::uint64_t want_word = 0;
    const StatusCode want = model(next, &want_word);
    if (write) {
      expect_code(sut.bonds[b]->dma_write(spot.addr(m), value), want, "dma_write");
    } else {
      const absl::StatusOr<std::uint64_t> got = sut.bonds[b]->dma_read(spot.addr(m));
      expect_code(got.status(), want, "dma_read");
      if (got.ok()) {
        expect(*got == want_word,
               absl::StrCat("dma_read returned ", *got, ", the model says ", want_word));
      }
    }
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    os << "bond " << b << (write ? " dma_write " : " dma_read ") << spot;
    if (write) os << " = " << value;
  }
};

// HMM mirrors --------------------------------------------------------------------------

struct HmmRegister : Command {
  int p;
  explicit HmmRegister(const MemoryModel& m) : p(pick_process(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(p < static_cast<int>(m.procs.size()) && room_for_mirror(m));
  }
  void apply(MemoryModel& m) const override {
    if (m.procs[p].alive) m.mirrors.push_back(models::MMirror{p});
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    absl::StatusOr<Ref<hw::HmmMirror>> mirror = sut.hmm.register_mirror(*sut.procs[p]);
    expect_code(mirror.status(),
                m.procs[p].alive ? StatusCode::kOk : StatusCode::kFailedPrecondition,
                "register_mirror");
    if (mirror.ok()) sut.mirrors.push_back(*std::move(mirror));
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "hmm register_mirror p" << p; }
};

struct HmmUnregister : Command {
  int i;
  explicit HmmUnregister(const MemoryModel& m) : i(pick_mirror(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(i < static_cast<int>(m.mirrors.size()));
  }
  void apply(MemoryModel& m) const override {
    if (!m.mirrors[i].registered) return;
    m.mirrors[i].registered = false;
    m.mirrors[i].released = true;  // delivered now unless the exit did
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    expect_code(sut.mirrors[i]->unregister(),
                m.mirrors[i].registered ? StatusCode::kOk : StatusCode::kFailedPrecondition,
                "hmm unregister");
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "hmm unregister " << i; }
};

RC_GTEST_PROP(HwModelProperty, MatchesSerialModel, ()) {
  Sut sut;
  rc::state::check(
      initial_model(), sut,
      rc::state::gen::execOneOfWithArgs<
          NewProcess, Fork, Fork, Exit, Reap, Mmap, Mmap, Mmap, Mmap, Munmap, Munmap, Mremap,
          Mprotect, Mprotect, Madvise, PinUserPages, CpuAccess, CpuAccess, CpuAccess, CpuAccess,
          OpenDevice, OpenDevice, CloseDevice, RangeFault, RangeFault, DeviceRead, DeviceRead,
          DeviceRead, DeviceWrite, DeviceWrite, DeviceWrite, Migrate, Migrate, Migrate, Migrate,
          Snapshot, Bind, Unbind, Dma, Dma, HmmRegister, HmmUnregister>());
}

}  // namespace
}  // namespace itn::hw_model_test
