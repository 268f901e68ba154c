// srcu_hot_swap: the smallest useful embedding of itn::sync.
//
// A routing table is read by several lookup threads without any lock while an updater
// publishes new versions of it. Each old version is retired with SrcuDomain::call() and
// freed only after every lookup that could still see it has finished. Every table carries
// a checksum; a lookup that ever sees a torn or freed table makes the program fail.
//
//   srcu_hot_swap [--readers N] [--updates N]
//
// Exit status: 0 if every check passed, 1 otherwise.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "sync/ref.h"
#include "sync/srcu.h"

namespace {

// One version of the table: routes[i] = version * i, sealed by a checksum.
class RouteTable : public itn::RefCounted {
 public:
  RouteTable(std::uint64_t version, itn::SrcuDomain& srcu) : version_(version) {
    for (std::uint64_t i = 0; i < kRoutes; ++i) routes_[i] = version * i;
    checksum_ = sum();
    free_after_grace_period(srcu);  // readers find us without a reference
  }
  ~RouteTable() override {
    checksum_ = ~sum();  // poison: a reader of a freed table fails the check
    freed.fetch_add(1, std::memory_order_relaxed);
  }

  bool intact() const { return checksum_ == sum(); }
  std::uint64_t version() const { return version_; }
  std::uint64_t lookup(std::uint64_t key) const { return routes_[key % kRoutes]; }

  static inline std::atomic<std::uint64_t> freed{0};

 private:
  static constexpr std::uint64_t kRoutes = 64;
  std::uint64_t sum() const {
    std::uint64_t s = version_;
    for (std::uint64_t r : routes_) s = s * 31 + r;
    return s;
  }

  std::uint64_t version_;
  std::uint64_t routes_[kRoutes];
  std::uint64_t checksum_;
};

std::uint64_t flag_value(int argc, char** argv, const char* name, std::uint64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t readers = flag_value(argc, argv, "--readers", 3);
  const std::uint64_t updates = flag_value(argc, argv, "--updates", 20000);
  const auto begin = std::chrono::steady_clock::now();

  std::uint64_t tables_made = 1;
  std::atomic<std::uint64_t> lookups{0}, bad{0};
  std::atomic<bool> stop{false};
  {
    itn::SrcuDomain srcu;
    // The published table. The updater owns the only counted reference; readers use the
    // raw pointer inside read sections, which the grace period keeps valid.
    itn::Ref<RouteTable> current = itn::make_ref<RouteTable>(0, srcu);
    std::atomic<RouteTable*> published{current.get()};

    std::vector<std::thread> threads;
    for (std::uint64_t r = 0; r < readers; ++r) {
      threads.emplace_back([&, r] {
        std::uint64_t n = 0, last_version = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          auto guard = srcu.read_lock();
          const RouteTable* t = published.load(std::memory_order_acquire);
          if (!t->intact() || t->version() < last_version ||
              t->lookup(r + n) != t->version() * ((r + n) % 64)) {
            bad.fetch_add(1);
          }
          last_version = t->version();
          ++n;
        }
        lookups.fetch_add(n);
      });
    }

    for (std::uint64_t v = 1; v <= updates; ++v) {
      itn::Ref<RouteTable> next = itn::make_ref<RouteTable>(v, srcu);
      published.store(next.get(), std::memory_order_release);
      current = std::move(next);  // drops the old table: freed after a grace period
      ++tables_made;
    }
    stop.store(true);
    for (auto& t : threads) t.join();
    current.reset();
    srcu.barrier();

    const itn::SrcuStats s = srcu.stats();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    std::printf("srcu_hot_swap: %llu readers, %llu updates in %.2f s\n",
                static_cast<unsigned long long>(readers), static_cast<unsigned long long>(updates),
                secs);
    std::printf("  lookups without a lock      %llu\n",
                static_cast<unsigned long long>(lookups.load()));
    std::printf("  grace periods               %llu\n",
                static_cast<unsigned long long>(s.grace_periods));
    std::printf("  deferred frees queued/run   %llu / %llu\n",
                static_cast<unsigned long long>(s.callbacks_queued),
                static_cast<unsigned long long>(s.callbacks_run));
  }
  const bool all_freed = RouteTable::freed.load() == tables_made;
  std::printf("  tables made / freed         %llu / %llu\n",
              static_cast<unsigned long long>(tables_made),
              static_cast<unsigned long long>(RouteTable::freed.load()));
  std::printf("  torn or freed tables seen   %llu\n", static_cast<unsigned long long>(bad.load()));
  const bool ok = bad.load() == 0 && all_freed;
  std::printf("%s\n", ok ? "OK: every lookup saw a whole, live table" : "FAILED");
  return ok ? 0 : 1;
}
