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
thread_local std::vector<const void*> tl_held;

}  // namespace

void on_acquire(const void* mutex) {
  tl_held.push_back(mutex);
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
  auto it = std::find(tl_held.rbegin(), tl_held.rend(), mutex);
  if (it != tl_held.rend()) tl_held.erase(std::next(it).base());
}

void on_destroy(const void* mutex) {
  std::lock_guard<std::mutex> g(registry_mu());
  registry().erase(mutex);
}

bool holds_lock_taken_in(const void* context) {
  if (!ITN_DEBUG_CHECKS || tl_held.empty()) return false;
  std::lock_guard<std::mutex> g(registry_mu());
  for (const void* mutex : tl_held) {
    auto it = registry().find(mutex);
    if (it == registry().end()) continue;
    if (std::find(it->second.begin(), it->second.end(), context) != it->second.end()) return true;
  }
  return false;
}

}  // namespace itn::lock_tracking
