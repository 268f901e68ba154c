// Uses the installed headers and library: a counted object freed after a grace period.
#include <cstdio>

#include "sync/ref.h"
#include "sync/srcu.h"

namespace {

bool g_destroyed = false;

class Node : public itn::RefCounted {
 public:
  explicit Node(itn::SrcuDomain& srcu) { free_after_grace_period(srcu); }
  ~Node() override { g_destroyed = true; }
};

}  // namespace

int main() {
  itn::SrcuDomain srcu;
  itn::Ref<Node> node = itn::make_ref<Node>(srcu);
  {
    auto guard = srcu.read_lock();
    node.reset();  // freed only after this read section ends
    if (g_destroyed) return 1;
  }
  srcu.barrier();
  std::printf("itn consumer: %s\n", g_destroyed ? "ok" : "FAILED");
  return g_destroyed ? 0 : 1;
}
