// proptests/races.h
//
// Support for the race scenarios of races_test.cc: expect_no_race() sizes a PCT
// exploration from the PCT bound and fails the test with the replayable schedule if any
// execution breaks the property; PasidTrace records the PASID events of an Iommu.
//
// Thread safety: expect_no_race() from the test's main thread; PasidTrace may be called
// from any thread (managed or not). Lifetime: PasidTrace must outlive the Iommu using
// its callback. Memory ordering: PasidTrace's lock orders its events.
#ifndef ITN_PROPTESTS_RACES_H_
#define ITN_PROPTESTS_RACES_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "hw_model/iommu.h"
#include "testing/sched/explore.h"

namespace itn::races {

// Explores `scenario` under PCT (depth 2) for as many executions as the PCT bound asks
// for a 99% chance of finding a depth-2 bug, capped at ITN_RACE_EXECUTIONS (default
// kDefaultBudget); prints what it ran and how that compares with the bound.
inline constexpr int kDefaultBudget = 3000;
void expect_no_race(const char* name, sched::Scenario scenario);

// The Iommu's PASID events, in order. The lock has no scheduling points inside, so a
// managed thread never waits for it while another holds it.
class PasidTrace {
 public:
  hw::Iommu::Trace callback() {
    return [this](std::string_view event, std::uint32_t pasid) {
      std::lock_guard<std::mutex> l(mu_);
      events_.emplace_back(std::string(event), pasid);
    };
  }
  bool freed(std::uint32_t pasid) {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [event, id] : events_) {
      if (event == "free" && id == pasid) return true;
    }
    return false;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, std::uint32_t>> events_;
};

}  // namespace itn::races

#endif  // ITN_PROPTESTS_RACES_H_
