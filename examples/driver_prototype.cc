// driver_prototype: a simulated GPU driver that mirrors a process with itn::hw::MirrorDevice,
// and the checks a driver prototype would run against it.
//
// Each "GPU" keeps its own page table of the process's memory, made coherent by interval
// notifiers and the read_begin/read_retry protocol; by default there are two, one with
// private and one with coherent device memory, so pages also move from one GPU to the
// other. The buffers are 4-page ones and (--huge-buffers) 2 MiB ones advised for transparent
// huge pages, which fault in, migrate and copy on write whole, and split when an operation
// reaches part of one. Three threads share the process, in rounds:
//   cpu      writes and reads pages, mprotects buffers read-only and back, munmaps a buffer
//            and maps a fresh one, forks a child that overwrites its copy of the pages it checks,
//            and reads pages that may live in GPU memory (the touch migrates private ones back);
//   compute  faults buffers into a GPU (range_fault), reads and writes through a GPU's
//            page table;
//   dma      migrates buffers, or parts of them, into a GPU's memory and back, and takes
//            exclusive access.
// After each round the threads stop and the main thread checks, at that quiescent point,
// that each GPU page table is coherent with the CPU's (check_coherence), that GPUs and CPU
// read the same words and that no write was lost. Finally the process exits with the GPUs
// still open: every GPU access must then fail.
//
// Every word written names its writer and its page: tag (16 bits) | page number (24 bits) |
// counter (24 bits). Pages with an even page number are written only by the CPU, odd ones
// only by the GPU, so each writer knows the exact content of its own pages, and any reader
// can tell a word from another page, a stale frame or the forked child.
//
//   driver_prototype [--pages N] [--huge-buffers N] [--seed S] [--ops N]
//                    [--memory private|coherent|both] [--chunk-pages N]
//                    [--trace FILE] [--trace-max-events N]
//
// --pages is the total of the 4-page buffers; --huge-buffers the number of 2 MiB ones
// (default 2). --ops is per thread, over all rounds. --memory is the kind of GPU memory
// buffers migrate into (MirrorOptions::memory: private memory the CPU faults back, or
// coherent memory it uses in place), or both (the default: one GPU of each);
// --chunk-pages N gives the GPUs one notifier per N-page chunk instead of one over the
// whole address space (MirrorOptions::notifier_chunk_pages).
// --trace FILE records the whole run with itn::trace (sync/trace.h) and writes it as Trace
// Event Format JSON, for ui.perfetto.dev or chrome://tracing (docs/TESTING_KIT.md,
// "Traces"); the recorder keeps the first --trace-max-events events (default 262144) and
// counts the rest as dropped.
// The seed fixes each thread's sequence of operations, not their interleaving.
// Exit status: 0 if every check passed, 1 if one failed, 2 for bad flags, 3 if the trace
// could not be written.
#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "hw_model/mirror_device.h"
#include "hw_model/process.h"
#include "sync/trace.h"
#include "testing/coherence.h"

