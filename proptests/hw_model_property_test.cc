// L1: the whole simulated machine (hw_model/) against the serial model
// (proptests/models/memory_model.h), as RapidCheck command sequences: processes created,
// forked and exited; anonymous private, anonymous shared and file-backed shared mappings
// (Files shared across processes) mapped, unmapped (partly, across holes) and
// re-protected; CPU reads and writes; mirror devices opened and closed, faulting, reading
// and writing through their page tables, migrating pages to and from their memory, taking
// exclusive access and taking snapshots; SVA bonds bound, unbound and doing DMA; HMM
// mirrors registered and unregistered. Every call's status code and result must match the
// model, and after every command:
//   I17  check_coherence() holds for every open device of a live process (the other
//        devices have no entries left), and no device keeps an entry for a page another
//        device has exclusive access to.
//   I19  every page of every live process reports the model's status on lookup, and a
//        present page's CPU frame holds the model's word, lives in the memory of the
//        device the model says and is exclusive to the device the model says: so device
//        writes are visible to the CPU and device reads (checked word by word) see the
//        CPU's data. A CPU entry is never writable where its mapping is not, and a private
//        frame mapped at two places (copy-on-write after fork, the zero page) is
//        read-only at both: fork keeps parent and child apart.
//   I20  devices, bonds and HMM mirrors of an exited process fail with
//        kFailedPrecondition or heard on_release exactly once; bound bonds share a PASID
//        exactly when they share an address space, and their PASIDs stay allocated.
// Every call is serial: nothing here waits for another thread. Defaults: 300 sequences
// (see CMakeLists.txt for the size); replay a failure with the RC_PARAMS it prints.
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"
#include "rapidcheck/state.h"

#include "hw_model/address_space.h"
#include "hw_model/coherence.h"
#include "hw_model/hmm.h"
#include "hw_model/iommu.h"
#include "hw_model/memory.h"
#include "hw_model/mirror_device.h"
#include "hw_model/process.h"
#include "hw_model/sva.h"
#include "proptests/models/memory_model.h"
#include "rapidcheck.h"

namespace itn {
namespace {

using hw::MapKind;
using hw::PageSnapshot;
using hw::Prot;
using models::kSystemRam;
using models::MemoryModel;
using models::Migration;
using StatusCode = absl::StatusCode;

constexpr std::uint64_t kPage = hw::kPageSize;
constexpr int kFiles = 2;  // Files any process may map, kept by the test
// Bounds that keep the machine small: how many processes, devices, bonds and HMM mirrors
// may be usable at once, and how many of each one sequence may create (the checks after
// every command visit all of them).
constexpr int kLive = 4;
constexpr std::size_t kEver = 12;

// The real machine; vectors are indexed like the model's and never shrink, so a closed
// device is never freed while a page table entry may still name it.
struct Sut {
  hw::Iommu iommu;
  hw::SvaDevice sva0{iommu};
  hw::SvaDevice sva1{iommu};
  std::map<const hw::HmmMirror*, int> releases;  // on_release calls per mirror
  hw::HmmDevice hmm{[this](hw::HmmMirror& mirror) { ++releases[&mirror]; }};
  std::vector<Ref<hw::File>> files;
  std::vector<Ref<hw::Process>> procs;
  std::vector<Ref<hw::MirrorDevice>> devices;
  std::vector<Ref<hw::SvaBond>> bonds;
  std::vector<Ref<hw::HmmMirror>> mirrors;

  Sut() {
    for (int i = 0; i < kFiles; ++i) files.push_back(make_ref<hw::File>());
    procs.push_back(make_ref<hw::Process>());
  }
  // Everything detached and every address space dead; the grace periods end before the
  // Iommu goes (IoMm frees give their PASIDs back to it).
  ~Sut() {
    for (auto& d : devices) d->close();
    for (auto& b : bonds) (void)b->unbind();  // fails harmlessly if already unbound
    for (auto& m : mirrors) (void)m->unregister();
    for (auto& p : procs) p->exit();
    for (auto& p : procs) p->mm().notifiers().synchronize();
    (void)hmm.unregister();
  }

