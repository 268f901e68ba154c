// safe_find: NotifierDomain::find() while another thread removes the notifiers it finds.
//
// find() takes no lock and returns a counted reference (Ref). The main thread looks up
// even-numbered notifiers at random while a remover thread removes every notifier,
// dropping its own reference as soon as remove() returns. The finder keeps one reference
// to each notifier it found; once every remove() has returned, it uses each of them: the
// reference alone keeps the notifier alive and intact, while the notifiers nobody found
// (the odd ones, at least) are already freed. A found notifier is freed only when its last
// reference goes (and a grace period passes).
//
// Also checked: a find() that starts after remove() returned finds nothing, and a found
// notifier is the one asked for.
//
//   safe_find
//
// Exit status: 0 if every check passed, 1 otherwise.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "notifier/domain.h"
#include "notifier/interval_notifier.h"

namespace {

constexpr int kNotifiers = 2000;
constexpr std::uint64_t kSpan = 4096;  // notifier i covers [i * kSpan, i * kSpan + kSpan - 1]
constexpr std::uint64_t kIntact = 0x5AFEF1D000000000;
const int kFindKey = 0;  // what find() matches: the address of something of ours

// Per notifier id: its remove() returned; its destructor ran.
std::atomic<bool> removed[kNotifiers];
std::atomic<bool> freed[kNotifiers];

class Buffer : public itn::IntervalNotifier {
 public:
  explicit Buffer(int id) : id_(id), magic_(kIntact + id) {}
  ~Buffer() override {
    magic_ = 0;  // poison: a use after free would see it (or the sanitizers would)
    freed[id_].store(true);
  }
  bool invalidate(const itn::Range&, std::uint64_t cur_seq) override {
    set_seq(cur_seq);  // nothing to drop (and nobody invalidates in this example)
    return true;
  }
  bool intact() const { return magic_ == kIntact + id_ && interval().start() == id_ * kSpan; }
  int id() const { return id_; }

 private:
  const int id_;
  std::uint64_t magic_;
};

// find() returns the base class; Ref has no downcast, so the finder keeps Ref<IntervalNotifier>.
const Buffer& as_buffer(const itn::Ref<itn::IntervalNotifier>& n) {
  return static_cast<const Buffer&>(*n);
}

int count(const std::atomic<bool> (&flags)[kNotifiers]) {
  return static_cast<int>(std::count(std::begin(flags), std::end(flags), true));
}

}  // namespace

int main() {
  itn::Ref<itn::NotifierDomain> domain = itn::make_ref<itn::NotifierDomain>();
  std::vector<itn::Ref<Buffer>> buffers;  // the remover's references
  for (int i = 0; i < kNotifiers; ++i) {
    buffers.push_back(itn::make_ref<Buffer>(i));
    if (!domain->insert(buffers.back(), itn::Interval::sized(i * kSpan, kSpan), &kFindKey).ok())
      return 1;
  }

  std::atomic<bool> done{false};
  std::atomic<int> bad_removes{0};
  std::thread remover([&] {
    std::vector<int> order(kNotifiers);
    for (int i = 0; i < kNotifiers; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937_64(2));
    for (int id : order) {
      if (!domain->remove(*buffers[id]).ok()) bad_removes.fetch_add(1);
      removed[id].store(true, std::memory_order_release);
      buffers[id].reset();  // from now on only the finder's references (if any) keep it
    }
    done.store(true);
  });

  // The finder keeps the first reference it gets to each notifier.
  std::vector<itn::Ref<itn::IntervalNotifier>> found(kNotifiers);
  std::uint64_t finds = 0, hits = 0, misses_after_remove = 0, misses_racing = 0, wrong = 0;
  std::mt19937_64 rng(1);
  while (!done.load()) {
    const int id = static_cast<int>(rng() % (kNotifiers / 2) * 2);
    const std::uint64_t at = id * kSpan + rng() % kSpan;
    const bool was_removed = removed[id].load(std::memory_order_acquire);
    ++finds;
    itn::Ref<itn::IntervalNotifier> n = domain->find(&kFindKey, itn::Interval::closed(at, at));
    if (!n) {
      ++(was_removed ? misses_after_remove : misses_racing);
      continue;
    }
    ++hits;
    if (was_removed || as_buffer(n).id() != id || !as_buffer(n).intact()) ++wrong;
    if (!found[id]) found[id] = std::move(n);
  }
  remover.join();

  // Every remove() has returned and a grace period has passed: the notifiers nobody found
  // are gone. Use each reference the finder kept.
  domain->barrier();
  const int freed_unreferenced = count(freed);
  std::uint64_t intact = 0, freed_while_referenced = 0;
  std::size_t kept = 0;
  for (const itn::Ref<itn::IntervalNotifier>& n : found) {
    if (!n) continue;
    ++kept;
    const Buffer& b = as_buffer(n);
    if (freed[b.id()].load()) ++freed_while_referenced;
    if (removed[b.id()].load() && b.intact()) ++intact;
  }
  found.clear();  // the last references: now the found notifiers go too
  domain->barrier();

  std::printf("safe_find: %d notifiers; main find()s them while a thread remove()s them\n",
              kNotifiers);
  std::printf("  find() calls                            %llu\n",
              static_cast<unsigned long long>(finds));
  std::printf("  null (remove() had returned / racing)   %llu / %llu\n",
              static_cast<unsigned long long>(misses_after_remove),
              static_cast<unsigned long long>(misses_racing));
  std::printf("  found                                   %llu times, %zu notifiers\n",
              static_cast<unsigned long long>(hits), kept);
  std::printf("  found after remove() or the wrong one   %llu\n",
              static_cast<unsigned long long>(wrong));
  std::printf("  freed once removed, nobody holding them %d of %zu\n", freed_unreferenced,
              kNotifiers - kept);
  std::printf("  kept references used after the removes  %llu intact of %zu\n",
              static_cast<unsigned long long>(intact), kept);
  std::printf("  freed while still referenced            %llu\n",
              static_cast<unsigned long long>(freed_while_referenced));
  std::printf("  freed after the last reference went     %d / %d\n", count(freed), kNotifiers);
  const bool ok = bad_removes.load() == 0 && wrong == 0 && freed_while_referenced == 0 &&
                  intact == kept && freed_unreferenced == static_cast<int>(kNotifiers - kept) &&
                  count(freed) == kNotifiers;
  std::printf("%s\n", ok ? "OK: every found reference outlived remove() intact" : "FAILED");
  return ok ? 0 : 1;
}
