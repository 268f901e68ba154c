#include "hw_model/mirror_device.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "hw_model/btree_page_table.h"
#include "hw_model/internal/page_range.h"
#include "sync/trace.h"

namespace itn::hw {
namespace {

constexpr std::string_view kTrace = "hw";

// The arguments of a device operation's span.
trace::Args access_args(const void* device, std::uint64_t addr, std::uint64_t length) {
  return trace::Args{{"device", trace::hex(device)},
                     {"start", trace::hex(addr)},
                     {"end", trace::hex(addr + length)}};
}

}  // namespace

class MirrorDevice::Subscription : public IntervalNotifier {
 public:
  explicit Subscription(MirrorDevice& device) : device_(device) {}
  bool invalidate(const Range& range, std::uint64_t cur_seq) override {
    return device_.invalidate(*this, range, cur_seq);
  }

 private:
  MirrorDevice& device_;  // outlives the subscription's insertion (close() removes it)
};

MirrorDevice::MirrorDevice(Ref<AddressSpace> mm, MirrorOptions options,
                           std::unique_ptr<DevicePageTable> table)
    : mm_(std::move(mm)),
      options_(options),
      sub_(make_ref<Subscription>(*this)),
      table_(table ? std::move(table) : std::make_unique<BtreePageTable>()) {}

absl::StatusOr<Ref<MirrorDevice>> MirrorDevice::open(Process& process, MirrorOptions options,
                                                     std::unique_ptr<DevicePageTable> table) {
  if (options.max_fault_attempts < 1) {
    return absl::InvalidArgumentError("open: max_fault_attempts must be at least 1");
  }
  if (options.notifier_chunk_pages > (std::uint64_t{1} << 28)) {
    return absl::InvalidArgumentError("open: notifier_chunk_pages is past 2^28 (1 TiB chunks)");
  }
  Ref<MirrorDevice> device = make_ref<MirrorDevice>(process.mm_ref(), options, std::move(table));
  absl::Status s = absl::OkStatus();
  if (options.notifier_chunk_pages == 0) {
    // Every address: the device may mirror any of them.
    s = device->mm_->notifiers().insert(device->sub_, Interval::whole_space(), device.get());
  } else if (device->mm_->notifiers().released()) {
    s = absl::FailedPreconditionError("the address space has exited");
  }
  if (!s.ok()) {
    MutexLock l(device->mu_);
    device->closed_ = true;  // nothing to remove
    return absl::FailedPreconditionError(absl::StrCat("open: ", s.message()));
  }
  return device;
}

absl::StatusOr<int> MirrorDevice::open_file(Process& process, MirrorOptions options,
                                            std::unique_ptr<DevicePageTable> table) {
  absl::StatusOr<Ref<MirrorDevice>> device = open(process, options, std::move(table));
  if (!device.ok()) return device.status();
  MirrorDevice* const raw = device->get();  // the file's private data keeps it alive
  // If no descriptor can name the file, its last Ref goes here: the device closes.
  return process.install(make_ref<OpenFile>(
      "hmm_dmirror", [raw] { raw->close(); }, *device));
}

absl::StatusOr<MirrorDevice::FileHandle> MirrorDevice::from_file(const Process& process, int fd) {
  absl::StatusOr<Ref<OpenFile>> file = process.file(fd);
  if (!file.ok()) return file.status();
  auto* device = dynamic_cast<MirrorDevice*>((*file)->private_data());
  if (device == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("descriptor ", fd, " is ", (*file)->name(), ", not a MirrorDevice"));
  }
  return FileHandle(*std::move(file), Ref<MirrorDevice>::from_this(device));
}

MirrorDevice::~MirrorDevice() { close(); }

void MirrorDevice::close() {
  {
    MutexLock l(mu_);
    if (closed_) return;
    closed_ = true;
  }
  trace::Span span(kTrace, "device close", [&] {
    return trace::Args{{"device", trace::hex(this)}};
  });
  // The device's memory goes away with it: its pages return to system RAM first.
  mm_->evict_device(this);
  if (options_.notifier_chunk_pages == 0) {
    ITN_CHECK_OK(mm_->notifiers().remove(*sub_), "the subscription was inserted by open()");
  } else {
    MutexLock l(chunks_mu_);
    for (auto& [start, sub] : chunks_) {
      ITN_CHECK_OK(mm_->notifiers().remove(*sub), "chunk notifiers are inserted by cover()");
    }
    chunks_.clear();
  }
  MutexLock l(mu_);
  table_->forget(0, kRangeEndMax);
}

