// bench/baselines/multimap_intervals.h
//
// Baseline `multimap`: std::multimap keyed by start behind one mutex, no augmentation. An
// overlap query scans from lower_bound(start - longest interval ever inserted) to the
// first entry starting after `last`, filtering by Cond2 (start <= entry.last): the usual
// shortcut when intervals are short.
//
// Thread safety: every method locks. Lifetime: owns its entries. Memory ordering: the mutex.
#ifndef ITN_BENCH_BASELINES_MULTIMAP_INTERVALS_H_
#define ITN_BENCH_BASELINES_MULTIMAP_INTERVALS_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>

#include "absl/status/status.h"

#include "sync/mutex.h"

namespace itn::bench {

template <class T>
class MultimapIntervals {
 public:
  absl::Status insert(std::uint64_t start, std::uint64_t last, T value) {
    if (start > last) return absl::InvalidArgumentError("start > last");
    MutexLock l(mu_);
    map_.emplace(start, std::make_pair(last, std::move(value)));
    longest_ = std::max(longest_, last - start);
    return absl::OkStatus();
  }

  absl::Status erase(std::uint64_t start, std::uint64_t last, const T& value) {
    MutexLock l(mu_);
    auto [it, end] = map_.equal_range(start);
    for (; it != end; ++it) {
      if (it->second.first == last && it->second.second == value) {
        map_.erase(it);
        return absl::OkStatus();
      }
    }
    return absl::NotFoundError("no such entry");
  }

  template <class Fn>
  void for_each_overlap(std::uint64_t start, std::uint64_t last, Fn&& fn) {
    MutexLock l(mu_);
    const std::uint64_t from = start > longest_ ? start - longest_ : 0;
    for (auto it = map_.lower_bound(from); it != map_.end() && it->first <= last; ++it) {
      if (start <= it->second.first) fn(it->first, it->second.first, it->second.second);
    }
  }

 private:
  Mutex mu_;
  std::multimap<std::uint64_t, std::pair<std::uint64_t, T>> map_ ABSL_GUARDED_BY(mu_);
  std::uint64_t longest_ ABSL_GUARDED_BY(mu_) = 0;  // never shrinks
};

}  // namespace itn::bench

#endif  // ITN_BENCH_BASELINES_MULTIMAP_INTERVALS_H_
