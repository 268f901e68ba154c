// scratch: device write vs the device's own migration
#include <atomic>
#include <cstdio>
#include <thread>

#include "hw_model/mirror_device.h"
int main() {
  using namespace itn::hw;
  auto p = itn::make_ref<Process>();
  auto gpu = *MirrorDevice::open(*p);
  std::uint64_t page = *p->mm().mmap(kPageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
  std::atomic<bool> stop{false};
  std::thread m([&] {
    while (!stop) {
      (void)gpu->migrate_to_device(page, kPageSize);
      (void)gpu->migrate_to_system(page, kPageSize);
    }
  });
  int lost = 0;
  for (std::uint64_t i = 1; i <= 200000; ++i) {
    if (!gpu->write(page, {&i, 1}).ok()) {
      std::printf("write failed\n");
      continue;
    }
    std::uint64_t got = (*gpu->read(page, 1))[0];
    if (got != i) {
      if (++lost <= 3)
        std::printf("wrote %llu, read back %llu\n", static_cast<unsigned long long>(i),
                    static_cast<unsigned long long>(got));
    }
  }
  stop = true;
  m.join();
  std::printf("lost writes: %d of 200000\n", lost);
  gpu->close();
}
