// hw_model/testing/tagged_word.h
//
// Words that name the page they were written to, for stress tests: a reader that finds a
// word of another page read a stale or foreign frame.
//
// Thread safety: pure functions. Lifetime: nothing kept. Memory ordering: none.
#ifndef ITN_HW_MODEL_TESTING_TAGGED_WORD_H_
#define ITN_HW_MODEL_TESTING_TAGGED_WORD_H_

#include <cstdint>

namespace itn::hw::testing {

// A word for `page_index` that no other page's writer produces.
inline std::uint64_t tagged(std::uint64_t page_index, std::uint64_t serial) {
  return (page_index << 32) | (serial & 0xffffffff);
}
// True if `word` is zero (never written, or freed) or was written for `page_index`.
inline bool belongs_to(std::uint64_t word, std::uint64_t page_index) {
  return word == 0 || (word >> 32) == page_index;
}

}  // namespace itn::hw::testing

#endif  // ITN_HW_MODEL_TESTING_TAGGED_WORD_H_
