// testing/memory_model.h
//
// L0 reference model of the whole simulated machine (hw_model/), run serially: processes
// with their VMAs and private page contents, the shared backing objects (Files and
// anonymous shared memory), which mirror device's memory holds each private page and
// which one has exclusive access to it, and the mirror devices, SVA bonds and HMM mirrors
// attached to the processes. Naive on purpose:
// plain std::map per process, linear scans, page-by-page loops, each rule of
// hw_model/address_space.h written out once.
//
// Every operation returns the status code the real call must return and changes the model
// exactly as the real call changes the machine, including the pages a device walk faulted
// in before it stopped at a failing page. Contents are one word per page; a page never
// written reads 0. Which frame backs a page and whether it is writable are not modelled:
// check_coherence() and the content checks cover those.
//
// A user's property test drives it side by side with the real machine: the same command
// on both, then the statuses and every page's word compared (proptests/hw_model_machine.h
// does this for itn; examples/toy_gpu/ for a device of a user's own).
//
// Thread safety: a plain value; one thread at a time. Lifetime: holds no references to the
// real machine. Memory ordering: none.
#ifndef ITN_TESTING_MEMORY_MODEL_H_
#define ITN_TESTING_MEMORY_MODEL_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include "hw_model/address_space.h"

namespace itn::models {

using absl::StatusCode;
using hw::MapKind;
using hw::Prot;

inline constexpr std::uint64_t kModelPage = 4096;
inline constexpr std::uint64_t kFirstMapping = 0x100000;  // AddressSpace's first address
inline constexpr int kSystemRam = -1;                     // MPage::device of a CPU page
inline constexpr int kNobody = -1;                        // MPage::exclusive when none

struct MVma {
  std::uint64_t end;  // exclusive; the start is the map key
  Prot prot;
  MapKind kind;
  int backing;           // index into MemoryModel::backings; -1 for anonymous private
  std::uint64_t offset;  // byte offset of the VMA's start in its backing
};

struct MPage {
  std::uint64_t word = 0;
  int device = kSystemRam;  // the mirror device whose memory holds the page
  int exclusive = kNobody;  // the mirror device with exclusive access to it
  // The CPU entry is read-only (fork, mprotect, a migration of read-only memory): a write
  // copies the page, which moves a coherent device page to system RAM.
  bool write_protected = false;
};

struct MProcess {
  bool alive = true;
  std::uint64_t next_addr = kFirstMapping;  // where the next mmap lands
  std::map<std::uint64_t, MVma> vmas;       // by start
  std::map<std::uint64_t, MPage> pages;     // private pages; absent: 0, in system RAM
  // (start, pages) of every mapping made here or inherited at fork, for picking targets.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> history;
};

struct MDevice {
  int process;
  bool open = true;
  bool coherent = false;  // its memory is device-coherent: the CPU uses its pages in place
  bool file = false;      // opened as a file (MirrorDevice::open_file)
  std::set<int> holders{};  // the processes whose file tables name it (file devices)
};

struct MBond {
  int process;
  bool bound = true;
};

struct MMirror {
  int process;
  bool registered = true;
  bool released = false;  // on_release ran (exactly once)
};

enum class Migration { kToDevice, kToSystem, kExclusive };

struct MemoryModel {
  std::vector<MProcess> procs;
  std::vector<std::map<std::uint64_t, std::uint64_t>> backings;  // offset -> word
  std::vector<MDevice> devices;
  std::vector<MBond> bonds;
  std::vector<MMirror> mirrors;

  // The first `files` backings are Files the test keeps for the whole run.
  explicit MemoryModel(int files) : backings(static_cast<std::size_t>(files)) {}

  // Address-space queries --------------------------------------------------------------

  // The VMA holding `addr` (and its start), or null.
  const MVma* vma_at(int p, std::uint64_t addr, std::uint64_t* start = nullptr) const {
    for (const auto& [s, v] : procs[p].vmas) {
      if (s <= addr && addr < v.end) {
        if (start != nullptr) *start = s;
        return &v;
      }
    }
    return nullptr;
  }

