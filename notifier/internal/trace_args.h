// notifier/internal/trace_args.h
//
// What the notifier layer's trace points (sync/trace.h) record about a range: "start" and
// "end" (hex, half-open as in Range), "event" (to_string(Event)), and "blockable": 0 and
// "owner" (hex) only when they differ from the defaults. Category "notifier".
#ifndef ITN_NOTIFIER_INTERNAL_TRACE_ARGS_H_
#define ITN_NOTIFIER_INTERNAL_TRACE_ARGS_H_

#include <string_view>

#include "notifier/range.h"
#include "sync/trace.h"

namespace itn::notifier_internal {

inline constexpr std::string_view kTrace = "notifier";

inline trace::Args range_args(const Range& range) {
  trace::Args args{{"start", trace::hex(range.start)},
                   {"end", trace::hex(range.end)},
                   {"event", to_string(range.event)}};
  if (!range.blockable) args.emplace_back("blockable", 0);
  if (range.owner != nullptr) args.emplace_back("owner", trace::hex(range.owner));
  return args;
}

}  // namespace itn::notifier_internal

#endif  // ITN_NOTIFIER_INTERNAL_TRACE_ARGS_H_