namespace {

using itn::hw::kHugePageSize;
using itn::hw::kPageSize;

constexpr std::uint64_t kBufferPages = 4;  // a small buffer: 2 CPU pages, 2 GPU pages
constexpr std::uint64_t kHugeBufferPages = kHugePageSize / kPageSize;
constexpr int kRounds = 8;

// --- The word pattern ---------------------------------------------------------------------

enum class Writer : std::uint16_t { kCpu = 0xC0C0, kGpu = 0x6060, kChild = 0xC41D };

std::uint64_t make_word(Writer w, std::uint64_t page, std::uint64_t n) {
  return std::uint64_t{static_cast<std::uint16_t>(w)} << 48 |
         ((page / kPageSize) & 0xFFFFFF) << 24 | (n & 0xFFFFFF);
}

Writer owner_of(std::uint64_t page) {
  return (page / kPageSize) % 2 == 0 ? Writer::kCpu : Writer::kGpu;
}

// A random page of the `pages`-page buffer at `start` that `w` writes.
std::uint64_t page_written_by(Writer w, std::uint64_t start, std::uint64_t pages,
                              std::mt19937_64& rng) {
  const std::uint64_t page = start + rng() % (pages / 2) * 2 * kPageSize;
  return owner_of(page) == w ? page : page + kPageSize;
}

// What a reader that does not own `page` may find there: zero, or a word its owner wrote
// for that page.
bool plausible(std::uint64_t page, std::uint64_t word) {
  return word == 0 || word == make_word(owner_of(page), page, word & 0xFFFFFF);
}

// --- Shared state and the tally of checks ---------------------------------------------------

const char* const kEventNames[] = {"unmap",      "clear",   "protection_vma", "protection_page",
                                   "soft_dirty", "release", "migrate",        "exclusive"};

enum Op {
  // cpu thread
  kCpuWrite,
  kCpuRead,
  kMprotect,
  kRemap,
  kFork,
  // compute thread
  kFault,
  kGpuRead,
  kGpuWrite,
  // dma thread
  kToDevice,
  kToSystem,
  kExclusive,
  kOpCount
};
const char* const kOpNames[] = {"writes",    "reads",        "mprotects", "remaps",
                                "forks",     "range_faults", "reads",     "writes",
                                "to_device", "to_system",    "exclusive"};

struct Tally {
  std::array<std::atomic<std::uint64_t>, kOpCount> ops{};
  std::atomic<std::uint64_t> data_checks{0}, coherence_checks{0};
  std::atomic<std::uint64_t> huge_checks{0}, huge_mapped{0};  // huge buffers, at rounds' ends
  // Expected refusals; `elsewhere`: pages a migration skipped, in the other GPU's memory.
  std::atomic<std::uint64_t> unmapped{0}, read_only{0}, gave_up{0}, elsewhere{0};
  std::mutex mu;
  std::vector<std::string> failures;

  void fail(std::string what) {
    std::lock_guard<std::mutex> l(mu);
    failures.push_back(std::move(what));
  }
  // Checks one word read from `page`: exactly `want` if the reader wrote the page last,
  // otherwise any plausible word.
  void check_word(const char* who, std::uint64_t page, std::uint64_t got,
                  std::optional<std::uint64_t> want) {
    const bool ok = want ? got == *want : plausible(page, got);
    if (ok) {
      data_checks.fetch_add(1, std::memory_order_relaxed);
    } else {
      fail(absl::StrCat(who, " read page 0x", absl::Hex(page), ": got 0x", absl::Hex(got),
                        want ? absl::StrCat(", want 0x", absl::Hex(*want)) : ", not its pattern"));
    }
  }
  // An access failed: racing with munmap, hitting a read-only buffer and giving up after
  // colliding max_fault_attempts times are what a driver must expect; anything else is a bug.
  void refused(const absl::Status& s, const char* what) {
    if (absl::IsNotFound(s)) {
      unmapped.fetch_add(1, std::memory_order_relaxed);
    } else if (absl::IsPermissionDenied(s)) {
      read_only.fetch_add(1, std::memory_order_relaxed);
    } else if (absl::IsAborted(s)) {
      gave_up.fetch_add(1, std::memory_order_relaxed);
    } else {
      fail(absl::StrCat(what, ": ", s.ToString()));
    }
  }
  void count(Op op) { ops[op].fetch_add(1, std::memory_order_relaxed); }
};

// A fresh buffer of `pages` pages: a huge one starts at a huge page boundary (of a
// mapping twice its size) and is advised for transparent huge pages.
absl::StatusOr<std::uint64_t> map_buffer(itn::hw::AddressSpace& mm, std::uint64_t pages) {
  const bool huge = pages == kHugeBufferPages;
  absl::StatusOr<std::uint64_t> addr =
      mm.mmap((huge ? 2 : 1) * pages * kPageSize, itn::hw::Prot::kReadWrite,
              itn::hw::MapKind::kAnonPrivate);
  if (!addr.ok() || !huge) return addr;
  const std::uint64_t aligned = itn::hw::huge_page_of(*addr + kHugePageSize - 1);
  if (absl::Status s = mm.madvise(aligned, kHugePageSize, itn::hw::Advice::kHugePage); !s.ok()) {
    return s;
  }
  return aligned;
}

struct Shared {
  Shared(itn::hw::Process& p, std::vector<itn::hw::MirrorDevice*> g,
         std::vector<std::uint64_t> sizes)
      : process(p),
        gpus(std::move(g)),
        buffers(sizes.size()),
        pages(std::move(sizes)),
        small(static_cast<std::uint64_t>(std::count(pages.begin(), pages.end(), kBufferPages))),
        prot(pages.size(), itn::hw::Prot::kReadWrite) {}