  // What a non-faulting lookup of `addr` reports.
  StatusCode lookup_code(int p, std::uint64_t addr) const {
    if (!procs[p].alive) return StatusCode::kFailedPrecondition;
    const MVma* v = vma_at(p, addr);
    if (v == nullptr) return StatusCode::kNotFound;
    return v->prot == Prot::kNone ? StatusCode::kPermissionDenied : StatusCode::kOk;
  }

  // The permission check of a CPU access or a device fault.
  StatusCode access_code(int p, std::uint64_t addr, bool write) const {
    const StatusCode code = lookup_code(p, addr);
    if (code != StatusCode::kOk) return code;
    if (write && vma_at(p, addr)->prot != Prot::kReadWrite) return StatusCode::kPermissionDenied;
    return StatusCode::kOk;
  }

  bool is_private(int p, std::uint64_t addr) const {
    const MVma* v = vma_at(p, addr);
    return v != nullptr && hw::is_private(v->kind);
  }
  // A private file mapping's page this address space has not written: the file's.
  bool in_page_cache(int p, std::uint64_t addr) const {
    const MVma* v = vma_at(p, addr);
    return v != nullptr && v->kind == MapKind::kFilePrivate &&
           !procs[p].pages.contains(addr - addr % kModelPage);
  }
  // The private page of `page`, made this address space's own (a copy of the file's word
  // for a private file mapping) if it was not.
  MPage& own_page(int p, std::uint64_t page) {
    if (in_page_cache(p, page)) {
      const std::uint64_t cached = word(p, page);
      return procs[p].pages[page] = MPage{.word = cached};
    }
    return procs[p].pages[page];
  }

  // The backing offset of a shared page.
  std::pair<int, std::uint64_t> backing_of(int p, std::uint64_t addr) const {
    std::uint64_t start = 0;
    const MVma* v = vma_at(p, addr, &start);
    return {v->backing, v->offset + (addr - addr % kModelPage) - start};
  }

  // The word of the mapped page holding `addr`.
  std::uint64_t word(int p, std::uint64_t addr) const {
    const std::uint64_t page = addr - addr % kModelPage;
    if (is_private(p, addr) && !in_page_cache(p, addr)) {
      auto it = procs[p].pages.find(page);
      return it == procs[p].pages.end() ? 0 : it->second.word;
    }
    const auto [backing, offset] = backing_of(p, addr);
    auto it = backings[backing].find(offset);
    return it == backings[backing].end() ? 0 : it->second;
  }

  // The page of `addr` as far as devices go (a default MPage for shared or untouched
  // pages: in system RAM, nobody's exclusively).
  MPage page_state(int p, std::uint64_t addr) const {
    if (!is_private(p, addr)) return MPage{};
    auto it = procs[p].pages.find(addr - addr % kModelPage);
    return it == procs[p].pages.end() ? MPage{} : it->second;
  }
  int device_of(int p, std::uint64_t addr) const { return page_state(p, addr).device; }
  bool on_coherent_device(const MPage& pg) const {
    return pg.device != kSystemRam && devices[pg.device].coherent;
  }
  int exclusive_of(int p, std::uint64_t addr) const { return page_state(p, addr).exclusive; }

  // A process drops its descriptor of file device `dev` (close, or exit); the last one
  // closes the device. kNotFound if it held none.
  StatusCode drop_descriptor(int dev, int p) {
    if (devices[dev].holders.erase(p) == 0) return StatusCode::kNotFound;
    if (devices[dev].holders.empty() && devices[dev].open) close_device(dev);
    return StatusCode::kOk;
  }

  // MirrorDevice::close(): the device's pages (in its memory or exclusive to it) go back
  // to system RAM.
  void close_device(int dev) {
    devices[dev].open = false;
    for (auto& [addr, pg] : procs[devices[dev].process].pages) {
      if (pg.device == dev) pg.device = kSystemRam;
      if (pg.exclusive == dev) pg.exclusive = kNobody;
    }
  }

