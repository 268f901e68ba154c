// proptests/lin/notifier_model.h
//
// itn::lin::NotifierModel: the sequential model of ONE interval notifier as the domain's
// concurrent operations see it, for check_partitioned() with the notifier as the key
// (PerNotifier below does the split). It follows the serial L0 model
// (proptests/models/domain_model.h) and the kernel rules in notifier/domain.h, written
// per notifier:
// - insert: kLive, or kDeferredInsert while any invalidation is active (then read_begin()
//   waits for the end that drains them); a second insert fails (kFailedPrecondition).
// - an invalidation start whose range overlaps a walked (kLive or kRemoving) notifier
//   reaches it; the first reach in an odd period changes the notifier's sequence value
//   (`version`) and makes read_begin() wait (`blocked`) until the last active end.
// - read_begin() returns the current value; read_retry(seq) is true iff the version bound
//   to `seq` is no longer current. Values are not predicted (they depend on other
//   notifiers): the model binds each value read_begin() returns to the version it saw
//   and requires the binding to be one-to-one, so read_retry() is exact anyway.
// - find() returns the notifier iff the query overlaps it and it is kLive or
//   kDeferredInsert (remove() has not begun).
//
// remove() is two model operations with the same interval (PerNotifier emits both):
//   kRemoveUnlink: find() stops returning it (kLive -> kRemoving; a deferred insert is
//     cancelled: -> kRemoved). Fails (kInvalidArgument) if not inserted.
//   kRemoveErase: invalidations stop reaching it (kRemoving -> kRemoved). Allowed when
//     not `blocked`; when blocked the domain sequence is surely odd and the erase waits
//     for the end that drains the invalidations.
// Because both halves must linearize before remove() returns, "no invalidate() after
// remove() returned" (I8, R3) is checked, and so is "find() never returns a notifier
// whose remove() has begun".
//
// What one notifier cannot see exactly, and how the model errs on the permissive side:
// - Whether the domain sequence is odd because of OTHER notifiers (then a remove() of a
//   notifier not reached in this period still waits for the drain). The model allows the
//   erase at once or later, both.
// - Every start and end must be projected into every notifier's part (the active count
//   decides deferral); `overlaps` tells whether the range touches this notifier. They
//   are shared operations, free to linearize at different points in different parts, so
//   the per-notifier checks are necessary conditions, not a proof for the whole domain.
// Left out, because the answer depends on other notifiers or on global state:
// - non-blockable starts refused by a callback (the walk order across notifiers decides
//   who was called before the refusal); a start result other than OK is rejected;
// - release() (a domain-wide flag and invalidation) and the whole-space notifiers;
// - find() when several notifiers share an owner (the lowest start wins): give each
//   notifier its own owner, so find(owner) can only return that notifier;
// - check_retry(), a hint that is not linearizable by design ("false proves nothing").
//
// Thread safety: stateless; any thread.
// Lifetime: values only.
// Memory ordering: none.
#ifndef ITN_PROPTESTS_LIN_NOTIFIER_MODEL_H_
#define ITN_PROPTESTS_LIN_NOTIFIER_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include "testing/lin/checker.h"
#include "testing/lin/history.h"

namespace itn::lin {

struct NotifierOp {
  enum class Kind : std::uint8_t {
    kInsert,
    kRemoveUnlink,
    kRemoveErase,
    kFind,
    kReadBegin,
    kReadRetry,
    kStart,  // a blockable invalidate_range_start()
    kEnd,    // invalidate_range_end()
  };
  Kind kind = Kind::kFind;
  bool overlaps = false;  // kStart, kFind: the range overlaps this notifier
  std::uint64_t seq = 0;  // kReadRetry: the value a read_begin() returned

  static NotifierOp of(Kind kind) { return NotifierOp{kind, false, 0}; }
  static NotifierOp find(bool overlaps = true) { return {Kind::kFind, overlaps, 0}; }
  static NotifierOp start(bool overlaps = true) { return {Kind::kStart, overlaps, 0}; }
  static NotifierOp read_retry(std::uint64_t seq) { return {Kind::kReadRetry, false, seq}; }
};

// One result type for all kinds; each kind uses one field.
struct NotifierResult {
  absl::StatusCode code = absl::StatusCode::kOk;  // insert, remove, start, end
  bool flag = false;                              // find: found; read_retry: retry
  std::uint64_t seq = 0;                          // read_begin

