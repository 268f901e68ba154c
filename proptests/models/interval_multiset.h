// proptests/models/interval_multiset.h
//
// L0 reference model of IntervalTree: a plain vector of entries, scanned linearly. Naive on
// purpose: it must be obviously right.
#ifndef ITN_PROPTESTS_MODELS_INTERVAL_MULTISET_H_
#define ITN_PROPTESTS_MODELS_INTERVAL_MULTISET_H_

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

namespace itn::models {

struct IntervalEntry {
  std::uint64_t start;
  std::uint64_t last;
  int value;
  friend auto operator<=>(const IntervalEntry&, const IntervalEntry&) = default;
};

class IntervalMultiset {
 public:
  void insert(const IntervalEntry& e) { entries_.push_back(e); }

  // Removes one entry equal to `e`; false if there is none.
  bool erase(const IntervalEntry& e) {
    auto it = std::find(entries_.begin(), entries_.end(), e);
    if (it == entries_.end()) return false;
    entries_.erase(it);
    return true;
  }

  // Entries overlapping [start, last], sorted by (start, last, value).
  std::vector<IntervalEntry> overlaps(std::uint64_t start, std::uint64_t last) const {
    std::vector<IntervalEntry> out;
    for (const IntervalEntry& e : entries_) {
      if (e.start <= last && start <= e.last) out.push_back(e);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  const std::vector<IntervalEntry>& entries() const { return entries_; }

 private:
  std::vector<IntervalEntry> entries_;
};

}  // namespace itn::models

#endif  // ITN_PROPTESTS_MODELS_INTERVAL_MULTISET_H_