  // Accesses ---------------------------------------------------------------------------

  // cpu_read/cpu_write (and SVA DMA, which walks the CPU's tables): the page comes back
  // to system RAM (a coherent device page only if a write copies it) and exclusive access
  // ends. `*out` gets the word read.
  StatusCode cpu_access(int p, std::uint64_t addr, bool write, std::uint64_t value,
                        std::uint64_t* out) {
    const StatusCode code = access_code(p, addr, write);
    if (code != StatusCode::kOk) return code;
    if (MPage* pg = cpu_fault(p, addr, write, /*to_ram=*/false)) {
      if (write) pg->word = value;
      *out = pg->word;
      return code;
    }
    const auto [backing, offset] = backing_of(p, addr);
    if (write) backings[backing][offset] = value;
    *out = word(p, addr);
    return code;
  }

  // The permitted CPU fault of the page of `addr`: a private page the access makes this
  // address space's own comes to system RAM (a coherent device page only if a write copies
  // it, or for `to_ram`), loses exclusive access and, for a write, becomes writable.
  // Returns that page, or null for the pages of a backing (shared, or a file's still).
  MPage* cpu_fault(int p, std::uint64_t addr, bool write, bool to_ram) {
    if (!is_private(p, addr) || (in_page_cache(p, addr) && !write)) return nullptr;
    MPage& pg = own_page(p, addr - addr % kModelPage);
    if (to_ram || !on_coherent_device(pg) || (write && pg.write_protected)) {
      pg.device = kSystemRam;
    }
    pg.exclusive = kNobody;
    if (write) pg.write_protected = false;
    return &pg;
  }

  // AddressSpace::pin_user_pages(): each page faulted in as a CPU access would, without
  // changing its word, stopping at the first failure but keeping what the earlier pages
  // did; a long-term pin brings coherent device pages back too. `words` gets the words
  // of the pages pinned.
  StatusCode pin(int p, std::uint64_t addr, std::uint64_t pages, bool write, bool long_term,
                 std::vector<std::uint64_t>* words) {
    for (std::uint64_t at = addr; at < addr + pages * kModelPage; at += kModelPage) {
      if (const StatusCode code = access_code(p, at, write); code != StatusCode::kOk) return code;
      (void)cpu_fault(p, at, write, long_term);
      words->push_back(word(p, at));
    }
    return StatusCode::kOk;
  }

  // A device's fault (range_fault, read, write) of `pages` pages from `addr`: each page
  // checked and faulted in, in order, stopping at the first failure but keeping what the
  // earlier pages did (as a walk does); then `words`, if any, written one per page.
  StatusCode device_access(int dev, std::uint64_t addr, std::uint64_t pages, bool write,
                           const std::vector<std::uint64_t>& words = {}) {
    const int p = devices[dev].process;
    if (!devices[dev].open || !procs[p].alive) return StatusCode::kFailedPrecondition;
    for (std::uint64_t i = 0; i < pages; ++i) {
      const std::uint64_t at = addr + i * kModelPage;
      const StatusCode code = access_code(p, at, write);
      if (code != StatusCode::kOk) return code;
      // hmm_range_fault: a page of the device's own (in its memory or exclusive to it)
      // stays so, and so does any coherent device page; otherwise it comes back to system
      // RAM and exclusive access ends. A write copies a write-protected coherent page.
      if (is_private(p, at) && !(in_page_cache(p, at) && !write)) {
        MPage& pg = own_page(p, at);
        const bool copied = write && pg.write_protected && on_coherent_device(pg);
        if (pg.device == dev || pg.exclusive == dev) {
          if (copied) pg = MPage{pg.word};
        } else if (on_coherent_device(pg) && !copied) {
          pg.exclusive = kNobody;
        } else {
          pg = MPage{pg.word};
        }
        if (write) pg.write_protected = false;
      }
    }
    for (std::uint64_t i = 0; i < words.size(); ++i) {
      const std::uint64_t at = addr + i * kModelPage;
      if (is_private(p, at)) {
        procs[p].pages[at].word = words[i];
      } else {
        const auto [backing, offset] = backing_of(p, at);
        backings[backing][offset] = words[i];
      }
    }
    return StatusCode::kOk;
  }

