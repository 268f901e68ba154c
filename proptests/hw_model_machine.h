// proptests/hw_model_machine.h
//
// Support for the L1 property test of the simulated machine (hw_model_property_test.cc),
// and for it only: the real machine under test (Sut) beside the model, the failure
// helpers, the checks run after every command (I17, I19, I20), the bounds that keep the
// machine small (room_for_*), and the generators that pick a process, device, bond, HMM
// mirror or page (a Spot) from the model. The commands themselves stay in the test.
//
// Thread safety: none needed; single-threaded test support. Every call is serial, on the
//   thread running the property; nothing here waits for another thread.
// Lifetime: a Sut owns its machine; its vectors never shrink, so a closed device is never
//   freed while a page table entry may still name it. The checks keep no references.
// Memory ordering: none; only one thread touches the machine.
#ifndef ITN_PROPTESTS_HW_MODEL_MACHINE_H_
#define ITN_PROPTESTS_HW_MODEL_MACHINE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "rapidcheck/state.h"

#include "hw_model/address_space.h"
#include "testing/coherence.h"
#include "hw_model/hmm.h"
#include "hw_model/iommu.h"
#include "hw_model/memory.h"
#include "hw_model/mirror_device.h"
#include "hw_model/process.h"
#include "hw_model/sva.h"
#include "testing/memory_model.h"
#include "rapidcheck.h"

