#include "sync/ref.h"

#include "sync/srcu.h"

namespace itn {

void RefCounted::destroy() const {
  if (reclaim_domain_ != nullptr) {
    reclaim_domain_->call([self = this] { delete self; });
  } else {
    delete this;
  }
}

}  // namespace itn
