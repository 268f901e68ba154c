// proptests/models/domain_model.h
//
// L0 reference model of NotifierDomain, run serially: the sequence, the active count, the
// deferred list, every interval notifier's state, sequence and call count, and the
// whole-space notifiers' start/end/release counts. Naive on purpose: plain vectors,
// linear scans, the kernel's rules written out once each, plus itn's fast path: an
// invalidation that reaches no notifier, with no whole-space notifier listed and no drain
// running, is fast; it does not keep the sequence odd, and an insert while fast ones run
// (and no locked one) waits for them in a drain.
#ifndef ITN_PROPTESTS_MODELS_DOMAIN_MODEL_H_
#define ITN_PROPTESTS_MODELS_DOMAIN_MODEL_H_

#include <cstdint>
#include <vector>

namespace itn::models {

struct ModelSub {
  enum class State { kLive, kDeferred, kRemoved };
  std::uint64_t start, last;
  int owner;
  bool refuses;  // refuses non-blockable invalidations
  State state;
  std::uint64_t seq;           // what the notifier's invalidate_seq must be
  int calls = 0;               // invalidate() calls so far
  std::uint64_t read_seq = 0;  // last read_begin() result
  bool has_read = false;
  bool kept = true;  // the caller keeps a reference; else the domain holds the only one
};

struct ModelWhole {
  bool registered = true;
  int starts = 0, ends = 0, releases = 0;
};

// An active invalidation: its range and the whole-space notifiers its start called,
// which are the ones its end calls (I25).
struct ModelInvalidation {
  std::uint64_t start, last;  // inclusive
  std::vector<int> wholes;
  bool fast = false;
};

struct DomainModel {
  std::uint64_t seq = 2;
  std::vector<ModelInvalidation> active;  // in start order
  std::vector<ModelSub> subs;             // index = id, never erased
  std::vector<int> deferred;              // ids of deferred inserts, FIFO
  std::vector<ModelWhole> wholes;         // index = id
  bool released = false;
  int got_users = 0;      // users of the get/put notifier
  bool draining = false;  // deferred inserts wait for the fast invalidations to end

  bool odd() const { return (seq & 1) != 0; }
  static bool overlaps(const ModelSub& s, std::uint64_t start, std::uint64_t last) {
    return s.start <= last && start <= s.last;
  }
  bool walked(const ModelSub& s) const { return s.state == ModelSub::State::kLive; }
  std::size_t in_tree() const {
    std::size_t n = 0;
    for (const ModelSub& s : subs) n += s.state != ModelSub::State::kRemoved;
    return n;
  }

  void insert(ModelSub s) {
    subs.push_back(s);
    place(static_cast<int>(subs.size()) - 1);
  }

  // A removed notifier inserted again (I27): same object and call count, new interval.
  void reinsert(int id, std::uint64_t start, std::uint64_t last, int owner) {
    ModelSub& s = subs[id];
    s.start = start;
    s.last = last;
    s.owner = owner;
    s.has_read = false;
    place(id);
  }

  std::size_t fast_active() const {
    std::size_t n = 0;
    for (const ModelInvalidation& inv : active) n += inv.fast;
    return n;
  }
  // Locked invalidations active, and the drain as one more.
  std::size_t locked_active() const { return active.size() - fast_active() + (draining ? 1 : 0); }
  bool wholes_listed() const {
    if (got_users > 0) return true;
    for (const ModelWhole& w : wholes) {
      if (w.registered) return true;
    }
    return false;
  }

  // Enters notifier `id`: deferred while an invalidation is active (with only fast ones
  // active, in a drain).
  void place(int id) {
    ModelSub& s = subs[id];
    if (locked_active() == 0 && fast_active() > 0) draining = true;
    if (locked_active() > 0) {
      seq |= 1;
      s.state = ModelSub::State::kDeferred;
      s.seq = seq;
      deferred.push_back(id);
    } else {
      s.state = ModelSub::State::kLive;
      s.seq = seq - 1;
    }
  }

  // The interval part of a start: count it, make the sequence odd if it reaches anyone.
  // Returns the ids to call, in no particular order (the caller orders them). `may_be_fast`:
  // false for release()'s invalidation, which always takes the lock.
  std::vector<int> begin_invalidation(std::uint64_t start, std::uint64_t last,
                                      bool may_be_fast = true) {
    std::vector<int> hit;
    for (int id = 0; id < static_cast<int>(subs.size()); ++id) {
      if (walked(subs[id]) && overlaps(subs[id], start, last)) hit.push_back(id);
    }
    const bool fast = may_be_fast && hit.empty() && !draining && !wholes_listed();
    active.push_back({start, last, {}, fast});
    if (!hit.empty()) seq |= 1;
    return hit;
  }

  void call(int id) {
    subs[id].calls++;
    subs[id].seq = seq;
  }

  // The whole-space part of the newest start: every registered notifier (I28).
  void start_wholes() {
    for (int id = 0; id < static_cast<int>(wholes.size()); ++id) {
      if (!wholes[id].registered) continue;
      wholes[id].starts++;
      active.back().wholes.push_back(id);
    }
  }

  // An end: the whole-space notifiers its start called, then the bookkeeping.
  void end_invalidation(std::size_t index) {
    for (int id : active[index].wholes) wholes[id].ends++;
    finish_invalidation(index);
  }

  // The bookkeeping of an end (or of an undone start): the last one applies the deferred
  // list.
  void finish_invalidation(std::size_t index) {
    const bool fast = active[index].fast;
    active.erase(active.begin() + static_cast<long>(index));
    if (fast) {
      if (!draining || fast_active() > 0) return;
      draining = false;  // the drain ends as a locked invalidation does
    }
    if (locked_active() > 0) return;
    if (!odd()) return;
    if (!deferred.empty() && fast_active() > 0) {
      draining = true;  // the deferred inserts wait for the fast ones
      return;
    }
    for (int id : deferred) subs[id].state = ModelSub::State::kLive;
    deferred.clear();
    seq++;
  }
};

}  // namespace itn::models

#endif  // ITN_PROPTESTS_MODELS_DOMAIN_MODEL_H_
