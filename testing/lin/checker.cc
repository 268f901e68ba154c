#include "testing/lin/checker.h"

#include <algorithm>
#include <set>

namespace itn::lin {

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "NOT linearizable";
    case Verdict::kUnknown:
      return "unknown (search budget exhausted)";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, const CheckResult& r) {
  os << to_string(r.verdict) << ": " << r.histories << " histories, " << r.states
     << " states (at most " << r.max_states << " in one), " << r.steps << " model steps";
  if (!r.explanation.empty()) os << "\n" << r.explanation;
  return os;
}

namespace lin_internal {

std::size_t hash_words(const std::vector<std::uint64_t>& words) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::uint64_t w : words) {
    // A 64-bit mix per word (splitmix64's finaliser), folded in.
    w ^= w >> 30;
    w *= 0xbf58476d1ce4e5b9ull;
    w ^= w >> 27;
    w *= 0x94d049bb133111ebull;
    w ^= w >> 31;
    h = (h ^ w) * 0x100000001b3ull;
  }
  return static_cast<std::size_t>(h);
}

// Layout (time flows down, one column per thread):
//   event | thread 0        | thread 1
//   ------+-----------------+----------------
//       0 | #0 write(1)     |
//       1 |                 | #1 read()
//       2 | #0 -> OK        |
//       - |                 | #1 pending
std::string render_timeline(std::vector<TimelineRow> rows) {
  std::stable_sort(rows.begin(), rows.end(),
                   [](const TimelineRow& a, const TimelineRow& b) { return a.pos < b.pos; });
  std::set<int> thread_set;
  for (const TimelineRow& r : rows) thread_set.insert(r.thread);
  const std::vector<int> threads(thread_set.begin(), thread_set.end());
  auto column = [&](int thread) {
    return static_cast<std::size_t>(std::lower_bound(threads.begin(), threads.end(), thread) -
                                    threads.begin());
  };
  std::vector<std::size_t> width(threads.size());
  for (std::size_t c = 0; c < threads.size(); ++c) {
    width[c] = ("thread " + std::to_string(threads[c])).size();
  }
  for (const TimelineRow& r : rows) {
    width[column(r.thread)] = std::max(width[column(r.thread)], r.text.size());
  }
  auto trim = [](std::string& line) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
  };
  auto pad = [](std::string s, std::size_t w) {
    s.resize(std::max(s.size(), w), ' ');
    return s;
  };
  std::string out = "  event";
  for (std::size_t c = 0; c < threads.size(); ++c) {
    out += " | " + pad("thread " + std::to_string(threads[c]), width[c]);
  }
  trim(out);
  out += "\n  -----";
  for (std::size_t c = 0; c < threads.size(); ++c) out += "-+-" + std::string(width[c], '-');
  out += "\n";
  for (const TimelineRow& r : rows) {
    const std::string pos = r.pos == kPending ? "-" : std::to_string(r.pos);
    std::string line = "  " + std::string(5 - std::min<std::size_t>(5, pos.size()), ' ') + pos;
    for (std::size_t c = 0; c < threads.size(); ++c) {
      line += " | " + pad(c == column(r.thread) ? r.text : "", width[c]);
    }
    trim(line);
    out += line + "\n";
  }
  return out;
}

}  // namespace lin_internal
}  // namespace itn::lin
