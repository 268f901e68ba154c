// L2: concurrent histories of the notifier domain, checked for linearisability. RapidCheck
// generates what each of three threads does (inserts, removes, finds, read_begin and
// read_retry pairs, invalidations bracketed start..end); the deterministic scheduler runs
// the threads on the real domain under several PCT seeds; every call and return is
// recorded and the history is checked per notifier against lin::NotifierModel (the
// serial semantics of proptests/models/domain_model.h).
//
// Setup per execution: notifier 0 is inserted before the threads start and never
// removed (read_begin needs an inserted notifier); notifier 1 starts uninserted and the
// threads insert, remove (and so insert again) and find it; notifier 2 is inserted and
// its reference dropped before the threads start (the domain holds the only one), and
// thread 2 removes it first thing, through a plain pointer, while the others find it.
// Each notifier has its own owner for find(). A whole-space notifier that does nothing is
// registered throughout, so that every invalidation takes the locked path: the
// per-notifier model cannot tell which invalidations of a history were fast (that depends
// on the other notifiers), and a fast one does not keep the sequence odd. The fast path
// has its own spin model (fast_path_handshake) and tests (notifier/fast_path_test.cc).
// Between its start and end a thread only changes the "page table" (scheduling points,
// no domain call), so no thread waits for itself. read_retry runs under the notifier's driver lock,
// as the contract asks.
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

#include "notifier/domain.h"
#include "testing/lin/checker.h"
#include "testing/lin/history.h"
#include "proptests/lin/notifier_model.h"
#include "testing/sched/explore.h"
#include "rapidcheck.h"
#include "sync/atomic.h"
#include "sync/check.h"
#include "sync/mutex.h"

