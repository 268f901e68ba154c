// What one execution under the deterministic scheduler costs: explore() of a fixed
// scenario, as executions per second of wall time (counter executions; the benchmark's
// thread mostly waits, so its CPU time would say nothing) and scheduling decisions per
// second (decisions). The baseline (`plain`) runs the same bodies on unmanaged threads,
// so the ratio is the scheduler's overhead on that scenario. Built only with the seam.
//   BM_Sched_Handoffs/{sched,plain}: two threads, each taking and releasing one shared
//       itn::Mutex `k` times around an atomic increment (every point a decision, no
//       library work: the cost of the baton itself).
//   BM_Sched_FaultVsFree/{sched,plain}: a fresh process, a device-style fault_range() of
//       two pages against madvise(kFree) and a CPU write (what a driver's fault path
//       exploration runs: library threads included).
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"

#include "hw_model/process.h"
#include "sync/atomic.h"
#include "sync/check.h"
#include "sync/mutex.h"
#include "testing/sched/explore.h"

namespace itn::bench {
namespace {

using Bodies = std::vector<std::function<void()>>;
// Builds the scenario's state, then hands its bodies to `run` (the scheduler's or plain).
using Scenario = std::function<void(const std::function<void(Bodies)>& run)>;

void handoffs(int k, const std::function<void(Bodies)>& run) {
  Mutex mu;
  Atomic<int> counter{0};
  const auto body = [&] {
    for (int i = 0; i < k; ++i) {
      MutexLock l(mu);
      // Relaxed: a counter under the mutex, read after both threads ended.
      counter.fetch_add(1, std::memory_order_relaxed);
    }
  };
  run({body, body});
  ITN_CHECK(counter.load(std::memory_order_relaxed) == 2 * k, "sched_bench: lost increments");
}

void fault_vs_free(const std::function<void(Bodies)>& run) {
  Ref<hw::Process> process = make_ref<hw::Process>();
  hw::AddressSpace& mm = process->mm();
  const std::uint64_t addr =
      *mm.mmap(2 * hw::kPageSize, hw::Prot::kReadWrite, hw::MapKind::kAnonPrivate);
  ITN_CHECK_OK(mm.cpu_write(addr, 1), "sched_bench setup");
  int dummy = 0;
  run({[&] { ITN_CHECK(mm.fault_range(addr, 2 * hw::kPageSize, true, &dummy).ok(), "fault"); },
       [&] {
         ITN_CHECK_OK(mm.madvise(addr, hw::kPageSize, hw::Advice::kFree), "free");
         ITN_CHECK_OK(mm.cpu_write(addr + hw::kPageSize, 2), "write");
       }});
}

void run_plain(Bodies bodies) {
  std::vector<std::thread> threads;
  for (auto& b : bodies) threads.emplace_back(std::move(b));
  for (std::thread& t : threads) t.join();
}

void measure(benchmark::State& state, const Scenario& scenario) {
  const bool scheduled = state.range(0) != 0;
  constexpr int kExecutions = 50;
  std::int64_t executions = 0, decisions = 0;
  for (auto _ : state) {
    if (scheduled) {
      sched::ExploreOptions options;
      options.executions = kExecutions;
      options.seed = static_cast<std::uint64_t>(executions) + 1;
      const sched::ExploreResult r = sched::explore(options, [&](sched::Execution& ex) {
        scenario([&](Bodies bodies) { ex.run(std::move(bodies)); });
        return ex.status();
      });
      ITN_CHECK(!r.failed, "sched_bench: an execution failed");
      executions += r.executions;
      decisions += r.decisions;
    } else {
      for (int i = 0; i < kExecutions; ++i) scenario(run_plain);
      executions += kExecutions;
    }
  }
  state.counters["executions"] =
      benchmark::Counter(static_cast<double>(executions), benchmark::Counter::kIsRate);
  state.counters["decisions"] =
      benchmark::Counter(static_cast<double>(decisions), benchmark::Counter::kIsRate);
}

void BM_Sched_Handoffs(benchmark::State& state) {
  const int k = static_cast<int>(state.range(1));
  measure(state, [k](const std::function<void(Bodies)>& run) { handoffs(k, run); });
}
BENCHMARK(BM_Sched_Handoffs)
    ->ArgNames({"sched", "k"})
    ->ArgsProduct({{1, 0}, {10, 100}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Sched_FaultVsFree(benchmark::State& state) { measure(state, fault_vs_free); }
BENCHMARK(BM_Sched_FaultVsFree)
    ->ArgNames({"sched"})
    ->Arg(1)
    ->Arg(0)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace itn::bench

BENCHMARK_MAIN();