  static NotifierResult status(absl::StatusCode c) { return {c, false, 0}; }
  static NotifierResult ok() { return status(absl::StatusCode::kOk); }
  static NotifierResult found(bool f) { return {absl::StatusCode::kOk, f, 0}; }
  static NotifierResult retry(bool r) { return {absl::StatusCode::kOk, r, 0}; }
  static NotifierResult begun(std::uint64_t seq) { return {absl::StatusCode::kOk, false, seq}; }
};

struct NotifierState {
  enum class Phase : std::uint8_t { kNew, kLive, kDeferredInsert, kRemoving, kRemoved };
  Phase phase = Phase::kNew;
  int active = 0;             // invalidations active in the whole domain
  bool blocked = false;       // its sequence is the domain's odd one: read_begin() waits
  std::uint32_t version = 0;  // how many odd periods reached it
  // (value returned by read_begin(), version it saw), sorted by value.
  std::vector<std::pair<std::uint64_t, std::uint32_t>> seen;

  bool operator==(const NotifierState&) const = default;
};

class NotifierModel {
 public:
  using State = NotifierState;
  using Op = NotifierOp;
  using Result = NotifierResult;
  using Phase = State::Phase;
  using Kind = Op::Kind;

  State initial() const { return State{}; }

  std::optional<State> step(const State& before, const Op& op, const Result* r) const {
    using absl::StatusCode;
    State s = before;
    switch (op.kind) {
      case Kind::kInsert: {
        // I27: a notifier can be inserted again once its remove() returned.
        const bool ok = s.phase == Phase::kNew || s.phase == Phase::kRemoved;
        if (r && r->code != (ok ? StatusCode::kOk : StatusCode::kFailedPrecondition)) return {};
        if (!ok) return s;
        s.phase = s.active > 0 ? Phase::kDeferredInsert : Phase::kLive;
        s.blocked = s.active > 0;  // it gets the domain's (now odd) sequence
        return s;
      }
      case Kind::kRemoveUnlink: {
        const bool ok = inserted(s.phase);
        if (r && r->code != (ok ? StatusCode::kOk : StatusCode::kInvalidArgument)) return {};
        if (s.phase == Phase::kLive) s.phase = Phase::kRemoving;
        if (s.phase == Phase::kDeferredInsert) s.phase = Phase::kRemoved;  // never walked
        return s;
      }
      case Kind::kRemoveErase: {
        if (r && r->code != StatusCode::kOk) {  // a failed remove: the unlink half checks it
          return r->code == StatusCode::kInvalidArgument ? std::optional<State>(s) : std::nullopt;
        }
        if (s.phase == Phase::kRemoving) {
          if (s.blocked) return {};  // waits for the drain
          s.phase = Phase::kRemoved;
          return s;
        }
        if (s.phase == Phase::kRemoved) return s;  // the unlink cancelled a deferred insert
        // Before its own unlink: impossible for a successful remove; a pending one may
        // have failed (no effect).
        return r ? std::nullopt : std::optional<State>(s);
      }
      case Kind::kFind:
        if (r && r->flag != (op.overlaps && inserted(s.phase))) return {};
        return s;
      case Kind::kReadBegin:
        if (s.phase != Phase::kLive || s.blocked) return {};
        if (r && !bind(s, r->seq)) return {};
        return s;
      case Kind::kReadRetry: {
        if (!r) return s;
        const std::optional<std::uint32_t> v = version_of(s, op.seq);
        if (!v || r->flag != (*v != s.version)) return {};
        return s;
      }
      case Kind::kStart:
        if (r && r->code != StatusCode::kOk) return {};  // refusals are not modelled
        ++s.active;
        if (op.overlaps && walked(s.phase) && !s.blocked) {
          ++s.version;  // a new odd sequence value
          s.blocked = true;
        }
        return s;
      case Kind::kEnd: {
        // Ends consume their start's token: an end without an active start cannot happen.
        if (s.active == 0 || (r && r->code != StatusCode::kOk)) return {};
        if (--s.active == 0) {  // the drain: deferred ops applied, sequence even
          if (s.phase == Phase::kDeferredInsert) s.phase = Phase::kLive;
          s.blocked = false;
        }
        return s;
      }
    }
    return {};
  }

  std::size_t hash(const State& s) const {
    std::size_t h = static_cast<std::size_t>(s.phase) | (static_cast<std::size_t>(s.blocked) << 3);
    h = h * 1000003u ^ static_cast<std::size_t>(s.active);
    h = h * 1000003u ^ s.version;
    for (const auto& [value, version] : s.seen) h = (h * 1000003u ^ value) * 31u + version;
    return h;
  }

  std::string show(const Op& op) const {
    switch (op.kind) {
      case Kind::kInsert:
        return "insert";
      case Kind::kRemoveUnlink:
        return "remove/unlink";
      case Kind::kRemoveErase:
        return "remove/erase";
      case Kind::kFind:
        return op.overlaps ? "find" : "find(elsewhere)";
      case Kind::kReadBegin:
        return "read_begin";
      case Kind::kReadRetry:
        return "read_retry(" + std::to_string(op.seq) + ")";
      case Kind::kStart:
        return op.overlaps ? "start(overlapping)" : "start(elsewhere)";
      case Kind::kEnd:
        return "end";
    }
    return "?";
  }