  // migrate_to_device/_to_system/make_exclusive of device `dev`: all pages checked first
  // (in address order, the first failure wins and nothing changes), then all that can
  // move do; `outcomes` (if given) gets each page's outcome. With kWhatItCan, shared
  // memory, a file's page and (on the way in) another device's page are skipped.
  StatusCode migrate(int dev, Migration kind, std::uint64_t addr, std::uint64_t pages,
                     hw::Moves moves = hw::Moves::kAllOrNothing,
                     std::vector<hw::PageOutcome>* outcomes = nullptr) {
    const int p = devices[dev].process;
    if (!devices[dev].open || !procs[p].alive) return StatusCode::kFailedPrecondition;
    std::vector<hw::PageOutcome> out;
    const auto skip = [&](hw::PageOutcome why) {
      out.push_back(why);
      return moves == hw::Moves::kWhatItCan ? StatusCode::kOk : StatusCode::kFailedPrecondition;
    };
    for (std::uint64_t i = 0; i < pages; ++i) {
      const std::uint64_t at = addr + i * kModelPage;
      const MVma* v = vma_at(p, at);
      if (v == nullptr) return StatusCode::kNotFound;
      StatusCode code = StatusCode::kOk;
      if (!hw::is_private(v->kind)) {
        code = skip(hw::PageOutcome::kNotAnonymous);
      } else if (v->prot == Prot::kNone ||
                 (kind == Migration::kExclusive && v->prot != Prot::kReadWrite)) {
        return StatusCode::kPermissionDenied;
      } else if (kind == Migration::kToDevice && in_page_cache(p, at)) {
        code = skip(hw::PageOutcome::kNotAnonymous);  // only anonymous pages move
      } else if (const int holder = device_of(p, at);
                 kind == Migration::kToDevice && holder != kSystemRam && holder != dev) {
        code = skip(hw::PageOutcome::kOnAnotherDevice);
      } else {
        out.push_back(hw::PageOutcome::kMoved);
      }
      if (code != StatusCode::kOk) return code;
    }
    for (std::uint64_t i = 0; i < pages; ++i) {
      const std::uint64_t at = addr + i * kModelPage;
      if (out[i] != hw::PageOutcome::kMoved) continue;
      const bool here = device_of(p, at) == dev;
      switch (kind) {
        case Migration::kToDevice:  // a fresh device frame: not exclusive to anyone
          if (here) {               // not moved, entry unchanged
            out[i] = hw::PageOutcome::kUnchanged;
            break;
          }
          procs[p].pages[at].device = dev;
          procs[p].pages[at].exclusive = kNobody;
          procs[p].pages[at].write_protected = vma_at(p, at)->prot != Prot::kReadWrite;
          break;
        case Migration::kToSystem:
          if (here) {
            procs[p].pages[at].device = kSystemRam;
          } else {
            out[i] = hw::PageOutcome::kUnchanged;
          }
          break;
        case Migration::kExclusive:  // faulted in for write first: back from any device
          own_page(p, at);
          procs[p].pages[at].device = kSystemRam;
          procs[p].pages[at].exclusive = dev;
          procs[p].pages[at].write_protected = false;
          break;
      }
    }
    if (outcomes != nullptr) *outcomes = std::move(out);
    return StatusCode::kOk;
  }

  // Mappings ---------------------------------------------------------------------------

