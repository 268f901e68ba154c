// notifier/invalidation_token.h
//
// itn::InvalidationToken: what NotifierDomain::invalidate_range_start() hands back and
// invalidate_range_end() consumes. Because the end needs the token, an end without a
// start, or two ends of one start, cannot be written (I3, I25).
//
//   absl::StatusOr<InvalidationToken> token = domain.invalidate_range_start(range);
//   if (!token.ok()) return token.status();  // refused: nothing to end
//   ... change the page table ...
//   domain.invalidate_range_end(*std::move(token));
//
// The token carries what the end needs: the range, and the list of whole-space notifiers
// the start called, kept alive by a read section of the domain that lasts from the start
// to the end, so that the end reaches exactly the notifiers the start reached (I25) and
// unregister_notifier() of one of them waits for the end (I15). A fast token (an
// invalidation that reached no notifier while none was registered, notifier/domain.h)
// carries only the shard its start counted itself in: it holds no read section.
//
// Thread safety: a token is a value; one thread uses it at a time. It may be moved to,
//   and ended on, another thread; that thread must not call insert() or remove() of the
//   domain while it holds the token (see NotifierDomain::invalidate_range_start()).
// Lifetime: must be ended before its domain is destroyed (the domain's destructor dies
//   otherwise), by a caller that keeps the domain alive across the end. Destroying a token
//   that was not ended breaks I25: debug builds die naming the rule; release builds end
//   the invalidation then, so that the domain is left consistent.
// Memory ordering: as invalidate_range_end().
#ifndef ITN_NOTIFIER_INVALIDATION_TOKEN_H_
#define ITN_NOTIFIER_INVALIDATION_TOKEN_H_

#include <cstdint>
#include <vector>

#include "notifier/range.h"
#include "sync/srcu.h"

namespace itn {

class NotifierDomain;
class Notifier;

class [[nodiscard]] InvalidationToken {
 public:
  InvalidationToken(InvalidationToken&& other) noexcept;
  // Assigning over a token that was not ended is destroying it (see Lifetime).
  InvalidationToken& operator=(InvalidationToken&& other) noexcept;
  InvalidationToken(const InvalidationToken&) = delete;
  ~InvalidationToken();

  const Range& range() const { return range_; }

 private:
  friend class NotifierDomain;
  using NotifierList = std::vector<Notifier*>;

  InvalidationToken(NotifierDomain* domain, const Range& range, SrcuDomain::Section section,
                    const NotifierList* notifiers, const void* starter,
                    std::uint64_t interval_calls)
      : domain_(domain),
        range_(range),
        section_(std::move(section)),
        notifiers_(notifiers),
        starter_(starter),
        interval_calls_(interval_calls) {}
  // A fast invalidation (no lock, nothing called), counted in shard `fast_shard`.
  InvalidationToken(NotifierDomain* domain, const Range& range, int fast_shard)
      : domain_(domain),
        range_(range),
        notifiers_(nullptr),
        starter_(nullptr),
        interval_calls_(0),
        fast_shard_(fast_shard) {}

  // Ends a token nobody ended: dies in debug builds (I25), ends it in release builds.
  void end_dropped();

  NotifierDomain* domain_;  // null once ended or moved from
  Range range_;
  SrcuDomain::Section section_;     // keeps *notifiers_ alive; unregister waits for it
  const NotifierList* notifiers_;   // what the start called (null: none)
  const void* starter_;             // the thread that started it (NotifierDomain::thread_key)
  std::uint64_t interval_calls_;    // interval notifiers its start called (for stats())
  int fast_shard_ = -1;             // a fast invalidation's shard; -1: a locked one
  std::uint64_t trace_handle_ = 0;  // its "invalidation" async span (sync/trace.h); 0: none
};

}  // namespace itn

#endif  // ITN_NOTIFIER_INVALIDATION_TOKEN_H_
