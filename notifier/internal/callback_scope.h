// notifier/internal/callback_scope.h
//
// Which notifier domains' callbacks the calling thread is inside, for the I9 checks
// (remove(), read_begin(), synchronize() from a callback would wait for the callback
// itself). A CallbackScope lives on the stack around every callback invocation.
#ifndef ITN_NOTIFIER_INTERNAL_CALLBACK_SCOPE_H_
#define ITN_NOTIFIER_INTERNAL_CALLBACK_SCOPE_H_

namespace itn::notifier_internal {

class CallbackScope {
 public:
  explicit CallbackScope(const void* domain) : domain_(domain), outer_(innermost_) {
    innermost_ = this;
  }
  ~CallbackScope() { innermost_ = outer_; }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

  // True if the calling thread is inside a callback of `domain`.
  static bool inside(const void* domain) {
    for (const CallbackScope* s = innermost_; s != nullptr; s = s->outer_) {
      if (s->domain_ == domain) return true;
    }
    return false;
  }

 private:
  static inline thread_local const CallbackScope* innermost_ = nullptr;
  const void* domain_;
  const CallbackScope* outer_;
};

}  // namespace itn::notifier_internal

#endif  // ITN_NOTIFIER_INTERNAL_CALLBACK_SCOPE_H_
