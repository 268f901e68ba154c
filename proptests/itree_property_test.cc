// L1: IntervalTree against the L0 model (a linearly scanned multiset), as RapidCheck
// command sequences. Every command checks its own result, then the whole tree: the full
// overlap walk equals the model, size() agrees, and check_invariants() passes.
// Defaults: 1000 sequences of up to 200 commands (see CMakeLists.txt); replay a failure
// with the RC_PARAMS line it prints.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <ostream>
#include <vector>

#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"
#include "rapidcheck/state.h"

#include "itree/interval_tree.h"
#include "proptests/models/interval_multiset.h"
#include "rapidcheck.h"

namespace itn {
namespace {

using models::IntervalEntry;
using models::IntervalMultiset;
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

struct TreeSut {
  SrcuDomain srcu;
  IntervalTree<int> tree{srcu};
};

using Command = rc::state::Command<IntervalMultiset, TreeSut>;

// Points crowd a small range (heavy overlap and duplication) and the extremes.
rc::Gen<std::uint64_t> gen_point() {
  return rc::gen::weightedOneOf<std::uint64_t>({
      {6, rc::gen::inRange<std::uint64_t>(0, 64)},
      {2, rc::gen::element<std::uint64_t>(0, 1, kMax - 1, kMax)},
      {1, rc::gen::arbitrary<std::uint64_t>()},
  });
}

rc::Gen<IntervalEntry> gen_entry() {
  return rc::gen::apply(
      [](std::uint64_t a, std::uint64_t b, bool point, int value) {
        if (point) b = a;
        if (a > b) std::swap(a, b);
        return IntervalEntry{a, b, value};
      },
      gen_point(), gen_point(), rc::gen::arbitrary<bool>(), rc::gen::inRange(0, 3));
}

std::vector<IntervalEntry> walk(TreeSut& sut, std::uint64_t start, std::uint64_t last) {
  std::vector<IntervalEntry> out;
  auto guard = sut.srcu.read_lock();
  sut.tree.for_each_overlap(start, last, [&](std::uint64_t s, std::uint64_t l, int v) {
    out.push_back({s, l, v});
  });
  return out;
}

// The whole-tree check every command ends with, against the model after the command.
void check_matches(TreeSut& sut, const IntervalMultiset& model) {
  RC_ASSERT(walk(sut, 0, kMax) == model.overlaps(0, kMax));
  RC_ASSERT(sut.tree.size() == model.entries().size());
  auto guard = sut.srcu.read_lock();
  const absl::Status status = sut.tree.check_invariants();
  if (!status.ok()) RC_FAIL(status.ToString());  // names the violated invariant
}

IntervalMultiset after(const IntervalMultiset& before, const Command& cmd) {
  IntervalMultiset next = before;
  cmd.apply(next);
  return next;
}

std::ostream& operator<<(std::ostream& os, const IntervalEntry& e) {
  return os << "[" << e.start << ", " << e.last << "] -> " << e.value;
}

struct Insert : Command {
  IntervalEntry e = *gen_entry();
  void apply(IntervalMultiset& m) const override { m.insert(e); }
  void run(const IntervalMultiset& m, TreeSut& sut) const override {
    RC_ASSERT(sut.tree.insert(e.start, e.last, e.value).ok());
    check_matches(sut, after(m, *this));
  }
  void show(std::ostream& os) const override { os << "insert " << e; }
};

struct InsertBadRange : Command {
  IntervalEntry e = *gen_entry();
  explicit InsertBadRange(const IntervalMultiset&) { RC_PRE(e.start != e.last); }
  void apply(IntervalMultiset&) const override {}
  void run(const IntervalMultiset& m, TreeSut& sut) const override {
    RC_ASSERT(sut.tree.insert(e.last, e.start, e.value).code() ==
              absl::StatusCode::kInvalidArgument);
    check_matches(sut, m);
  }
  void show(std::ostream& os) const override { os << "insert reversed " << e; }
};

struct EraseExisting : Command {
  IntervalEntry e;
  explicit EraseExisting(const IntervalMultiset& m) {
    RC_PRE(!m.entries().empty());
    e = *rc::gen::elementOf(m.entries());
  }
  void checkPreconditions(const IntervalMultiset& m) const override {
    RC_PRE(std::find(m.entries().begin(), m.entries().end(), e) != m.entries().end());
  }
  void apply(IntervalMultiset& m) const override { m.erase(e); }
  void run(const IntervalMultiset& m, TreeSut& sut) const override {
    RC_ASSERT(sut.tree.erase(e.start, e.last, e.value).ok());
    check_matches(sut, after(m, *this));
  }
  void show(std::ostream& os) const override { os << "erase " << e; }
};

struct EraseAbsent : Command {
  IntervalEntry e = *gen_entry();
  void checkPreconditions(const IntervalMultiset& m) const override {
    RC_PRE(std::find(m.entries().begin(), m.entries().end(), e) == m.entries().end());
  }
  void apply(IntervalMultiset&) const override {}
  void run(const IntervalMultiset& m, TreeSut& sut) const override {
    RC_ASSERT(sut.tree.erase(e.start, e.last, e.value).code() == absl::StatusCode::kNotFound);
    check_matches(sut, m);
  }
  void show(std::ostream& os) const override { os << "erase absent " << e; }
};

struct Query : Command {
  IntervalEntry q = *gen_entry();
  void apply(IntervalMultiset&) const override {}
  void run(const IntervalMultiset& m, TreeSut& sut) const override {
    RC_ASSERT(walk(sut, q.start, q.last) == m.overlaps(q.start, q.last));
  }
  void show(std::ostream& os) const override {
    os << "query [" << q.start << ", " << q.last << "]";
  }
};

// Several inserts and erases published at once.
struct BatchOps : Command {
  struct Op {
    bool insert;
    IntervalEntry e;
  };
  std::vector<Op> ops;
  explicit BatchOps(const IntervalMultiset& m) {
    IntervalMultiset sim = m;
    const int n = *rc::gen::inRange(1, 7);
    for (int i = 0; i < n; ++i) {
      const bool insert = sim.entries().empty() || *rc::gen::arbitrary<bool>();
      const IntervalEntry e = insert ? *gen_entry() : *rc::gen::elementOf(sim.entries());
      insert ? sim.insert(e) : static_cast<void>(sim.erase(e));
      ops.push_back({insert, e});
    }
  }
  void checkPreconditions(const IntervalMultiset& m) const override {
    IntervalMultiset sim = m;
    for (const Op& op : ops) {
      if (op.insert) {
        sim.insert(op.e);
      } else {
        RC_PRE(sim.erase(op.e));
      }
    }
  }
  void apply(IntervalMultiset& m) const override {
    for (const Op& op : ops) op.insert ? m.insert(op.e) : static_cast<void>(m.erase(op.e));
  }
  void run(const IntervalMultiset& m, TreeSut& sut) const override {
    {
      IntervalTree<int>::Batch batch(sut.tree);
      for (const Op& op : ops) {
        const absl::Status s = op.insert ? batch.insert(op.e.start, op.e.last, op.e.value)
                                         : batch.erase(op.e.start, op.e.last, op.e.value);
        RC_ASSERT(s.ok());
      }
    }
    check_matches(sut, after(m, *this));
  }
  void show(std::ostream& os) const override {
    os << "batch {";
    for (const Op& op : ops) os << (op.insert ? " insert " : " erase ") << op.e << ";";
    os << " }";
  }
};

RC_GTEST_PROP(IntervalTreeProperty, MatchesLinearMultiset, ()) {
  TreeSut sut;
  rc::state::check(IntervalMultiset(), sut,
                   rc::state::gen::execOneOfWithArgs<Insert, InsertBadRange, EraseExisting,
                                                     EraseAbsent, Query, BatchOps>());
}

}  // namespace
}  // namespace itn