absl::StatusOr<std::uint64_t> MirrorDevice::mmap(std::uint64_t length, Prot prot) {
  if (absl::Status s = check_open(); !s.ok()) return s;
  // The driver inserts its pages as it maps them: populated, the file's pages are mapped
  // read-only (a private mapping) before anyone sees the range.
  return mm_->mmap(length, prot, MapKind::kFilePrivate, make_ref<File>(), 0, /*populate=*/true);
}

absl::Status MirrorDevice::check_open() const {
  MutexLock l(mu_);
  if (closed_) return absl::FailedPreconditionError("the device was closed");
  return absl::OkStatus();
}

bool MirrorDevice::invalidate(Subscription& sub, const Range& range, std::uint64_t cur_seq) {
  invalidations_[static_cast<int>(range.event)].fetch_add(1, std::memory_order_relaxed);
  if (range.blockable) {
    MutexLock l(mu_);
    invalidate_locked(sub, range, cur_seq);
    return true;
  }
  if (!mu_.try_lock()) return false;  // would sleep: refuse the non-blocking invalidation
  invalidate_locked(sub, range, cur_seq);
  mu_.unlock();
  return true;
}

void MirrorDevice::invalidate_locked(Subscription& sub, const Range& range, std::uint64_t cur_seq) {
  // Always: a fault of this device under `sub` that walked the old CPU entries must
  // retry (I18). The entries of the whole range go: those outside `sub`'s chunk belong
  // to chunks whose notifiers this invalidation calls too.
  sub.set_seq(cur_seq);
  if (range.owner == this && range.event == Event::kExclusive) {
    return;  // our own exclusive access: same frames, and the hook marks them ours
  }
  if (range.owner == this && range.event == Event::kMigrate) {
    // Our own migration: keep the entries for reads (the frames are being copied, not
    // changed), but no write may reach a frame after the copy read it, or it would be
    // lost. A write now faults, and its walk (on the read side of the mmap lock) waits
    // until the migration, hook and all, is over.
    table_->write_protect(range.start, range.end);
    return;
  }
  table_->forget(range.start, range.end);
}

absl::StatusOr<AddressSpace::FaultedRange> MirrorDevice::walk(std::uint64_t addr,
                                                              std::uint64_t length, bool write,
                                                              AddressSpace::WalkBegin begin,
                                                              AddressSpace::WalkDone then) {
  if (!mm_->mmget_not_zero()) {
    return absl::FailedPreconditionError("device access: the address space has exited");
  }
  absl::StatusOr<AddressSpace::FaultedRange> walked =
      mm_->fault_range(addr, length, write, this, begin, then);
  mm_->mmput();  // may be the last user: the teardown then runs here
  return walked;
}

absl::StatusOr<std::vector<MirrorDevice::Subscription*>> MirrorDevice::cover(std::uint64_t addr,
                                                                             std::uint64_t length,
                                                                             bool write) {
  if (absl::Status s = internal::check_page_range("device access", addr, length); !s.ok()) {
    return s;
  }
  if (options_.notifier_chunk_pages == 0) return std::vector<Subscription*>{sub_.get()};
  // Notifiers only for memory the access could reach: a range with a hole or a protection
  // that forbids the access would leave notifiers behind for nothing (until close()).
  if (absl::Status s = mm_->check_access(addr, length, write); !s.ok()) return s;
  const std::uint64_t chunk = options_.notifier_chunk_pages * kPageSize;
  std::vector<Subscription*> subs;
  MutexLock l(chunks_mu_);
  for (std::uint64_t at = addr; at < addr + length;) {
    const std::uint64_t start = at - at % chunk;
    // The top chunk stops at the end of the address space.
    const std::uint64_t size = std::min(chunk, ~std::uint64_t{0} - start + 1);
    Ref<Subscription>& sub = chunks_[start];
    if (!sub) {
      Ref<Subscription> fresh = make_ref<Subscription>(*this);
      if (absl::Status s = mm_->notifiers().insert(fresh, Interval::sized(start, size), this);
          !s.ok()) {
        chunks_.erase(start);
        return absl::FailedPreconditionError(absl::StrCat("device access: ", s.message()));
      }
      sub = std::move(fresh);
    }
    subs.push_back(sub.get());
    if (size < chunk) break;  // the top of the address space
    at = start + chunk;
  }
  return subs;
}

absl::Status MirrorDevice::range_fault(std::uint64_t addr, std::uint64_t length, bool write) {
  if (absl::Status s = internal::check_page_range("range_fault", addr, length); !s.ok()) return s;
  if (absl::Status s = check_open(); !s.ok()) return s;
  absl::StatusOr<std::vector<Subscription*>> subs = cover(addr, length, write);
  if (absl::IsNotFound(subs.status()) || absl::IsPermissionDenied(subs.status())) {
    // The walk fails too, after faulting the pages before the one it fails at; nothing is
    // installed. (If the range became accessible meanwhile, the caller may try again.)
    absl::StatusOr<AddressSpace::FaultedRange> walked = walk(addr, length, write);
    return walked.ok() ? subs.status() : walked.status();
  }
  if (!subs.ok()) return subs.status();
  return fault(*subs, addr, length, write);
}