  // Predicts the address as AddressSpace hands it out: a per-space counter from
  // kFirstMapping, a guard page after each mapping, continued by a fork child.
  StatusCode mmap(int p, std::uint64_t pages, Prot prot, MapKind kind, int file,
                  std::uint64_t file_offset, std::uint64_t* addr) {
    MProcess& proc = procs[p];
    if (!proc.alive) return StatusCode::kFailedPrecondition;
    int backing = -1;
    if (kind == MapKind::kAnonShared) {
      backing = static_cast<int>(backings.size());
      backings.emplace_back();
      file_offset = 0;
    } else if (kind == MapKind::kFileShared || kind == MapKind::kFilePrivate) {
      backing = file;
    } else {
      file_offset = 0;
    }
    *addr = proc.next_addr;
    proc.next_addr += (pages + 1) * kModelPage;  // a guard page after every mapping
    proc.vmas[*addr] = MVma{*addr + pages * kModelPage, prot, kind, backing, file_offset};
    proc.history.emplace_back(*addr, pages);
    return StatusCode::kOk;
  }

  // Makes a VMA start at `at` if one strictly contains it.
  void split(int p, std::uint64_t at) {
    std::uint64_t start = 0;
    const MVma* v = vma_at(p, at, &start);
    if (v == nullptr || start == at) return;
    MVma tail = *v;
    tail.offset += at - start;
    procs[p].vmas[start].end = at;
    procs[p].vmas[at] = tail;
  }

  StatusCode munmap(int p, std::uint64_t addr, std::uint64_t length) {
    MProcess& proc = procs[p];
    if (!proc.alive) return StatusCode::kFailedPrecondition;
    const std::uint64_t end = addr + length;
    split(p, addr);
    split(p, end);
    std::erase_if(proc.vmas, [&](const auto& e) { return addr <= e.first && e.first < end; });
    std::erase_if(proc.pages, [&](const auto& e) { return addr <= e.first && e.first < end; });
    return StatusCode::kOk;
  }

  // AddressSpace::mremap(): the old range, inside one VMA, moves to the new one (whatever
  // was there unmapped first), its pages as they are (word, memory, exclusive owner); with
  // `keep_old` (anonymous private only) the old range stays mapped, empty. Addresses past
  // the move's end are never handed out by mmap again.
  StatusCode mremap(int p, std::uint64_t old_addr, std::uint64_t length, std::uint64_t new_addr,
                    bool keep_old) {
    const std::uint64_t old_end = old_addr + length, new_end = new_addr + length;
    if (new_end > hw::kUserSpaceEnd || (old_addr < new_end && new_addr < old_end)) {
      return StatusCode::kInvalidArgument;
    }
    MProcess& proc = procs[p];
    if (!proc.alive) return StatusCode::kFailedPrecondition;
    std::uint64_t start = 0;
    const MVma* v = vma_at(p, old_addr, &start);
    if (v == nullptr) return StatusCode::kNotFound;
    if (v->end < old_end || (keep_old && v->kind != MapKind::kAnonPrivate)) {
      return StatusCode::kInvalidArgument;
    }
    MVma moved = *v;
    moved.offset += old_addr - start;
    moved.end = new_end;
    (void)munmap(p, new_addr, length);
    std::vector<std::pair<std::uint64_t, MPage>> moving;
    for (auto it = proc.pages.lower_bound(old_addr);
         it != proc.pages.end() && it->first < old_end;) {
      moving.emplace_back(new_addr + (it->first - old_addr), it->second);
      it = proc.pages.erase(it);
    }
    proc.pages.insert(moving.begin(), moving.end());
    if (!keep_old) {
      split(p, old_addr);
      split(p, old_end);
      std::erase_if(proc.vmas,
                    [&](const auto& e) { return old_addr <= e.first && e.first < old_end; });
    }
    proc.vmas[new_addr] = moved;
    proc.next_addr = std::max(proc.next_addr, new_end + kModelPage);
    proc.history.emplace_back(new_addr, length / kModelPage);
    return StatusCode::kOk;
  }

