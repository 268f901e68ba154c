// Real-thread stress of SrcuDomain, meant for the ASan and TSan builds: several readers
// dereference a shared pointer inside read sections while a writer replaces it and frees
// the old object through call() (and sometimes synchronize() + delete). A missing grace
// period shows up as a heap-use-after-free (ASan), a data race on the payload (TSan), or
// a poisoned payload read by a reader (any build).
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "sync/srcu.h"

namespace itn {
namespace {

constexpr std::uint64_t kAlive = 0xA11CE5EEDull;
constexpr std::uint64_t kDead = 0xDEADull;

struct Payload {
  explicit Payload(std::uint64_t v) : version(v) {
    for (std::uint64_t i = 0; i < 4; ++i) words[i] = v * (i + 1);
  }
  ~Payload() { magic = kDead; }  // poison: a reader that sees this read freed memory

  std::uint64_t magic = kAlive;
  std::uint64_t version;
  std::uint64_t words[4];
};

TEST(SrcuDomainStressTest, ReadersNeverSeeFreedPayload) {
  constexpr int kReaders = 3;
  constexpr std::uint64_t kUpdates = 20000;
  SrcuDomain domain;
  std::atomic<Payload*> current{new Payload(0)};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, reads{0};

  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      std::uint64_t last_version = 0, local_reads = 0;
      do {  // at least once, however late this thread starts
        auto guard = domain.read_lock();
        // Acquire: pairs with the writer's acq_rel exchange; the payload is complete.
        const Payload* p = current.load(std::memory_order_acquire);
        bool ok = p->magic == kAlive && p->version >= last_version;
        for (std::uint64_t i = 0; i < 4; ++i) ok = ok && p->words[i] == p->version * (i + 1);
        if (!ok) bad.fetch_add(1);
        last_version = p->version;
        ++local_reads;
      } while (!stop.load(std::memory_order_relaxed));
      reads.fetch_add(local_reads);
    });
  }

  for (std::uint64_t v = 1; v <= kUpdates; ++v) {
    Payload* old = current.exchange(new Payload(v), std::memory_order_acq_rel);
    if (v % 64 == 0) {
      domain.synchronize();
      delete old;
    } else {
      domain.call([old] { delete old; });
    }
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  domain.barrier();
  delete current.load();

  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(domain.stats().callbacks_run, kUpdates - kUpdates / 64);
}

}  // namespace
}  // namespace itn
