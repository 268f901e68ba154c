// Unit tests of the linearizability checker (testing/lin/checker.h) and the history
// recorder, on hand-written histories of a keyed register: known linearizable, known not,
// pending operations, partitioning and memoisation. The histories are written with
// History::call()/ret() on one thread: the order of those calls is the event order.
#include "testing/lin/checker.h"

#include <atomic>
#include <cstddef>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "testing/lin/history.h"

namespace itn::lin {
namespace {

constexpr int kKeys = 2;

struct RegOp {
  enum class Kind { kWrite, kRead, kAdd };
  Kind kind = Kind::kRead;
  int key = 0;
  int value = 0;  // kWrite: the value; kAdd: the increment
};

RegOp write(int v, int key = 0) { return {RegOp::Kind::kWrite, key, v}; }
RegOp read(int key = 0) { return {RegOp::Kind::kRead, key, 0}; }
RegOp add(int d, int key = 0) { return {RegOp::Kind::kAdd, key, d}; }

// kKeys integer registers, all 0 at first. A read returns the value; writes and adds
// return 0 (nothing to check).
struct RegisterModel {
  using State = std::vector<int>;
  using Op = RegOp;
  using Result = int;

  State initial() const { return State(kKeys, 0); }
  std::optional<State> step(const State& s, const Op& op, const Result* r) const {
    State next = s;
    switch (op.kind) {
      case Op::Kind::kWrite:
        next[op.key] = op.value;
        break;
      case Op::Kind::kAdd:
        next[op.key] += op.value;
        break;
      case Op::Kind::kRead:
        if (r && *r != s[op.key]) return std::nullopt;
        break;
    }
    return next;
  }
  std::size_t hash(const State& s) const {
    std::size_t h = 0;
    for (int v : s) h = h * 31 + static_cast<std::size_t>(v);
    return h;
  }
  std::string show(const Op& op) const {
    const std::string k = op.key == 0 ? "" : "[" + std::to_string(op.key) + "]";
    switch (op.kind) {
      case Op::Kind::kWrite:
        return "write" + k + "(" + std::to_string(op.value) + ")";
      case Op::Kind::kAdd:
        return "add" + k + "(" + std::to_string(op.value) + ")";
      case Op::Kind::kRead:
        return "read" + k + "()";
    }
    return "?";
  }
  std::string show(const Op& op, const Result& r) const {
    return op.kind == Op::Kind::kRead ? std::to_string(r) : "ok";
  }
};

static_assert(SequentialModel<RegisterModel>);

using RegHistory = History<RegOp, int>;

// A call and its return with nothing in between.
void run(RegHistory& h, int thread, RegOp op, int result = 0) { h.ret(h.call(thread, op), result); }

CheckResult check_reg(const RegHistory& h, const CheckOptions& options = {}) {
  return check(RegisterModel{}, h.operations(), options);
}

TEST(LinCheckerTest, EmptyHistoryIsLinearizable) {
  RegHistory h;
  EXPECT_TRUE(check_reg(h).ok());
}

TEST(LinCheckerTest, SequentialHistoryIsLinearizable) {
  RegHistory h;
  run(h, 0, write(1));
  run(h, 1, read(), 1);
  run(h, 0, add(2));
  run(h, 1, read(), 3);
  EXPECT_TRUE(check_reg(h).ok()) << check_reg(h);
}

// write(1) |----------|
// read      |---| -> seen
TEST(LinCheckerTest, OverlappingReadMaySeeOldOrNewValue) {
  for (int seen : {0, 1, 2}) {
    RegHistory h;
    const auto w = h.call(0, write(1));
    const auto r = h.call(1, read());
    h.ret(r, seen);
    h.ret(w, 0);
    EXPECT_EQ(check_reg(h).ok(), seen != 2) << "read saw " << seen;
  }
}

// write(1) |------|          then read -> a, read -> b on one thread
// write(2)    |------|
TEST(LinCheckerTest, ConcurrentWritesLinearizeInEitherOrder) {
  struct Case {
    int a, b;
    bool ok;
  };
  for (const Case c : {Case{1, 1, true}, Case{2, 2, true}, Case{1, 2, false}, Case{3, 3, false}}) {
    RegHistory h;
    const auto w1 = h.call(0, write(1));
    const auto w2 = h.call(1, write(2));
    h.ret(w1, 0);
    h.ret(w2, 0);
    run(h, 2, read(), c.a);
    run(h, 2, read(), c.b);
    EXPECT_EQ(check_reg(h).ok(), c.ok) << "reads " << c.a << ", " << c.b;
  }
}

TEST(LinCheckerTest, ReadOfValueNeverWrittenIsNotLinearizable) {
  RegHistory h;
  const auto w = h.call(0, write(1));
  const auto r = h.call(1, read());
  h.ret(r, 7);
  h.ret(w, 0);
  EXPECT_EQ(check_reg(h).verdict, Verdict::kNotLinearizable);
}

TEST(LinCheckerTest, StaleReadAfterCompletedWriteIsNotLinearizable) {
  RegHistory h;
  run(h, 0, write(1));
  run(h, 1, read(), 0);  // called after write(1) returned
  EXPECT_EQ(check_reg(h).verdict, Verdict::kNotLinearizable);
}

// A read saw the new value, a later read (called after it returned) the old one, while
// the write was still running: real-time order forbids the second.
TEST(LinCheckerTest, NewOldInversionIsNotLinearizable) {
  RegHistory h;
  const auto w = h.call(0, write(1));
  run(h, 1, read(), 1);
  run(h, 2, read(), 0);
  h.ret(w, 0);
  EXPECT_EQ(check_reg(h).verdict, Verdict::kNotLinearizable);
}

TEST(LinCheckerTest, LostIncrementIsNotLinearizable) {
  for (int seen : {1, 2}) {
    RegHistory h;
    const auto a = h.call(0, add(1));
    const auto b = h.call(1, add(1));
    h.ret(b, 0);
    h.ret(a, 0);
    run(h, 2, read(), seen);
    EXPECT_EQ(check_reg(h).ok(), seen == 2) << "read saw " << seen;
  }
}

// write(1) |------------------ (never returns)
// reads       then |-| -> a   then |-| -> b
TEST(LinCheckerTest, PendingWriteMayTakeEffectOrNot) {
  struct Case {
    int a, b;
    bool ok;
  };
  for (const Case c : {Case{0, 0, true}, Case{1, 1, true}, Case{0, 1, true}, Case{1, 0, false}}) {
    RegHistory h;
    h.call(0, write(1));
    run(h, 1, read(), c.a);
    run(h, 1, read(), c.b);
    EXPECT_EQ(check_reg(h).ok(), c.ok) << "reads " << c.a << ", " << c.b;
  }
}

TEST(LinCheckerTest, PendingWriteCannotTakeEffectBeforeItsCall) {
  RegHistory h;
  run(h, 1, read(), 1);  // returned before write(1) was called
  h.call(0, write(1));
  EXPECT_EQ(check_reg(h).verdict, Verdict::kNotLinearizable);
}

TEST(LinCheckerTest, HistoryOfOnlyPendingOperationsIsLinearizable) {
  RegHistory h;
  h.call(0, write(1));
  h.call(1, read());
  h.call(2, add(3));
  EXPECT_TRUE(check_reg(h).ok());
}

TEST(LinCheckerTest, ExplanationShowsPerThreadTimeline) {
  RegHistory h;
  const auto w = h.call(0, write(1));
  run(h, 1, read(), 1);
  h.ret(w, 0);
  run(h, 1, read(), 0);
  h.call(2, write(5));  // pending
  const CheckResult r = check_reg(h);
  ASSERT_FALSE(r.ok());
  std::cout << r << "\n";  // what a failure looks like
  for (const char* text :
       {"thread 0", "thread 1", "thread 2", "#0 write(1)", "#1 read()", "#2 -> 0", "#3 pending",
        "longest linearizable prefix", "none of these can take effect next"}) {
    EXPECT_NE(r.explanation.find(text), std::string::npos) << "missing: " << text;
  }
}

// Two keys interleaved: each key's part is linearizable, or key 1's is not.
TEST(LinCheckerTest, PartitionsChecksEachKeyAlone) {
  for (bool bad : {false, true}) {
    RegHistory h;
    const auto w0 = h.call(0, write(1, 0));
    const auto w1 = h.call(1, write(2, 1));
    h.ret(w0, 0);
    h.ret(w1, 0);
    run(h, 0, read(1), bad ? 0 : 2);  // stale iff bad
    run(h, 1, read(0), 1);
    const CheckResult r = check_partitioned(RegisterModel{}, h.operations(),
                                            by_key([](const RegOp& op) { return op.key; }));
    EXPECT_EQ(r.ok(), !bad) << r;
    if (bad) {
      EXPECT_EQ(r.failed_key, "1");
      EXPECT_NE(r.explanation.find("part 1"), std::string::npos);
    } else {
      EXPECT_EQ(r.histories, 2u);
    }
  }
}

TEST(LinCheckerTest, PartitioningShrinksTheSearch) {
  // n concurrent adds on each key, then a read of each, key 1's missing an add: to say no,
  // one search over both keys must try every subset of the 2n adds, the partitioned check
  // only every subset of key 1's n.
  constexpr int n = 7;
  RegHistory h;
  std::vector<RegHistory::OpId> ids;
  for (int i = 0; i < 2 * n; ++i) ids.push_back(h.call(i, add(1, i % 2)));
  for (auto id : ids) h.ret(id, 0);
  run(h, 0, read(0), n);
  run(h, 0, read(1), n - 1);
  const CheckResult whole = check_reg(h);
  const CheckResult parts = check_partitioned(RegisterModel{}, h.operations(),
                                              by_key([](const RegOp& op) { return op.key; }));
  EXPECT_FALSE(whole.ok());
  EXPECT_FALSE(parts.ok());
  EXPECT_EQ(parts.failed_key, "1");
  EXPECT_EQ(parts.histories, 2u);
  EXPECT_GE(whole.states, std::size_t{1} << (2 * n - 1)) << whole;
  EXPECT_LE(parts.states, std::size_t{2} << n) << parts;
}

// 14 concurrent increments, then a read that misses one. Without the cache the search
// tries all 14! orders before it can say no; with it, each subset of linearized adds
// (which fixes the register's value) is explored once: at most 2^14 states.
TEST(LinCheckerTest, MemoisationBoundsTheSearch) {
  constexpr int n = 14;
  RegHistory h;
  std::vector<RegHistory::OpId> ids;
  for (int i = 0; i < n; ++i) ids.push_back(h.call(i, add(1)));
  for (auto id : ids) h.ret(id, 0);
  run(h, 0, read(), n - 1);

  const CheckResult memo = check_reg(h);
  EXPECT_EQ(memo.verdict, Verdict::kNotLinearizable);
  EXPECT_LE(memo.states, std::size_t{1} << n) << memo;
  EXPECT_LE(memo.steps, (n + 1) * (std::size_t{1} << n)) << memo;

  CheckOptions no_memo;
  no_memo.memoize = false;
  no_memo.max_steps = 10 * memo.steps;
  const CheckResult plain = check_reg(h, no_memo);
  EXPECT_EQ(plain.verdict, Verdict::kUnknown) << "without memoisation 10x the steps should "
                                              << "not suffice: " << plain;
}

TEST(LinHistoryTest, PendingOperationHasNoReturn) {
  RegHistory h;
  const auto a = h.call(3, write(1));
  run(h, 4, read(), 0);
  const auto ops = h.operations();
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[a].thread, 3);
  EXPECT_TRUE(ops[a].pending());
  EXPECT_EQ(ops[a].ret, kPending);
  EXPECT_EQ(ops[1].call, 1u);
  EXPECT_EQ(ops[1].ret, 2u);
}

TEST(LinHistoryDeathTest, SecondReturnDies) {
  RegHistory h;
  const auto a = h.call(0, write(1));
  h.ret(a, 0);
  EXPECT_DEATH(h.ret(a, 0), "already returned");
}

// Real threads on a real atomic register: every event gets a distinct position, each
// thread's operations are ordered, and the history checks out.
TEST(LinHistoryTest, RecordsRealThreadsInRealTimeOrder) {
  constexpr int kThreads = 4, kOps = 60;
  RegHistory h;
  std::atomic<int> reg{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOps; ++i) {
        if ((i + t) % 3 == 0) {
          h.record(t, add(1), [&] { return reg.fetch_add(1) * 0; });
        } else {
          h.record(t, read(), [&] { return reg.load(); });
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto ops = h.operations();
  ASSERT_EQ(ops.size(), std::size_t{kThreads * kOps});
  std::vector<bool> used(2 * ops.size(), false);
  std::vector<std::size_t> last_ret(kThreads, 0);
  std::vector<bool> any(kThreads, false);
  for (const auto& o : ops) {
    ASSERT_FALSE(o.pending());
    ASSERT_LT(o.call, o.ret);
    ASSERT_LT(o.ret, used.size());
    EXPECT_FALSE(used[o.call] || used[o.ret]);
    used[o.call] = used[o.ret] = true;
    if (any[o.thread]) {
      EXPECT_LT(last_ret[o.thread], o.call);  // ids are in call order
    }
    last_ret[o.thread] = o.ret;
    any[o.thread] = true;
  }
  const CheckResult r = check(RegisterModel{}, ops);
  EXPECT_TRUE(r.ok()) << r;
}

}  // namespace
}  // namespace itn::lin
