// testing/lin/history.h
//
// itn::lin::History: the recorder of a concurrent history for the linearizability checker
// (testing/lin/checker.h). Each thread records a *call* event before it starts an
// operation and a *return* event after the operation has finished; every event gets the
// next position in one global event order. An operation whose return was never recorded
// (its thread is blocked, or the run was cut short) stays *pending*: the checker lets it
// take effect or not.
//
//   History<RegOp, int> h;
//   const auto id = h.call(/*thread=*/0, RegOp::write(1));
//   reg.write(1);
//   h.ret(id, 0);
//   int v = h.record(1, RegOp::read(), [&] { return reg.read(); });  // call + run + ret
//   CheckResult r = check(RegisterModel{}, h.operations());
//
// Why positions are enough: a call is recorded before its operation begins and a return
// after it ends, and the two recordings are ordered by one mutex. So if A's return has a
// smaller position than B's call, A really finished before B began (real-time order is
// never invented). The converse may not hold: recording late only makes more operations
// look concurrent, which makes the check weaker, never wrong.
//
// Thread safety: call(), ret(), record() and operations() may be called from any thread
// concurrently. The recorder uses a plain std::mutex on purpose, not itn::Mutex: it must
// not add scheduling points or lock-order edges (sync/lock_tracking.h) to the system under
// test. Its critical sections contain no scheduling point, so under the deterministic
// scheduler (one managed thread runs at a time) it is never contended.
// Lifetime: the History must outlive every thread that records into it.
// Memory ordering: a call() or ret() happens-before every operations() snapshot that
// includes it (both take the mutex).
//
// Traces: while a trace recorder is installed (sync/trace.h), each operation is also an
// async span "operation" (category "lin") from its call to its return, with its id (the
// checker's #id) and thread, so a failing check can be read against the library's own
// events; explore() records that way when it replays a failing execution.
#ifndef ITN_TESTING_LIN_HISTORY_H_
#define ITN_TESTING_LIN_HISTORY_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "sync/check.h"
#include "sync/trace.h"

namespace itn::lin {

// Position of the return event of a pending operation.
inline constexpr std::size_t kPending = std::numeric_limits<std::size_t>::max();

// One operation of a history: what was called, by whom, and what it returned.
template <class Op, class Result>
struct Operation {
  using op_type = Op;
  using result_type = Result;

  int thread = 0;                // caller's thread id (the harness's numbering)
  Op op{};                       // the operation and its arguments
  std::optional<Result> result;  // nullopt: pending (called, never returned)
  std::size_t call = 0;          // position of the call event in the global event order
  std::size_t ret = kPending;    // position of the return event; kPending if none
  std::size_t id = 0;            // index in the History it was recorded in (printed as #id)

  bool pending() const { return !result.has_value(); }
};

template <class Op, class Result>
class History {
 public:
  using OpId = std::size_t;

  History() = default;
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // History::call()
  //
  // Records that `thread` is about to start `op`. Call it before the operation begins.
  // Returns the id to pass to ret().
  OpId call(int thread, Op op) {
    std::lock_guard<std::mutex> l(mu_);
    Operation<Op, Result> o;
    o.thread = thread;
    o.op = std::move(op);
    o.call = next_event_++;
    o.id = ops_.size();
    const std::size_t id = o.id;
    spans_.push_back(trace::async_begin("lin", "operation", [&] {
      return trace::Args{{"id", id}, {"thread", thread}};
    }));
    ops_.push_back(std::move(o));
    return id;
  }

  // History::ret()
  //
  // Records that operation `id` has finished with `result`. Call it after the operation
  // returned. Recording a second return for the same id is a bug (dies).
  void ret(OpId id, Result result) {
    std::lock_guard<std::mutex> l(mu_);
    ITN_CHECK(id < ops_.size(), "lin::History::ret(): unknown operation id");
    Operation<Op, Result>& o = ops_[id];
    ITN_CHECK(o.pending(), "lin::History::ret(): operation already returned");
    o.result = std::move(result);
    o.ret = next_event_++;
    trace::async_end(spans_[id], "lin", "operation");
  }

  // History::record()
  //
  // call(), then `fn()` (which performs the operation and returns its result), then ret().
  // If `fn` never returns, the operation stays pending.
  template <class Fn>
  Result record(int thread, Op op, Fn&& fn) {
    const OpId id = call(thread, std::move(op));
    Result result = std::forward<Fn>(fn)();
    ret(id, result);
    return result;
  }

  // History::operations()
  //
  // A snapshot of every operation recorded so far, in call order (index = id).
  std::vector<Operation<Op, Result>> operations() const {
    std::lock_guard<std::mutex> l(mu_);
    return ops_;
  }

  std::size_t size() const {
    std::lock_guard<std::mutex> l(mu_);
    return ops_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Operation<Op, Result>> ops_;  // guarded by mu_
  std::vector<std::uint64_t> spans_;        // guarded by mu_; trace handles, by id
  std::size_t next_event_ = 0;              // guarded by mu_
};

}  // namespace itn::lin

#endif  // ITN_TESTING_LIN_HISTORY_H_
