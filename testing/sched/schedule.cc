#include "testing/sched/schedule.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace itn::sched {
namespace {

constexpr std::string_view kVersion = "v1:";

bool parse_int(absl::string_view s, long long& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

std::string encode_schedule(const Schedule& choices) {
  std::string out(kVersion);
  for (std::size_t i = 0; i < choices.size();) {
    std::size_t j = i;
    while (j < choices.size() && choices[j] == choices[i]) ++j;
    absl::StrAppend(&out, i == 0 ? "" : ".", choices[i], "*", j - i);
    i = j;
  }
  return out;
}

absl::StatusOr<Schedule> decode_schedule(std::string_view text_in) {
  absl::string_view text(text_in.data(), text_in.size());  // Debian's Abseil has its own
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("schedule \"", text, "\": ", why));
  };
  if (text.substr(0, kVersion.size()) != absl::string_view(kVersion.data(), kVersion.size())) {
    return bad("must start with v1:");
  }
  text.remove_prefix(kVersion.size());
  Schedule out;
  if (text.empty()) return out;
  for (absl::string_view run : absl::StrSplit(text, '.')) {
    const std::size_t star = run.find('*');
    long long thread = 0, count = 0;
    if (star == std::string_view::npos || !parse_int(run.substr(0, star), thread) ||
        !parse_int(run.substr(star + 1), count) || thread < 0 || count <= 0 || thread > 1'000'000 ||
        count > 100'000'000) {
      return bad(absl::StrCat("bad run \"", run, "\" (want <thread>*<count>)"));
    }
    out.insert(out.end(), static_cast<std::size_t>(count), static_cast<int>(thread));
  }
  return out;
}

}  // namespace itn::sched