absl::Status MirrorDevice::fault(const std::vector<Subscription*>& subs, std::uint64_t addr,
                                 std::uint64_t length, bool write) {
  // Walks invalidated although their own faults changed nothing (someone else's change
  // came between read_begin() and read_retry()), and walks whose faults had to redo work
  // that a change had undone. A walk whose own faults invalidated (a copy-on-write
  // break, a page pulled back from another device) is not a collision: the next one
  // finds those pages ready.
  int collisions = 0;
  int redone = 0;
  int walks = 0;
  bool faulted_before = false;
  trace::Span span(kTrace, "device fault", [&] {
    trace::Args args = access_args(this, addr, length);
    args.emplace_back("write", write);
    args.emplace_back("notifiers", subs.size());
    return args;
  });
  const auto finish = [&](std::string_view result) {
    span.end_arg("walks", walks);
    span.end_arg("result", result);
  };
  std::vector<std::uint64_t> seqs(subs.size());
  auto stale = [&](auto retry) {
    for (std::size_t i = 0; i < subs.size(); ++i) {
      if (retry(*subs[i], seqs[i])) return true;
    }
    return false;
  };
  while (collisions < options_.max_fault_attempts && redone < options_.max_fault_attempts) {
    bool installed = false;
    // Both with the walk's hold of the mmap lock (see AddressSpace::fault_range()).
    const auto begin = [&] {
      for (std::size_t i = 0; i < subs.size(); ++i) seqs[i] = subs[i]->read_begin();
    };
    const auto install_unless_stale = [&](const AddressSpace::FaultedRange& walk) {
      // check_retry() first: a walk known to be stale does not contend for the driver
      // lock with the invalidation that made it so.
      if (stale([](Subscription& sub, std::uint64_t seq) { return sub.check_retry(seq); })) return;
      MutexLock l(mu_);
      // No invalidation reached a notifier of the range after its read_begin: the walk
      // holds, for every chunk at once.
      if (stale([](Subscription& sub, std::uint64_t seq) { return sub.read_retry(seq); })) return;
      table_->install_run(addr, walk.entries);
      installed = true;
    };
    absl::StatusOr<AddressSpace::FaultedRange> walked =
        walk(addr, length, write, begin, install_unless_stale);
    ++walks;
    if (!walked.ok()) {
      if (span.active()) finish(absl::StatusCodeToString(walked.status().code()));
      return walked.status();
    }
    if (installed) {
      faults_.fetch_add(1, std::memory_order_relaxed);
      finish("installed");
      return absl::OkStatus();
    }
    retries_.fetch_add(1, std::memory_order_relaxed);
    if (walked->faulted == 0) {
      ++collisions;
    } else if (faulted_before) {
      ++redone;
    }
    faulted_before = faulted_before || walked->faulted != 0;
  }
  finish("gave up");
  return absl::AbortedError(absl::StrCat("range_fault: [", addr, ", ", addr + length,
                                         ") kept being invalidated: ", collisions,
                                         " walks collided, ", redone, " redid undone faults"));
}

void MirrorDevice::install(std::uint64_t page, const PageEntry& entry, bool covered) {
  MutexLock l(mu_);
  if (covered) {
    table_->install(page, entry);
  } else {
    table_->forget(page, page + kPageSize);
  }
}

absl::Status MirrorDevice::access(std::uint64_t addr, std::uint64_t pages, bool write,
                                  absl::FunctionRef<void(std::uint64_t i, Frame& frame)> fn) {
  if (pages == 0 || pages > (~std::uint64_t{0} - addr) / kPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("device access: bad page count ", pages));
  }
  for (int attempt = 0;; ++attempt) {
    {
      MutexLock l(mu_);
      if (table_->access(addr, pages, write, fn)) return absl::OkStatus();
    }
    if (attempt == options_.max_fault_attempts) {
      return absl::AbortedError(
          absl::StrCat("device access at ", addr, ": entries kept being invalidated"));
    }
    if (absl::Status s = range_fault(addr, pages * kPageSize, write); !s.ok()) return s;
  }
}

absl::StatusOr<std::vector<std::uint64_t>> MirrorDevice::read(std::uint64_t addr,
                                                              std::uint64_t pages) {
  std::vector<std::uint64_t> words(pages);
  absl::Status s = access(addr, pages, /*write=*/false,
                          [&](std::uint64_t i, Frame& frame) { words[i] = frame.read(); });
  if (!s.ok()) return s;
  return words;
}