  StatusCode mprotect(int p, std::uint64_t addr, std::uint64_t length, Prot prot) {
    if (!procs[p].alive) return StatusCode::kFailedPrecondition;
    const std::uint64_t end = addr + length;
    for (std::uint64_t at = addr; at < end; at += kModelPage) {
      if (vma_at(p, at) == nullptr) return StatusCode::kNotFound;
    }
    split(p, addr);
    split(p, end);
    for (auto& [start, v] : procs[p].vmas) {
      if (addr <= start && start < end) v.prot = prot;
    }
    if (prot != Prot::kReadWrite) {
      for (auto it = procs[p].pages.lower_bound(addr);
           it != procs[p].pages.end() && it->first < end; ++it) {
        it->second.write_protected = true;
      }
    }
    return StatusCode::kOk;
  }

  // AddressSpace::madvise(): a hint changes no word (huge pages hold the same data);
  // kFree of anonymous private memory drops its pages in system RAM (later reads see
  // zero), and keeps those in device memory or held exclusively.
  StatusCode madvise(int p, std::uint64_t addr, std::uint64_t length, hw::Advice advice) {
    if (!procs[p].alive) return StatusCode::kFailedPrecondition;
    const std::uint64_t end = addr + length;
    for (std::uint64_t at = addr; at < end; at += kModelPage) {
      const MVma* v = vma_at(p, at);
      if (v == nullptr) return StatusCode::kNotFound;
    }
    if (advice != hw::Advice::kFree) {
      split(p, addr);  // a hint splits the VMAs, as in the kernel (the model keeps no hints)
      split(p, end);
      return StatusCode::kOk;
    }
    for (std::uint64_t at = addr; at < end; at += kModelPage) {
      if (vma_at(p, at)->kind != MapKind::kAnonPrivate) return StatusCode::kInvalidArgument;
    }
    std::erase_if(procs[p].pages, [&](const auto& e) {
      return addr <= e.first && e.first < end && e.second.device == kSystemRam &&
             e.second.exclusive == kNobody;
    });
    return StatusCode::kOk;
  }

  // AddressSpace::reap() with no notifier refusing: every private VMA loses its pages
  // (later reads see zero) and keeps its mapping.
  StatusCode reap(int p) {
    MProcess& proc = procs[p];
    if (!proc.alive) return StatusCode::kFailedPrecondition;
    std::erase_if(proc.pages, [&](const auto& e) { return is_private(p, e.first); });
    return StatusCode::kOk;
  }

  // Processes --------------------------------------------------------------------------

  int new_process() {
    procs.emplace_back();
    return static_cast<int>(procs.size()) - 1;
  }

  // The parent's private device pages come back to system RAM and exclusive accesses end
  // (coherent device pages stay where they are, the child's copies of them are in system
  // RAM); the child gets a copy of the parent's
  // mappings and private contents (copy-on-write: both sides write-protected, later writes
  // stay on one side) and continues its address counter. Shared mappings keep their
  // backing.
  StatusCode fork(int p) {
    if (!procs[p].alive) return StatusCode::kFailedPrecondition;
    for (auto& [page, pg] : procs[p].pages) {
      pg = MPage{.word = pg.word,
                 .device = on_coherent_device(pg) ? pg.device : kSystemRam,
                 .write_protected = true};
    }
    MProcess child = procs[p];
    for (auto& [page, pg] : child.pages) pg.device = kSystemRam;  // copies of coherent pages
    procs.push_back(std::move(child));
    for (MDevice& d : devices) {  // the child's file table names the parent's files
      if (d.holders.count(p) != 0) d.holders.insert(static_cast<int>(procs.size()) - 1);
    }
    return StatusCode::kOk;
  }

  // The address space dies: every registered HMM mirror hears on_release.
  void exit(int p) {
    MProcess& proc = procs[p];
    if (!proc.alive) return;
    proc.alive = false;
    proc.vmas.clear();
    proc.pages.clear();
    for (MMirror& m : mirrors) {
      if (m.process == p && m.registered) m.released = true;
    }
    // exit_files, after exit_mm: the last descriptor of a file device closes it.
    for (int d = 0; d < static_cast<int>(devices.size()); ++d) (void)drop_descriptor(d, p);
  }
};

}  // namespace itn::models

#endif  // ITN_TESTING_MEMORY_MODEL_H_