namespace itn::lin {
namespace {

constexpr std::uint64_t kPage = 4096;
// Notifier 0 covers pages 0-1, notifier 1 pages 1-2, notifier 2 pages 2-3: ranges can
// hit one, two or none.
const std::vector<std::pair<std::uint64_t, std::uint64_t>> kIntervals = {
    {0, 2 * kPage - 1}, {kPage, 3 * kPage - 1}, {2 * kPage, 4 * kPage - 1}};
const std::pair<std::uint64_t, std::uint64_t> kRanges[] = {
    {0, kPage}, {kPage, 2 * kPage}, {2 * kPage, 3 * kPage}, {5 * kPage, 6 * kPage}};

struct Step {
  enum class Kind { kInsert1, kRemove1, kFind, kRead0, kInvalidate };
  Kind kind;
  int arg;  // kFind: the notifier; kInvalidate: index into kRanges
};
std::ostream& operator<<(std::ostream& os, const Step& s) {
  static const char* const kNames[] = {"insert(1)", "remove(1)", "find", "read(0)", "invalidate"};
  return os << kNames[static_cast<int>(s.kind)] << "/" << s.arg;
}

class Sub : public IntervalNotifier {
 public:
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    MutexLock l(driver_lock);
    set_seq(cur_seq);
    return true;
  }
  Mutex driver_lock;
};

using DomainHistory = History<DomainOp, NotifierResult>;

// Stands for the CPU page table that an invalidation changes and a fault walks: a few
// scheduling points between two domain calls of one thread, so that other threads'
// operations can fall entirely between them (without them no interleaving could tell a
// stale read_retry() from an early one).
Atomic<int> page_table{0};
void walk_page_table() {
  for (int i = 0; i < 3; ++i) (void)page_table.load(std::memory_order_relaxed);
}

// Runs one thread's steps against `domain`, recording each as DomainOps.
void run_steps(int thread, const std::vector<Step>& steps, NotifierDomain& domain,
               const std::vector<Ref<Sub>>& subs, IntervalNotifier* sole, const int* owners,
               DomainHistory& h) {
  if (thread == 2) {
    h.record(thread, DomainOp{DomainOp::Kind::kRemove, 2},
             [&] { return NotifierResult::status(domain.remove(*sole).code()); });
  }
  for (const Step& s : steps) {
    switch (s.kind) {
      case Step::Kind::kInsert1:
        h.record(thread, DomainOp{DomainOp::Kind::kInsert, 1}, [&] {
          return NotifierResult::status(
              domain.insert(subs[1], Interval::sized(kIntervals[1].first, 2 * kPage), &owners[1])
                  .code());
        });
        break;
      case Step::Kind::kRemove1:
        h.record(thread, DomainOp{DomainOp::Kind::kRemove, 1},
                 [&] { return NotifierResult::status(domain.remove(*subs[1]).code()); });
        break;
      case Step::Kind::kFind: {
        const std::uint64_t start = kRanges[s.arg % 4].first, end = kRanges[s.arg % 4].second;
        const int sub = s.arg / 4;
        IntervalNotifier* const target = sub == 2 ? sole : subs[sub].get();
        h.record(thread, DomainOp{DomainOp::Kind::kFind, sub, start, end - 1}, [&] {
          Ref<IntervalNotifier> found = domain.find(&owners[sub], Interval::closed(start, end - 1));
          return NotifierResult::found(found.get() == target);
        });
        break;
      }
      case Step::Kind::kRead0: {
        const NotifierResult begun = h.record(thread, DomainOp{DomainOp::Kind::kReadBegin, 0}, [&] {
          return NotifierResult::begun(subs[0]->read_begin());
        });
        walk_page_table();  // the device walk between read_begin and read_retry
        h.record(thread, DomainOp{DomainOp::Kind::kReadRetry, 0, 0, 0, begun.seq}, [&] {
          MutexLock l(subs[0]->driver_lock);
          return NotifierResult::retry(subs[0]->read_retry(begun.seq));
        });
        break;
      }
      case Step::Kind::kInvalidate: {
        const std::uint64_t start = kRanges[s.arg].first, end = kRanges[s.arg].second;
        const Range r{start, end, Event::kClear, /*blockable=*/true, nullptr};
        std::optional<InvalidationToken> token;
        h.record(thread, DomainOp{DomainOp::Kind::kStart, 0, start, end - 1}, [&] {
          absl::StatusOr<InvalidationToken> started = domain.invalidate_range_start(r);
          const absl::StatusCode code = started.status().code();
          if (started.ok()) token.emplace(*std::move(started));
          return NotifierResult::status(code);
        });
        walk_page_table();  // the page table change between start and end
        h.record(thread, DomainOp{DomainOp::Kind::kEnd, 0, start, end - 1}, [&] {
          domain.invalidate_range_end(std::move(*token));
          return NotifierResult::status(absl::StatusCode::kOk);
        });
        break;
      }
    }
  }
}

rc::Gen<Step> gen_step() {
  return rc::gen::apply(
      [](int kind, int arg) {
        const auto k = static_cast<Step::Kind>(kind);
        return Step{k, k == Step::Kind::kFind ? arg % 12 : arg % 4};
      },
      rc::gen::inRange(0, 5), rc::gen::inRange(0, 12));
}

RC_GTEST_PROP(NotifierDomainLinearizability, ConcurrentHistoriesLinearizePerNotifier, ()) {
  // Full-size choices from the first case on (RapidCheck scales ranges with the size);
  // shrinking still simplifies a failing plan.
  const auto plan = *rc::gen::resize(
      100, rc::gen::container<std::vector<std::vector<Step>>>(
               3, rc::gen::container<std::vector<Step>>(*rc::gen::inRange(1, 4), gen_step())));
  sched::ExploreOptions options;
  options.executions = 16;
  options.seed = *rc::gen::arbitrary<std::uint32_t>();
  std::string failure;
  const sched::ExploreResult r = sched::explore(options, [&](sched::Execution& ex) {
    // Default free batches: the set-up runs unmanaged, and must not be the one to start
    // the SRCU worker (a worker started there would be invisible to the scheduler).
    auto domain = make_ref<NotifierDomain>();
    const int owners[3] = {0, 1, 2};
    const std::vector<Ref<Sub>> subs = {make_ref<Sub>(), make_ref<Sub>()};
    IntervalNotifier* sole = nullptr;
    Notifier locked_path;  // see the top of this file
    ITN_CHECK_OK(domain->register_notifier(locked_path), "lin test set-up");
    DomainHistory h;
    h.record(3, DomainOp{DomainOp::Kind::kInsert, 0}, [&] {  // setup, before the threads
      return NotifierResult::status(
          domain->insert(subs[0], Interval::sized(0, 2 * kPage), &owners[0]).code());
    });
    h.record(3, DomainOp{DomainOp::Kind::kInsert, 2}, [&] {
      Ref<Sub> n = make_ref<Sub>();
      sole = n.get();
      return NotifierResult::status(
          domain->insert(std::move(n), Interval::sized(2 * kPage, 2 * kPage), &owners[2]).code());
    });
    std::vector<std::function<void()>> threads;
    for (int t = 0; t < 3; ++t) {
      threads.push_back([&, t] { run_steps(t, plan[t], *domain, subs, sole, owners, h); });
    }
    ex.run(std::move(threads));
    const CheckResult c =
        check_partitioned(NotifierModel{}, h.operations(), PerNotifier(kIntervals));
    for (const Ref<Sub>& sub : subs) (void)domain->remove(*sub);
    ITN_CHECK_OK(domain->unregister_notifier(locked_path), "lin test tear-down");
    if (c.ok()) return absl::OkStatus();
    std::ostringstream os;
    os << c;
    failure = os.str();
    return absl::InternalError("not linearizable");
  });
  RC_ASSERT(r.executions >= 1);
  if (r.failed) RC_FAIL(failure + "\n" + r.report());
}

}  // namespace
}  // namespace itn::lin