absl::Status MirrorDevice::write(std::uint64_t addr, std::span<const std::uint64_t> words) {
  return access(addr, words.size(), /*write=*/true,
                [&](std::uint64_t i, Frame& frame) { frame.write(words[i]); });
}

std::vector<PageSnapshot> MirrorDevice::snapshot(std::uint64_t addr, std::uint64_t pages) const {
  std::vector<PageSnapshot> out;
  out.reserve(pages);
  // One look at the whole range: a migration or fork in progress is seen before or after.
  for (const absl::StatusOr<PageEntry>& e : mm_->lookup_range(addr, pages)) {
    if (!e.ok()) {
      out.push_back(PageSnapshot::kError);
      continue;
    }
    const PageSnapshot access = (e->writable ? PageSnapshot::kWrite : PageSnapshot::kRead) |
                                (e->huge ? PageSnapshot::kPmd : PageSnapshot::kNone);
    if (e->device != nullptr && e->coherent) {
      out.push_back((e->device == this ? PageSnapshot::kDeviceCoherentLocal
                                       : PageSnapshot::kDeviceCoherentRemote) |
                    access);
    } else if (e->device == this) {
      out.push_back(PageSnapshot::kDevicePrivateLocal | access);
    } else if (e->device != nullptr || !e->frame) {
      out.push_back(PageSnapshot::kNone);
    } else if (e->zero_page) {
      out.push_back(PageSnapshot::kZero | access);
    } else {
      out.push_back(access);
    }
  }
  return out;
}

absl::StatusOr<MirrorDevice::Outcomes> MirrorDevice::change_pages(
    std::uint64_t addr, std::uint64_t length,
    absl::FunctionRef<absl::StatusOr<Outcomes>(MigrateHook)> change) {
  if (absl::Status s = check_open(); !s.ok()) return s;
  // The notifiers first: the hook installs entries that later invalidations must reach.
  // A range they cannot cover (a hole, PROT_NONE) may still change: a hole or private
  // PROT_NONE page may be mapped meanwhile, and a shared PROT_NONE page is skipped by a
  // migration of what it can. The hook then installs no entry no notifier of this device
  // hears about; it drops the old entry of each page that moved instead (kept for reads
  // by the device's own kMigrate, it names the frame the page left).
  absl::StatusOr<std::vector<Subscription*>> subs = cover(addr, length, /*write=*/false);
  if (!subs.ok() && !absl::IsNotFound(subs.status()) && !absl::IsPermissionDenied(subs.status())) {
    return subs.status();
  }
  const bool covered = subs.ok();
  return change(
      [this, covered](std::uint64_t page, const PageEntry& e) { install(page, e, covered); });
}

absl::StatusOr<MirrorDevice::Outcomes> MirrorDevice::migrate_to_device(std::uint64_t addr,
                                                                       std::uint64_t length,
                                                                       Moves moves) {
  trace::Span span(kTrace, "migrate_to_device", [&] { return access_args(this, addr, length); });
  return change_pages(addr, length, [&](MigrateHook hook) {
    return mm_->migrate_to_device(
        addr, length, this, hook, options_.memory, [this] { return allocate_huge(); }, moves);
  });
}

absl::StatusOr<MirrorDevice::Outcomes> MirrorDevice::migrate_to_system(std::uint64_t addr,
                                                                       std::uint64_t length,
                                                                       Moves moves) {
  trace::Span span(kTrace, "migrate_to_system", [&] { return access_args(this, addr, length); });
  return change_pages(addr, length, [&](MigrateHook hook) {
    return mm_->migrate_to_system(
        addr, length, this, hook, [this] { return allocate_huge(); }, moves);
  });
}

absl::StatusOr<MirrorDevice::Outcomes> MirrorDevice::make_exclusive(std::uint64_t addr,
                                                                    std::uint64_t length,
                                                                    Moves moves) {
  trace::Span span(kTrace, "make_exclusive", [&] { return access_args(this, addr, length); });
  return change_pages(addr, length, [&](MigrateHook hook) {
    return mm_->make_exclusive(addr, length, this, hook, moves);
  });
}

MirrorCounters MirrorDevice::counters() const {
  MirrorCounters c;
  // Relaxed: statistics, ordered by nothing.
  c.faults = faults_.load(std::memory_order_relaxed);
  c.retries = retries_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < c.invalidations.size(); ++i) {
    c.invalidations[i] = invalidations_[i].load(std::memory_order_relaxed);
  }
  return c;
}

std::map<std::uint64_t, MirrorDevice::DeviceEntry> MirrorDevice::entries_for_testing() const {
  MutexLock l(mu_);
  return table_->entries();
}

}  // namespace itn::hw
