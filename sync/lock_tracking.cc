#include "sync/lock_tracking.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace itn::lock_tracking {
namespace {

// The registry's own lock is a bare std::mutex: an itn::Mutex would track itself.
std::mutex& registry_mu() {
  static auto* mu = new std::mutex;
  return *mu;
}
// mutex -> contexts it has been taken in.
std::unordered_map<const void*, std::vector<const void*>>& registry() {
  static auto* map = new std::unordered_map<const void*, std::vector<const void*>>;
  return *map;
}
// The locks this thread holds. At exit the thread's thread_local objects are destroyed
// before static destructors run, which may still take locks (e.g. the notifier leak
// check): from then on this thread is no longer tracked. `tl_gone` is trivially
// destructible, so it stays readable after `tl_held` is gone.
thread_local bool tl_gone = false;
struct HeldLocks {
  ~HeldLocks() { tl_gone = true; }
  std::vector<const void*> locks;
};
thread_local HeldLocks tl_held;

}  // namespace

void on_acquire(const void* mutex) {
  if (tl_gone) return;
  tl_held.locks.push_back(mutex);
  if (ContextScope::innermost() == nullptr) return;
  std::lock_guard<std::mutex> g(registry_mu());
  std::vector<const void*>& contexts = registry()[mutex];
  for (const ContextScope* s = ContextScope::innermost(); s != nullptr; s = s->outer()) {
    if (std::find(contexts.begin(), contexts.end(), s->context()) == contexts.end()) {
      contexts.push_back(s->context());
    }
  }
}

void on_release(const void* mutex) {
  if (tl_gone) return;
  std::vector<const void*>& held = tl_held.locks;
  auto it = std::find(held.rbegin(), held.rend(), mutex);
  if (it != held.rend()) held.erase(std::next(it).base());
}

void on_destroy(const void* mutex) {
  std::lock_guard<std::mutex> g(registry_mu());
  registry().erase(mutex);
}

bool holds(const void* mutex) {
  if (!ITN_DEBUG_CHECKS || tl_gone) return false;
  const std::vector<const void*>& held = tl_held.locks;
  return std::find(held.begin(), held.end(), mutex) != held.end();
}

bool holds_lock_taken_in(const void* context) {
  if (!ITN_DEBUG_CHECKS || tl_gone || tl_held.locks.empty()) return false;
  std::lock_guard<std::mutex> g(registry_mu());
  for (const void* mutex : tl_held.locks) {
    auto it = registry().find(mutex);
    if (it == registry().end()) continue;
    if (std::find(it->second.begin(), it->second.end(), context) != it->second.end()) return true;
  }
  return false;
}

}  // namespace itn::lock_tracking