namespace itn::hw_model_test {

using hw::Prot;
using models::MemoryModel;
using StatusCode = absl::StatusCode;

inline constexpr std::uint64_t kPage = hw::kPageSize;
inline constexpr int kFiles = 2;  // Files any process may map, kept by the test
// Bounds that keep the machine small: how many processes, devices, bonds and HMM mirrors
// may be usable at once, and how many of each one sequence may create (the checks after
// every command visit all of them).
inline constexpr int kLive = 4;
inline constexpr std::size_t kEver = 12;

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
  std::vector<int> device_fds;  // the opener's descriptor of each device opened as a file, or -1
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
    for (auto& p : procs) p->mm().notifiers().barrier();
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

inline MemoryModel initial_model() {
  MemoryModel m(kFiles);
  m.new_process();
  return m;
}

// The commands act on the model and the Sut; after() is the model once `c` has been applied.
using Command = rc::state::Command<MemoryModel, Sut>;

inline MemoryModel after(const MemoryModel& m, const Command& c) {
  MemoryModel next = m;
  c.apply(next);
  return next;
}

inline void fail(const std::string& what) { RC_FAIL(what); }

// RC_PRE(a && b) evaluates b even when a is false (RapidCheck captures the operands of
// && to print them), so compound preconditions go through a plain bool.
inline void require(bool ok) { RC_PRE(ok); }

inline void expect(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

inline void expect_code(const absl::Status& s, StatusCode want, std::string_view what) {
  if (s.code() != want) {
    const std::string message = absl::StrCat(std::string(what), ": got ", s.ToString(),
                                             ", the model says ", absl::StatusCodeToString(want));
    RC_FAIL(message);
  }
}

inline std::string hex(std::uint64_t x) { return absl::StrCat("0x", absl::Hex(x)); }

inline const char* prot_name(Prot p) {
  return p == Prot::kNone ? "none" : p == Prot::kRead ? "r" : "rw";
}

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
inline void check_page(const MemoryModel& m, const Sut& sut, int p, std::uint64_t addr,
                       FrameUses& uses) {
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
    if (m.is_private(p, addr) && !m.in_page_cache(p, addr) &&
        (want != 0 || holder != nullptr || exclusive != nullptr)) {
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
  if (e->page_cache != m.in_page_cache(p, addr)) {
    fail(absl::StrCat(where(), e->page_cache ? " maps the file's page" : " maps its own copy",
                      ", the model says otherwise"));
  }
  if (m.is_private(p, addr) && !e->page_cache) {  // the page cache's frames are the file's
    FrameUse& use = uses[e->frame.get()];
    if (use.places++ == 0) use.first = where();
    use.writable |= e->writable;
    if (use.places > 1 && use.writable) {
      fail(absl::StrCat(where(), " and ", use.first,
                        " map one private frame, and one of them may write it"));
    }
  }
}

// What must hold after every command, given the model as the command left it:
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
inline void check_machine(const MemoryModel& m, const Sut& sut) {
  FrameUses uses;
  for (int p = 0; p < static_cast<int>(m.procs.size()); ++p) {
    const models::MProcess& proc = m.procs[p];
    if (sut.procs[p]->exited() == proc.alive) fail(absl::StrCat("process ", p, " exited()"));
    if (!proc.alive) {
      check_page(m, sut, p, models::kFirstMapping, uses);  // kFailedPrecondition
      continue;
    }
    // Each page once: an mremap's target may lie inside an earlier mapping.
    std::set<std::uint64_t> checked;
    for (const auto& [start, pages] : proc.history) {
      for (std::uint64_t i = 0; i <= pages; ++i) {
        if (checked.insert(start + i * kPage).second) {
          check_page(m, sut, p, start + i * kPage, uses);
        }
      }
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

inline bool room_for_process(const MemoryModel& m) {
  int live = 0;
  for (const models::MProcess& p : m.procs) live += p.alive;
  return live < kLive && m.procs.size() < kEver;
}

inline bool room_for_device(const MemoryModel& m) {
  int live = 0;
  for (const models::MDevice& d : m.devices) live += d.open && m.procs[d.process].alive;
  return live < kLive && m.devices.size() < kEver;
}

inline bool room_for_bond(const MemoryModel& m) {
  int live = 0;
  for (const models::MBond& b : m.bonds) live += b.bound && m.procs[b.process].alive;
  return live < kLive && m.bonds.size() < kEver;
}

inline bool room_for_mirror(const MemoryModel& m) {
  int live = 0;
  for (const models::MMirror& r : m.mirrors) live += r.registered && !r.released;
  return live < kLive && m.mirrors.size() < kEver;
}

// Picking targets from the model -----------------------------------------------------

// One of the indices 0..size-1: usually (7 in 8) one for which usable(index) holds, when
// there is one; otherwise any, so that the unusable ones exercise the failure paths.
template <class Usable>
inline int pick_usually(int size, Usable usable) {
  std::vector<int> candidates;
  for (int i = 0; i < size; ++i) {
    if (usable(i)) candidates.push_back(i);
  }
  if (!candidates.empty() && *rc::gen::inRange(0, 8) != 0) return *rc::gen::elementOf(candidates);
  return *rc::gen::inRange<int>(0, size);
}

// Usually a live process; sometimes any (exited ones exercise kFailedPrecondition).
inline int pick_process(const MemoryModel& m) {
  return pick_usually(static_cast<int>(m.procs.size()), [&](int p) { return m.procs[p].alive; });
}

// Usually an open device of a live process.
inline int pick_device(const MemoryModel& m) {
  require(!m.devices.empty());
  return pick_usually(static_cast<int>(m.devices.size()), [&](int d) {
    return m.devices[d].open && m.procs[m.devices[d].process].alive;
  });
}

// Usually a bond still bound to a live process.
inline int pick_bond(const MemoryModel& m) {
  require(!m.bonds.empty());
  return pick_usually(static_cast<int>(m.bonds.size()),
                      [&](int b) { return m.bonds[b].bound && m.procs[m.bonds[b].process].alive; });
}

// Usually a registered HMM mirror.
inline int pick_mirror(const MemoryModel& m) {
  require(!m.mirrors.empty());
  return pick_usually(static_cast<int>(m.mirrors.size()),
                      [&](int i) { return m.mirrors[i].registered; });
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
inline Spot pick_spot(const MemoryModel& m, int p) {
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
inline std::uint64_t pick_pages(const MemoryModel& m, const Spot& spot, std::uint64_t most) {
  const std::uint64_t pages = m.procs[spot.process].history[spot.mapping].second;
  if (spot.page >= 0 && static_cast<std::uint64_t>(spot.page) < pages &&
      *rc::gen::inRange(0, 5) != 0) {
    return *rc::gen::inRange<std::uint64_t>(1, pages - spot.page + 1);
  }
  return *rc::gen::inRange<std::uint64_t>(1, most + 1);
}

}  // namespace itn::hw_model_test

#endif  // ITN_PROPTESTS_HW_MODEL_MACHINE_H_