  itn::hw::Process& process;
  const std::vector<itn::hw::MirrorDevice*> gpus;
  std::vector<std::atomic<std::uint64_t>> buffers;  // start of each buffer; cpu remaps them
  const std::vector<std::uint64_t> pages;           // of each buffer
  const std::uint64_t small;                        // buffers of kBufferPages (the first ones)
  std::vector<itn::hw::Prot> prot;                  // cpu thread only
  std::map<std::uint64_t, std::uint64_t> cpu_words, gpu_words;  // last word each wrote, by page
  std::uint64_t cpu_n = 0, gpu_n = 0;                           // counters for make_word
  Tally tally;

  std::uint64_t buffer(std::uint64_t i) { return buffers[i].load(std::memory_order_acquire); }
  std::uint64_t bytes(std::uint64_t i) const { return pages[i] * kPageSize; }
  itn::hw::MirrorDevice& gpu(std::mt19937_64& rng) { return *gpus[rng() % gpus.size()]; }
  // A random buffer: a huge one (they come last) for one operation in 64, so that their
  // 512 pages do not make up most of the work.
  std::uint64_t pick_buffer(std::mt19937_64& rng) const {
    if (small == pages.size() || (small > 0 && rng() % 64 != 0)) return rng() % small;
    return small + rng() % (pages.size() - small);
  }
  // What `reader` knows `page` holds: its own last word there (0 if none yet), or nothing
  // if the other writer owns the page.
  std::optional<std::uint64_t> known_word(Writer reader, std::uint64_t page) {
    if (owner_of(page) != reader) return std::nullopt;
    const auto& words = reader == Writer::kCpu ? cpu_words : gpu_words;
    auto it = words.find(page);
    return it == words.end() ? 0 : it->second;
  }
};

// --- The three threads ----------------------------------------------------------------------

// The pages of a buffer a fork checks: all of a small one, every 61st of a huge one (both
// owners' pages, and enough to see the whole huge page copied on the child's first write).
std::uint64_t fork_stride(std::uint64_t pages) {
  return (pages == kHugeBufferPages ? 61 : 1) * kPageSize;
}

void cpu_fork(Shared& s) {
  absl::StatusOr<itn::Ref<itn::hw::Process>> child = s.process.fork();
  if (!child.ok()) return s.tally.fail(absl::StrCat("fork: ", child.status().ToString()));
  itn::hw::AddressSpace& child_mm = (*child)->mm();
  for (std::uint64_t b = 0; b < s.buffers.size(); ++b) {
    for (std::uint64_t page = s.buffer(b); page < s.buffer(b) + s.bytes(b);
         page += fork_stride(s.pages[b])) {
      // The child starts with the parent's memory...
      absl::StatusOr<std::uint64_t> word = child_mm.cpu_read(page);
      if (!word.ok()) return s.tally.fail(absl::StrCat("child read: ", word.status().ToString()));
      s.tally.check_word("forked child", page, *word, s.known_word(Writer::kCpu, page));
      (void)child_mm.cpu_write(page, make_word(Writer::kChild, page, ++s.cpu_n));
    }
  }
  (*child)->exit();
  // ...and nothing it wrote reaches the parent.
  for (std::uint64_t b = 0; b < s.buffers.size(); ++b) {
    for (std::uint64_t page = s.buffer(b); page < s.buffer(b) + s.bytes(b);
         page += fork_stride(s.pages[b])) {
      absl::StatusOr<std::uint64_t> word = s.process.mm().cpu_read(page);
      if (!word.ok()) {
        return s.tally.fail(absl::StrCat("read after fork: ", word.status().ToString()));
      }
      s.tally.check_word("cpu after fork", page, *word, s.known_word(Writer::kCpu, page));
    }
  }
}

void cpu_thread(Shared& s, std::mt19937_64 rng, std::uint64_t ops) {
  itn::hw::AddressSpace& mm = s.process.mm();
  for (std::uint64_t i = 0; i < ops; ++i) {
    const std::uint64_t b = s.pick_buffer(rng);
    const unsigned dice = rng() % 100;
    if (dice < 40) {
      s.tally.count(kCpuWrite);
      const std::uint64_t page = page_written_by(Writer::kCpu, s.buffer(b), s.pages[b], rng);
      const std::uint64_t word = make_word(Writer::kCpu, page, ++s.cpu_n);
      if (absl::Status st = mm.cpu_write(page, word); st.ok()) {
        s.cpu_words[page] = word;
      } else {
        s.tally.refused(st, "cpu write");
      }
    } else if (dice < 80) {  // may touch a page in GPU memory or held exclusively
      s.tally.count(kCpuRead);
      const std::uint64_t page = s.buffer(b) + rng() % s.pages[b] * kPageSize;
      absl::StatusOr<std::uint64_t> word = mm.cpu_read(page);
      if (!word.ok()) {
        s.tally.fail(absl::StrCat("cpu read: ", word.status().ToString()));
      } else {
        s.tally.check_word("cpu", page, *word, s.known_word(Writer::kCpu, page));
      }
    } else if (dice < 90) {
      s.tally.count(kMprotect);
      s.prot[b] =
          s.prot[b] == itn::hw::Prot::kReadWrite ? itn::hw::Prot::kRead : itn::hw::Prot::kReadWrite;
      if (absl::Status st = mm.mprotect(s.buffer(b), s.bytes(b), s.prot[b]); !st.ok()) {
        s.tally.fail(absl::StrCat("mprotect: ", st.ToString()));
      }
    } else if (dice < 96) {
      s.tally.count(kRemap);
      if (absl::Status st = mm.munmap(s.buffer(b), s.bytes(b)); !st.ok()) {
        s.tally.fail(absl::StrCat("munmap: ", st.ToString()));
      }
      absl::StatusOr<std::uint64_t> fresh = map_buffer(mm, s.pages[b]);
      if (!fresh.ok()) return s.tally.fail(absl::StrCat("mmap: ", fresh.status().ToString()));
      s.buffers[b].store(*fresh, std::memory_order_release);
      s.prot[b] = itn::hw::Prot::kReadWrite;
    } else {
      s.tally.count(kFork);
      cpu_fork(s);
    }
  }
}

void compute_thread(Shared& s, std::mt19937_64 rng, std::uint64_t ops) {
  for (std::uint64_t i = 0; i < ops; ++i) {
    const std::uint64_t b = s.pick_buffer(rng);
    const std::uint64_t start = s.buffer(b);
    itn::hw::MirrorDevice& gpu = s.gpu(rng);
    const unsigned dice = rng() % 100;
    if (dice < 30) {
      s.tally.count(kFault);
      const bool write = rng() % 2 == 0;
      if (absl::Status st = gpu.range_fault(start, s.bytes(b), write); !st.ok()) {
        s.tally.refused(st, "range_fault");
      }
    } else if (dice < 65) {
      s.tally.count(kGpuRead);
      absl::StatusOr<std::vector<std::uint64_t>> words = gpu.read(start, s.pages[b]);
      if (!words.ok()) {
        s.tally.refused(words.status(), "gpu read");
        continue;
      }
      for (std::uint64_t p = 0; p < s.pages[b]; ++p) {
        const std::uint64_t page = start + p * kPageSize;
        s.tally.check_word("gpu", page, (*words)[p], s.known_word(Writer::kGpu, page));
      }
    } else {
      s.tally.count(kGpuWrite);
      const std::uint64_t page = page_written_by(Writer::kGpu, start, s.pages[b], rng);
      const std::uint64_t word = make_word(Writer::kGpu, page, ++s.gpu_n);
      if (absl::Status st = gpu.write(page, {&word, 1}); st.ok()) {
        s.gpu_words[page] = word;
      } else {
        s.tally.refused(st, "gpu write");
      }
    }
  }
}

void dma_thread(Shared& s, std::mt19937_64 rng, std::uint64_t ops) {
  for (std::uint64_t i = 0; i < ops; ++i) {
    const std::uint64_t b = s.pick_buffer(rng);
    itn::hw::MirrorDevice& gpu = s.gpu(rng);
    // The whole buffer, or one part of it in four (a huge page then splits).
    std::uint64_t first = 0, count = s.pages[b];
    if (rng() % 4 == 0) {
      first = rng() % s.pages[b];
      count = 1 + rng() % (s.pages[b] - first);
    }
    const std::uint64_t start = s.buffer(b) + first * kPageSize, length = count * kPageSize;
    const unsigned dice = rng() % 100;
    absl::Status st;
    if (dice < 45) {
      s.tally.count(kToDevice);
      // As drivers do: what can move moves; pages in the other GPU's memory stay there.
      absl::StatusOr<itn::hw::MirrorDevice::Outcomes> moved =
          gpu.migrate_to_device(start, length, itn::hw::Moves::kWhatItCan);
      st = moved.status();
      for (itn::hw::PageOutcome o : moved.ok() ? *moved : itn::hw::MirrorDevice::Outcomes{}) {
        if (o == itn::hw::PageOutcome::kOnAnotherDevice) {
          s.tally.elsewhere.fetch_add(1, std::memory_order_relaxed);
        } else if (o == itn::hw::PageOutcome::kNotAnonymous) {
          s.tally.fail("dma: an anonymous buffer's page was skipped as not anonymous");
        }
      }
    } else if (dice < 90) {
      s.tally.count(kToSystem);
      st = gpu.migrate_to_system(start, length).status();
    } else {
      s.tally.count(kExclusive);
      st = gpu.make_exclusive(start, length).status();
    }
    if (!st.ok()) s.tally.refused(st, "dma");
  }
}

// --- Quiescent checks -----------------------------------------------------------------------

void check_coherent(Shared& s, int round) {
  for (itn::hw::MirrorDevice* gpu : s.gpus) {
    if (absl::Status st = itn::hw::check_coherence(*gpu); st.ok()) {
      s.tally.coherence_checks.fetch_add(1);
    } else {
      s.tally.fail(absl::StrCat("round ", round, ": ", st.ToString()));
    }
  }
}

// No thread runs: each GPU and the CPU must read exactly what each page's owner wrote last.
void verify_quiescent(Shared& s, int round) {
  check_coherent(s, round);
  for (std::uint64_t b = 0; b < s.buffers.size(); ++b) {
    const std::uint64_t start = s.buffer(b);
    itn::hw::MirrorDevice& gpu = *s.gpus[(b + round) % s.gpus.size()];  // each GPU, in turn
    absl::StatusOr<std::vector<std::uint64_t>> words = gpu.read(start, s.pages[b]);
    if (!words.ok()) {
      return s.tally.fail(absl::StrCat("quiescent gpu read: ", words.status().ToString()));
    }
    for (std::uint64_t p = 0; p < s.pages[b]; ++p) {
      const std::uint64_t page = start + p * kPageSize;
      s.tally.check_word("quiescent gpu", page, (*words)[p], s.known_word(owner_of(page), page));
      absl::StatusOr<std::uint64_t> cpu = s.process.mm().cpu_read(page);  // migrates back
      if (!cpu.ok()) {
        return s.tally.fail(absl::StrCat("quiescent cpu read: ", cpu.status().ToString()));
      }
      s.tally.check_word("quiescent cpu", page, *cpu, (*words)[p]);
    }
    if (s.pages[b] == kHugeBufferPages) {
      s.tally.huge_checks.fetch_add(1);
      absl::StatusOr<itn::hw::PageEntry> first = s.process.mm().lookup(start);
      if (first.ok() && first->huge) s.tally.huge_mapped.fetch_add(1);
    }
  }
  check_coherent(s, round);
}

// --- Flags and report -----------------------------------------------------------------------

struct Config {
  std::uint64_t pages = 64;
  std::uint64_t huge_buffers = 2;
  std::uint64_t seed = 1;
  std::uint64_t ops = 16000;  // per thread, over all rounds
  std::uint64_t chunk_pages = 0;
  std::string trace_path;  // empty: no recording
  std::uint64_t trace_max_events = itn::trace::RecorderOptions{}.max_events;
  // The memory of each GPU.
  std::vector<itn::hw::DeviceMemory> memory = {itn::hw::DeviceMemory::kPrivate,
                                               itn::hw::DeviceMemory::kCoherent};
};

std::optional<Config> parse_flags(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") return std::nullopt;
    if (flag == "--memory") {
      const std::string_view kind = ++i < argc ? argv[i] : "";
      if (kind == "private" || kind == "coherent") {
        c.memory = {kind == "coherent" ? itn::hw::DeviceMemory::kCoherent
                                       : itn::hw::DeviceMemory::kPrivate};
      } else if (kind != "both") {
        std::fprintf(stderr, "driver_prototype: --memory is private, coherent or both, got '%s'\n",
                     std::string(kind).c_str());
        return std::nullopt;
      }
      continue;
    }
    if (flag == "--trace") {
      c.trace_path = ++i < argc ? argv[i] : "";
      if (c.trace_path.empty()) {
        std::fprintf(stderr, "driver_prototype: --trace needs a file name\n");
        return std::nullopt;
      }
      continue;
    }
    std::uint64_t* value = flag == "--pages"              ? &c.pages
                           : flag == "--huge-buffers"     ? &c.huge_buffers
                           : flag == "--seed"             ? &c.seed
                           : flag == "--ops"              ? &c.ops
                           : flag == "--chunk-pages"      ? &c.chunk_pages
                           : flag == "--trace-max-events" ? &c.trace_max_events
                                                          : nullptr;
    if (value == nullptr) {
      std::fprintf(stderr, "driver_prototype: unknown flag '%s'\n", argv[i]);
      return std::nullopt;
    }
    const std::string_view text = ++i < argc ? argv[i] : "";
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      std::fprintf(stderr, "driver_prototype: %s needs a number, got '%s'\n", flag.data(),
                   std::string(text).c_str());
      return std::nullopt;
    }
  }
  if (c.pages < kBufferPages || c.pages > 65536 || c.huge_buffers > 16 || c.ops == 0 ||
      c.ops > 10'000'000 || c.chunk_pages > 65536 || c.trace_max_events == 0 ||
      c.trace_max_events > 100'000'000) {
    std::fprintf(stderr,
                 "driver_prototype: need 4 <= --pages <= 65536, --huge-buffers <= 16, "
                 "1 <= --ops <= 10^7, --chunk-pages <= 65536, "
                 "1 <= --trace-max-events <= 10^8\n");
    return std::nullopt;
  }
  return c;
}