  std::string show(const Op& op, const Result& r) const {
    switch (op.kind) {
      case Kind::kFind:
        return r.flag ? "found" : "not found";
      case Kind::kReadBegin:
        return std::to_string(r.seq);
      case Kind::kReadRetry:
        return r.flag ? "true" : "false";
      default:
        return absl::StatusCodeToString(r.code);
    }
  }

  std::string show_state(const State& s) const {
    static const char* const kPhase[] = {"new", "live", "deferred insert", "removing", "removed"};
    std::string out = std::string(kPhase[static_cast<int>(s.phase)]) + ", " +
                      std::to_string(s.active) + " active" + (s.blocked ? ", blocked" : "") +
                      ", version " + std::to_string(s.version) + ", read_begin values {";
    for (const auto& [value, version] : s.seen) {
      out += " " + std::to_string(value) + ":v" + std::to_string(version);
    }
    return out + " }";
  }

 private:
  static bool inserted(Phase p) { return p == Phase::kLive || p == Phase::kDeferredInsert; }
  static bool walked(Phase p) { return p == Phase::kLive || p == Phase::kRemoving; }

  static std::optional<std::uint32_t> version_of(const State& s, std::uint64_t value) {
    for (const auto& [v, version] : s.seen) {
      if (v == value) return version;
    }
    return std::nullopt;
  }

  // Binds `value` to the current version: one value per version and vice versa.
  static bool bind(State& s, std::uint64_t value) {
    if (const std::optional<std::uint32_t> v = version_of(s, value)) return *v == s.version;
    for (const auto& [v, version] : s.seen) {
      if (version == s.version) return false;  // this version already has another value
    }
    auto at = s.seen.begin();
    while (at != s.seen.end() && at->first < value) ++at;
    s.seen.insert(at, {value, s.version});
    return true;
  }
};

// A recorded domain operation, as a harness records it; PerNotifier splits it per
// notifier. Results use NotifierResult (kFind: flag = it returned notifier `sub`).
struct DomainOp {
  enum class Kind : std::uint8_t { kInsert, kRemove, kFind, kReadBegin, kReadRetry, kStart, kEnd };
  Kind kind = Kind::kFind;
  int sub = 0;  // the notifier; kFind: the notifier whose (unique) owner is searched
  std::uint64_t start = 0, last = 0;  // kFind, kStart, kEnd: the range, inclusive
  std::uint64_t seq = 0;              // kReadRetry
};

// PerNotifier
//
// The projection for check_partitioned(): key = notifier index. `intervals[i]` is
// notifier i's [start, last] (fixed by the harness before the run). Starts and ends go to
// every notifier; a remove becomes its two halves.
class PerNotifier {
 public:
  using Out = Projection<int, NotifierOp, NotifierResult>;
  explicit PerNotifier(std::vector<std::pair<std::uint64_t, std::uint64_t>> intervals)
      : intervals_(std::move(intervals)) {}

  std::vector<Out> operator()(const Operation<DomainOp, NotifierResult>& o) const {
    using K = NotifierOp::Kind;
    const DomainOp& d = o.op;
    auto overlaps = [&](int i) {
      return intervals_[i].first <= d.last && d.start <= intervals_[i].second;
    };
    switch (d.kind) {
      case DomainOp::Kind::kInsert:
        return {Out{d.sub, NotifierOp::of(K::kInsert), o.result}};
      case DomainOp::Kind::kRemove:
        return {Out{d.sub, NotifierOp::of(K::kRemoveUnlink), o.result},
                Out{d.sub, NotifierOp::of(K::kRemoveErase), o.result}};
      case DomainOp::Kind::kFind:
        return {Out{d.sub, NotifierOp::find(overlaps(d.sub)), o.result}};
      case DomainOp::Kind::kReadBegin:
        return {Out{d.sub, NotifierOp::of(K::kReadBegin), o.result}};
      case DomainOp::Kind::kReadRetry:
        return {Out{d.sub, NotifierOp::read_retry(d.seq), o.result}};
      case DomainOp::Kind::kStart:
      case DomainOp::Kind::kEnd: {
        std::vector<Out> out;
        for (int i = 0; i < static_cast<int>(intervals_.size()); ++i) {
          out.push_back(Out{i,
                            d.kind == DomainOp::Kind::kEnd ? NotifierOp::of(K::kEnd)
                                                           : NotifierOp::start(overlaps(i)),
                            o.result});
        }
        return out;
      }
    }
    return {};
  }

 private:
  std::vector<std::pair<std::uint64_t, std::uint64_t>> intervals_;
};

}  // namespace itn::lin

#endif  // ITN_PROPTESTS_LIN_NOTIFIER_MODEL_H_