  hw::SvaDevice& sva(int i) { return i == 0 ? sva0 : sva1; }
  // The device of a model index, null for kSystemRam / kNobody.
  const void* device_ptr(int d) const {
    return d < 0 ? nullptr : static_cast<const void*>(devices[d].get());
  }
  std::string device_name(const void* ptr, const char* none = "system RAM") const {
    for (std::size_t d = 0; d < devices.size(); ++d) {
      if (devices[d].get() == ptr) return absl::StrCat("device ", d);
    }
    return ptr == nullptr ? none : "an unknown device";
  }
};

MemoryModel initial_model() {
  MemoryModel m(kFiles);
  m.new_process();
  return m;
}

using Command = rc::state::Command<MemoryModel, Sut>;

MemoryModel after(const MemoryModel& m, const Command& c) {
  MemoryModel next = m;
  c.apply(next);
  return next;
}

void fail(const std::string& what) { RC_FAIL(what); }

// RC_PRE(a && b) evaluates b even when a is false (RapidCheck captures the operands of
// && to print them), so compound preconditions go through a plain bool.
void require(bool ok) { RC_PRE(ok); }

void expect(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

void expect_code(const absl::Status& s, StatusCode want, std::string_view what) {
  if (s.code() != want) {
    const std::string message = absl::StrCat(std::string(what), ": got ", s.ToString(),
                                             ", the model says ", absl::StatusCodeToString(want));
    RC_FAIL(message);
  }
}

std::string hex(std::uint64_t x) { return absl::StrCat("0x", absl::Hex(x)); }

const char* prot_name(Prot p) { return p == Prot::kNone ? "none" : p == Prot::kRead ? "r" : "rw"; }

// Checks after every command ----------------------------------------------------------

// Where each private frame is mapped: a frame mapped at more than one place (after fork,
// or the zero page) must be read-only at all of them, or a write would leak (I19).
struct FrameUse {
  int places = 0;
  bool writable = false;
  std::string first;  // where it was seen first
};
using FrameUses = std::map<const hw::Frame*, FrameUse>;

// I19 for one page: the status of a non-faulting lookup; a present frame's word, which
// memory holds it and who has exclusive access, as the model says; a CPU entry never more
// writable than its mapping; private frames shared only read-only. Messages are built
// only on failure: this runs for every page after every command.
void check_page(const MemoryModel& m, const Sut& sut, int p, std::uint64_t addr, FrameUses& uses) {
  const absl::StatusOr<hw::PageEntry> e = sut.procs[p]->mm().lookup(addr);
  auto where = [&] { return absl::StrCat("process ", p, " page ", hex(addr)); };
  if (e.status().code() != m.lookup_code(p, addr)) {
    expect_code(e.status(), m.lookup_code(p, addr), where() + " lookup");
  }
  if (!e.ok()) return;
  const std::uint64_t want = m.word(p, addr);
  const void* holder = sut.device_ptr(m.device_of(p, addr));
  const void* exclusive = sut.device_ptr(m.exclusive_of(p, addr));
  if (!e->frame) {
    if (m.is_private(p, addr) && (want != 0 || holder != nullptr || exclusive != nullptr)) {
      fail(absl::StrCat(where(), " is absent, the model has word ", want, " in ",
                        sut.device_name(holder)));
    }
    return;
  }
  if (e->frame->read() != want) {
    fail(absl::StrCat(where(), ": the CPU frame holds ", e->frame->read(), ", the model says ",
                      want));
  }
  if (e->device != holder) {
    fail(absl::StrCat(where(), " is in ", sut.device_name(e->device), ", the model says ",
                      sut.device_name(holder)));
  }
  if (e->exclusive != exclusive) {
    fail(absl::StrCat(where(), " is exclusive to ", sut.device_name(e->exclusive, "nobody"),
                      ", the model says ", sut.device_name(exclusive, "nobody")));
  }
  if (e->frame->device() != e->device) {
    fail(where() + ": the entry and its frame disagree on which memory holds it");
  }
  if (e->writable && m.vma_at(p, addr)->prot != Prot::kReadWrite) {
    fail(where() + ": the CPU entry is writable, the mapping is not");
  }
  if (m.is_private(p, addr)) {
    FrameUse& use = uses[e->frame.get()];
    if (use.places++ == 0) use.first = where();
    use.writable |= e->writable;
    if (use.places > 1 && use.writable) {
      fail(absl::StrCat(where(), " and ", use.first,
                        " map one private frame, and one of them may write it"));
    }
  }
}

void check_machine(const MemoryModel& m, const Sut& sut) {
  FrameUses uses;
  for (int p = 0; p < static_cast<int>(m.procs.size()); ++p) {
    const models::MProcess& proc = m.procs[p];
    if (sut.procs[p]->exited() == proc.alive) fail(absl::StrCat("process ", p, " exited()"));
    if (!proc.alive) {
      check_page(m, sut, p, models::kFirstMapping, uses);  // kFailedPrecondition
      continue;
    }
    for (const auto& [start, pages] : proc.history) {
      for (std::uint64_t i = 0; i <= pages; ++i) check_page(m, sut, p, start + i * kPage, uses);
    }
  }
  for (std::size_t d = 0; d < m.devices.size(); ++d) {
    const models::MDevice& md = m.devices[d];
    if (md.open && m.procs[md.process].alive) {
      const absl::Status s = hw::check_coherence(*sut.devices[d]);
      if (!s.ok()) fail(absl::StrCat("device ", d, ": ", s.ToString()));
      // Exclusive access: no other device keeps an entry for the page.
      for (const auto& [page, entry] : sut.devices[d]->entries_for_testing()) {
        const int holder = m.exclusive_of(md.process, page);
        if (holder != models::kNobody && holder != static_cast<int>(d)) {
          fail(absl::StrCat("device ", d, " maps page ", hex(page), ", exclusive to device ",
                            holder));
        }
      }
    } else if (!sut.devices[d]->entries_for_testing().empty()) {
      fail(absl::StrCat("device ", d, " is closed or its process exited, but has entries"));
    }
  }
  for (std::size_t b = 0; b < m.bonds.size(); ++b) {
    if (!m.bonds[b].bound) continue;
    const int p = m.bonds[b].process;
    if (sut.bonds[b]->mm_released() == m.procs[p].alive) {
      fail(absl::StrCat("bond ", b, " mm_released()"));
    }
    const std::uint32_t pasid = sut.bonds[b]->pasid();
    if (!sut.iommu.pasid_in_use(pasid)) fail(absl::StrCat("bond ", b, "'s PASID was freed"));
    for (std::size_t c = b + 1; c < m.bonds.size(); ++c) {
      if (!m.bonds[c].bound) continue;
      if ((pasid == sut.bonds[c]->pasid()) != (p == m.bonds[c].process)) {
        fail(absl::StrCat("bonds ", b, " (p", p, ") and ", c, " (p", m.bonds[c].process,
                          ") have PASIDs ", pasid, " and ", sut.bonds[c]->pasid()));
      }
    }
  }
  for (std::size_t i = 0; i < m.mirrors.size(); ++i) {
    const bool released = m.mirrors[i].released;
    if (sut.mirrors[i]->released() != released) fail(absl::StrCat("mirror ", i, " released()"));
    auto it = sut.releases.find(sut.mirrors[i].get());
    const int calls = it == sut.releases.end() ? 0 : it->second;
    if (calls != (released ? 1 : 0)) {
      fail(absl::StrCat("mirror ", i, " heard on_release ", calls, " times"));
    }
  }
}

// Room for one more (see kLive, kEver) ----------------------------------------------

bool room_for_process(const MemoryModel& m) {
  int live = 0;
  for (const models::MProcess& p : m.procs) live += p.alive;
  return live < kLive && m.procs.size() < kEver;
}

bool room_for_device(const MemoryModel& m) {
  int live = 0;
  for (const models::MDevice& d : m.devices) live += d.open && m.procs[d.process].alive;
  return live < kLive && m.devices.size() < kEver;
}

bool room_for_bond(const MemoryModel& m) {
  int live = 0;
  for (const models::MBond& b : m.bonds) live += b.bound && m.procs[b.process].alive;
  return live < kLive && m.bonds.size() < kEver;
}

bool room_for_mirror(const MemoryModel& m) {
  int live = 0;
  for (const models::MMirror& r : m.mirrors) live += r.registered && !r.released;
  return live < kLive && m.mirrors.size() < kEver;
}

// Picking targets from the model -----------------------------------------------------

// Usually a live process; sometimes any (exited ones exercise kFailedPrecondition).
int pick_process(const MemoryModel& m) {
  std::vector<int> live;
  for (int p = 0; p < static_cast<int>(m.procs.size()); ++p) {
    if (m.procs[p].alive) live.push_back(p);
  }
  if (!live.empty() && *rc::gen::inRange(0, 8) != 0) return *rc::gen::elementOf(live);
  return *rc::gen::inRange<int>(0, static_cast<int>(m.procs.size()));
}

// Usually an open device of a live process.
int pick_device(const MemoryModel& m) {
  require(!m.devices.empty());
  std::vector<int> usable;
  for (int d = 0; d < static_cast<int>(m.devices.size()); ++d) {
    if (m.devices[d].open && m.procs[m.devices[d].process].alive) usable.push_back(d);
  }
  if (!usable.empty() && *rc::gen::inRange(0, 8) != 0) return *rc::gen::elementOf(usable);
  return *rc::gen::inRange<int>(0, static_cast<int>(m.devices.size()));
}

// Usually a bond still bound to a live process.
int pick_bond(const MemoryModel& m) {
  require(!m.bonds.empty());
  std::vector<int> usable;
  for (int b = 0; b < static_cast<int>(m.bonds.size()); ++b) {
    if (m.bonds[b].bound && m.procs[m.bonds[b].process].alive) usable.push_back(b);
  }
  if (!usable.empty() && *rc::gen::inRange(0, 8) != 0) return *rc::gen::elementOf(usable);
  return *rc::gen::inRange<int>(0, static_cast<int>(m.bonds.size()));
}

// Usually a registered HMM mirror.
int pick_mirror(const MemoryModel& m) {
  require(!m.mirrors.empty());
  std::vector<int> usable;
  for (int i = 0; i < static_cast<int>(m.mirrors.size()); ++i) {
    if (m.mirrors[i].registered) usable.push_back(i);
  }
  if (!usable.empty() && *rc::gen::inRange(0, 8) != 0) return *rc::gen::elementOf(usable);
  return *rc::gen::inRange<int>(0, static_cast<int>(m.mirrors.size()));
}

// A page named relative to one of the mappings a process has had, so it stays meaningful
// when shrinking drops unrelated commands.
struct Spot {
  int process = 0;
  int mapping = 0;  // index into MProcess::history
  int page = 0;     // from the mapping's start; -1 and the mapping's size are guard pages

  bool valid(const MemoryModel& m) const {
    return process < static_cast<int>(m.procs.size()) &&
           mapping < static_cast<int>(m.procs[process].history.size());
  }
  std::uint64_t addr(const MemoryModel& m) const {
    const std::uint64_t start = m.procs[process].history[mapping].first;
    return page < 0 ? start - kPage : start + static_cast<std::uint64_t>(page) * kPage;
  }
  friend std::ostream& operator<<(std::ostream& os, const Spot& s) {
    return os << "p" << s.process << " mapping#" << s.mapping << "+" << s.page;
  }
};

// Usually a page of a mapping that is still (partly) mapped; sometimes one of any
// mapping the process had, or a guard page.
Spot pick_spot(const MemoryModel& m, int p) {
  const auto& history = m.procs[p].history;
  require(!history.empty());
  std::vector<int> mapped;
  for (int i = 0; i < static_cast<int>(history.size()); ++i) {
    const auto [start, pages] = history[i];
    for (std::uint64_t at = start; at < start + pages * kPage; at += kPage) {
      if (m.vma_at(p, at) != nullptr) {
        mapped.push_back(i);
        break;
      }
    }
  }
  Spot s{p, 0, 0};
  if (!mapped.empty() && *rc::gen::inRange(0, 4) != 0) {
    s.mapping = *rc::gen::elementOf(mapped);
  } else {
    s.mapping = *rc::gen::inRange<int>(0, static_cast<int>(history.size()));
  }
  const int pages = static_cast<int>(history[s.mapping].second);
  s.page = *rc::gen::inRange(0, pages);
  if (*rc::gen::inRange(0, 10) == 0) s.page = *rc::gen::element(-1, pages);
  return s;
}

// A length in pages from `spot`: usually within its mapping, sometimes up to `most`
// (running into the guard page and beyond).
std::uint64_t pick_pages(const MemoryModel& m, const Spot& spot, std::uint64_t most) {
  const std::uint64_t pages = m.procs[spot.process].history[spot.mapping].second;
  if (spot.page >= 0 && static_cast<std::uint64_t>(spot.page) < pages &&
      *rc::gen::inRange(0, 5) != 0) {
    return *rc::gen::inRange<std::uint64_t>(1, pages - spot.page + 1);
  }
  return *rc::gen::inRange<std::uint64_t>(1, most + 1);
}

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
  MapKind kind = *rc::gen::weightedElement<MapKind>(
      {{5, MapKind::kAnonPrivate}, {1, MapKind::kAnonShared}, {2, MapKind::kFileShared}});
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
    const bool file_backed = kind == MapKind::kFileShared;
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
                                          : "file")
       << (kind == MapKind::kFileShared ? absl::StrCat(" #", file, "@", file_page) : "");
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

struct OpenDevice : Command {
  int p;
  explicit OpenDevice(const MemoryModel& m) : p(pick_process(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(p < static_cast<int>(m.procs.size()) && room_for_device(m));
  }
  void apply(MemoryModel& m) const override {
    if (m.procs[p].alive) m.devices.push_back(models::MDevice{p});
  }
  void run(const MemoryModel& m, Sut& sut) const override {
    absl::StatusOr<Ref<hw::MirrorDevice>> d = hw::MirrorDevice::open(*sut.procs[p]);
    expect_code(d.status(), m.procs[p].alive ? StatusCode::kOk : StatusCode::kFailedPrecondition,
                "open");
    if (d.ok()) sut.devices.push_back(*std::move(d));
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "open device on p" << p; }
};

struct CloseDevice : Command {
  int d;
  explicit CloseDevice(const MemoryModel& m) : d(pick_device(m)) {}
  void checkPreconditions(const MemoryModel& m) const override {
    require(d < static_cast<int>(m.devices.size()));
  }
  void apply(MemoryModel& m) const override { m.close_device(d); }
  void run(const MemoryModel& m, Sut& sut) const override {
    sut.devices[d]->close();
    check_machine(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "close device " << d; }
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
  using DeviceCommand::DeviceCommand;
  void apply(MemoryModel& m) const override { (void)m.migrate(d, kind, spot.addr(m), pages); }
  void run(const MemoryModel& m, Sut& sut) const override {
    MemoryModel next = m;
    const StatusCode want = next.migrate(d, kind, spot.addr(m), pages);
    hw::MirrorDevice& dev = *sut.devices[d];
    const std::uint64_t addr = spot.addr(m);
    absl::Status s;
    switch (kind) {
      case Migration::kToDevice:
        s = dev.migrate_to_device(addr, pages * kPage);
        break;
      case Migration::kToSystem:
        s = dev.migrate_to_system(addr, pages * kPage);
        break;
      case Migration::kExclusive:
        s = dev.make_exclusive(addr, pages * kPage);
        break;
    }
    expect_code(s, want, "migrate");
    check_machine(next, sut);
  }
  void show(std::ostream& os) const override {
    os << "device " << d << " "
       << (kind == Migration::kToDevice   ? "migrate_to_device "
           : kind == Migration::kToSystem ? "migrate_to_system "
                                          : "make_exclusive ")
       << spot << " " << pages;
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
      if (holder == d) {
        expect(s == PageSnapshot::kDeviceLocal, where + ": not kDeviceLocal");
      } else if (holder != kSystemRam) {
        expect(s == PageSnapshot::kDeviceRemote, where + ": not kDeviceRemote");
      } else {
        expect(s == PageSnapshot::kNone || s == PageSnapshot::kRead || s == PageSnapshot::kWrite ||
                   (s == PageSnapshot::kZero && m.is_private(spot.process, at) &&
                    m.word(spot.process, at) == 0),
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
  rc::state::check(initial_model(), sut,
                   rc::state::gen::execOneOfWithArgs<
                       NewProcess, Fork, Fork, Exit, Mmap, Mmap, Mmap, Mmap, Munmap, Munmap,
                       Mprotect, Mprotect, CpuAccess, CpuAccess, CpuAccess, CpuAccess, OpenDevice,
                       OpenDevice, CloseDevice, RangeFault, RangeFault, DeviceRead, DeviceRead,
                       DeviceRead, DeviceWrite, DeviceWrite, DeviceWrite, Migrate, Migrate, Migrate,
                       Migrate, Snapshot, Bind, Unbind, Dma, Dma, HmmRegister, HmmUnregister>());
}

}  // namespace
}  // namespace itn