void print_ops(const char* thread, const Tally& t, Op first, Op last) {
  std::printf("  %-9s", thread);
  for (int op = first; op <= last; ++op) {
    std::printf("%s %llu %s", op == first ? "" : ",", static_cast<unsigned long long>(t.ops[op]),
                kOpNames[op]);
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  const std::optional<Config> config = parse_flags(argc, argv);
  if (!config) {
    std::fprintf(stderr,
                 "usage: driver_prototype [--pages N] [--huge-buffers N] [--seed S] [--ops N] "
                 "[--memory private|coherent|both] [--chunk-pages N] [--trace FILE] "
                 "[--trace-max-events N]\n");
    return 2;
  }
  // The whole run, from before the process exists to after the GPUs are closed.
  std::optional<itn::trace::Recorder> recorder;
  if (!config->trace_path.empty()) {
    recorder.emplace(itn::trace::RecorderOptions{
        .max_events = static_cast<std::size_t>(config->trace_max_events),
        .process_name = "driver_prototype"});
    if (absl::Status st = recorder->start(); !st.ok()) {
      std::fprintf(stderr, "driver_prototype: %s\n", st.ToString().c_str());
      return 3;
    }
    itn::trace::set_thread_name("main");
  }
  const auto begin = std::chrono::steady_clock::now();
  const std::uint64_t small_buffers = (config->pages + kBufferPages - 1) / kBufferPages;
  const std::uint64_t ops_per_round = (config->ops + kRounds - 1) / kRounds;

  itn::Ref<itn::hw::Process> process = itn::make_ref<itn::hw::Process>();
  std::vector<itn::Ref<itn::hw::MirrorDevice>> gpus;
  for (const itn::hw::DeviceMemory memory : config->memory) {
    gpus.push_back(itn::hw::MirrorDevice::open(
                       *process, {.memory = memory, .notifier_chunk_pages = config->chunk_pages})
                       .value());
  }
  std::vector<itn::hw::MirrorDevice*> gpu_ptrs;
  for (const auto& gpu : gpus) gpu_ptrs.push_back(gpu.get());
  std::vector<std::uint64_t> sizes(small_buffers, kBufferPages);
  sizes.insert(sizes.end(), config->huge_buffers, kHugeBufferPages);
  Shared s(*process, gpu_ptrs, sizes);
  for (std::uint64_t b = 0; b < s.buffers.size(); ++b) {
    s.buffers[b] = map_buffer(process->mm(), s.pages[b]).value();
  }

  for (int round = 0; round < kRounds; ++round) {
    itn::trace::Span round_span("example", "round", [&] {
      return itn::trace::Args{{"round", round}};
    });
    auto rng = [&](std::uint64_t thread) {
      return std::mt19937_64(config->seed * 1'000'003 + thread * 7'919 + round);
    };
    // Each thread named for the trace (a no-op without a recording).
    auto named = [round](const char* name, auto body) {
      return [name, round, body](auto&&... args) {
        itn::trace::set_thread_name(absl::StrCat(name, " r", round));
        body(args...);
      };
    };
    std::thread cpu(named("cpu", cpu_thread), std::ref(s), rng(0), ops_per_round);
    std::thread compute(named("compute", compute_thread), std::ref(s), rng(1), ops_per_round);
    std::thread dma(named("dma", dma_thread), std::ref(s), rng(2), ops_per_round);
    cpu.join();
    compute.join();
    dma.join();
    itn::trace::Span verify_span("example", "verify_quiescent");
    verify_quiescent(s, round);
  }

  // The process exits while the GPUs still mirror it: they hear release and from then on
  // every access fails with kFailedPrecondition.
  process->exit();
  std::vector<itn::hw::MirrorCounters> counters;
  for (const auto& gpu : gpus) {
    absl::StatusOr<std::vector<std::uint64_t>> late = gpu->read(s.buffer(0), 1);
    if (absl::IsFailedPrecondition(late.status())) {
      s.tally.data_checks.fetch_add(1);
    } else {
      s.tally.fail(absl::StrCat("gpu read after exit: ", late.status().ToString()));
    }
    counters.push_back(gpu->counters());
    gpu->close();
  }
  // As a driver's module unload does (the kernel's mmu_notifier_synchronize()): wait for
  // the deferred frees of the closes' removes, after their grace period.
  process->mm().notifiers().barrier();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  bool trace_failed = false;
  if (recorder) {
    recorder->stop();
    const std::size_t events = recorder->event_count();
    if (absl::Status st = recorder->write_json(config->trace_path); st.ok()) {
      std::printf("trace: wrote %zu events (%llu dropped at the cap of %llu) to %s\n", events,
                  static_cast<unsigned long long>(recorder->dropped()),
                  static_cast<unsigned long long>(config->trace_max_events),
                  config->trace_path.c_str());
    } else {
      std::fprintf(stderr, "driver_prototype: %s\n", st.ToString().c_str());
      trace_failed = true;
    }
  }

  const Tally& t = s.tally;
  std::printf("driver_prototype: %zu GPU(s) mirror one process; 3 threads, %d rounds\n",
              gpus.size(), kRounds);
  for (std::size_t g = 0; g < gpus.size(); ++g) {
    std::printf("  gpu %zu         %s memory, %s\n", g,
                config->memory[g] == itn::hw::DeviceMemory::kCoherent ? "coherent" : "private",
                config->chunk_pages == 0
                    ? "one whole-space notifier"
                    : absl::StrCat("a notifier per ", config->chunk_pages, " pages").c_str());
  }
  std::printf(
      "  config        %llu buffers of %llu pages and %llu huge ones of %llu, seed %llu, "
      "%llu ops per thread\n",
      static_cast<unsigned long long>(small_buffers), static_cast<unsigned long long>(kBufferPages),
      static_cast<unsigned long long>(config->huge_buffers),
      static_cast<unsigned long long>(kHugeBufferPages),
      static_cast<unsigned long long>(config->seed),
      static_cast<unsigned long long>(ops_per_round * kRounds));
  print_ops("cpu", t, kCpuWrite, kFork);
  print_ops("compute", t, kFault, kGpuWrite);
  print_ops("dma", t, kToDevice, kExclusive);
  std::printf(
      "  refused       %llu unmapped, %llu read-only, %llu gave up after %d collisions\n"
      "  skipped       %llu pages in the other GPU's memory (migrations move what they can)\n",
      static_cast<unsigned long long>(t.unmapped.load()),
      static_cast<unsigned long long>(t.read_only.load()),
      static_cast<unsigned long long>(t.gave_up.load()),
      itn::hw::MirrorOptions{}.max_fault_attempts,
      static_cast<unsigned long long>(t.elsewhere.load()));
  for (std::size_t g = 0; g < counters.size(); ++g) {
    const itn::hw::MirrorCounters& c = counters[g];
    std::printf("  gpu %zu faults  %llu installed, %llu retries (an invalidation intervened)\n", g,
                static_cast<unsigned long long>(c.faults),
                static_cast<unsigned long long>(c.retries));
    std::printf("  invalidations");
    for (std::size_t e = 0; e < c.invalidations.size(); ++e) {
      std::printf("%s %s %llu", e == 0 ? "" : (e == 4 ? ",\n               " : ","), kEventNames[e],
                  static_cast<unsigned long long>(c.invalidations[e]));
    }
    std::printf("\n");
  }
  std::printf("  thp           %llu of %llu huge buffers were one huge page at a round's end\n",
              static_cast<unsigned long long>(t.huge_mapped.load()),
              static_cast<unsigned long long>(t.huge_checks.load()));
  std::printf("  coherence     %llu checks passed\n",
              static_cast<unsigned long long>(t.coherence_checks.load()));
  std::printf("  data          %llu checks passed\n",
              static_cast<unsigned long long>(t.data_checks.load()));
  std::printf("  failures      %zu\n", t.failures.size());
  for (std::size_t i = 0; i < t.failures.size() && i < 10; ++i) {
    std::printf("    %s\n", t.failures[i].c_str());
  }
  std::printf("  elapsed       %.2f s\n", secs);
  if (!t.failures.empty()) {
    std::printf("FAILED (operations replay with --seed %llu; interleavings differ)\n",
                static_cast<unsigned long long>(config->seed));
    return 1;
  }
  std::printf("OK: no GPU saw a stale, foreign or lost word\n");
  return trace_failed ? 3 : 0;
}
