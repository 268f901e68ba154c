// testing/lin/checker.h
//
// itn::lin::check(): a linearizability checker (Wing & Gong's search with Lowe's
// memoisation) for histories recorded by testing/lin/history.h, generic over a
// sequential model. A history is linearizable if every completed operation can be given a
// point between its call and its return such that running the operations one by one in
// the order of those points, on the model, gives every operation the result it returned.
// A pending operation (called, never returned) may take such a point, with any result, or
// none.
//
// The search (Wing & Gong): the call and return events sit in one doubly linked list in
// event order. Walking from the front, a call is a candidate to linearize next if the
// model accepts it in the current state; taking it unlinks its call and return and
// restarts from the front. Meeting a return means the operation it closes can no longer
// be placed: undo the last choice (a stack of (call node, state before)) and try the next
// candidate. Lowe's memo: the pair (set of linearized operations, model state) fully
// determines what can still follow, so a pair seen once is never explored again. That
// turns n! orders of n concurrent operations into at most 2^n sets times the states.
//
// P-compositionality: if the model is a product of independent parts (one register per
// key, one notifier per partition), a history is linearizable iff each part's
// sub-history is. check_partitioned() splits by a projection and checks each part alone,
// a much smaller search. A projection may send one operation to several parts (e.g. an
// invalidation to every notifier it can reach); each part is then still a necessary
// condition, but their conjunction is sufficient only if those shared operations commute
// with the parts' other operations (say which in the model's header).
//
// A model M provides (see SequentialModel below):
//   using State, Op, Result;  State copyable and ==-comparable
//   State initial() const;
//   std::optional<State> step(const State&, const Op&, const Result* result) const;
//     the state after `op` if `op` may take effect in this state and return *result,
//     nullopt if not; result == nullptr for a pending operation: any result is fine
//   std::size_t hash(const State&) const;
//   std::string show(const Op&) const;                  e.g. "write(3)"
//   std::string show(const Op&, const Result&) const;   e.g. "OK"
//   optionally std::string show_state(const State&) const, printed on failure.
//
// Thread safety: check() and check_partitioned() are reentrant; the model must be safe to
// call from the checking thread (it is never called concurrently by one check).
// Lifetime: nothing is kept after a call returns.
// Memory ordering: none (single-threaded).
#ifndef ITN_TESTING_LIN_CHECKER_H_
#define ITN_TESTING_LIN_CHECKER_H_

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "testing/lin/history.h"
#include "sync/check.h"

namespace itn::lin {

template <class M>
concept SequentialModel = std::copy_constructible<typename M::State> &&
    std::equality_comparable<typename M::State> &&
    requires(const M& m, const typename M::State& s, const typename M::Op& op,
             const typename M::Result& r) {
  { m.initial() } -> std::convertible_to<typename M::State>;
  { m.step(s, op, &r) } -> std::same_as<std::optional<typename M::State>>;
  { m.hash(s) } -> std::convertible_to<std::size_t>;
  { m.show(op) } -> std::convertible_to<std::string>;
  { m.show(op, r) } -> std::convertible_to<std::string>;
};

struct CheckOptions {
  bool memoize = true;                 // Lowe's cache; turn off only to measure what it saves
  std::size_t max_steps = 20'000'000;  // model steps per sub-history before giving up
};

enum class Verdict { kLinearizable, kNotLinearizable, kUnknown /* max_steps reached */ };

const char* to_string(Verdict v);

struct CheckResult {
  Verdict verdict = Verdict::kLinearizable;
  std::size_t histories = 0;   // sub-histories checked
  std::size_t states = 0;      // (linearized set, state) pairs explored, summed
  std::size_t max_states = 0;  // the most explored by one sub-history
  std::size_t steps = 0;       // model.step() calls, summed
  std::string failed_key;      // check_partitioned(): the key of the failing part
  // Empty when linearizable. Otherwise the failing (sub-)history as a per-thread timeline,
  // the longest prefix that could be linearized and the operations that could not follow.
  std::string explanation;

  bool ok() const { return verdict == Verdict::kLinearizable; }
};

std::ostream& operator<<(std::ostream& os, const CheckResult& r);

namespace lin_internal {

struct TimelineRow {
  std::size_t pos;  // event position; kPending prints as "-" after the last event
  int thread;
  std::string text;
};

// One row per event in position order, one column per thread.
std::string render_timeline(std::vector<TimelineRow> rows);

std::size_t hash_words(const std::vector<std::uint64_t>& words);

template <class T>
std::string to_text(const T& value) {
  if constexpr (requires(std::ostream & os) { os << value; }) {
    std::ostringstream os;
    os << value;
    return os.str();
  } else {
    return "(unprintable)";
  }
}

// The search over one history. Nodes: 0 is the head sentinel, 1..events, then the tail.
template <SequentialModel M>
class Search {
 public:
  using State = typename M::State;
  using Ops = std::vector<Operation<typename M::Op, typename M::Result>>;

  Search(const M& model, const Ops& ops, const CheckOptions& options)
      : model_(model), ops_(ops), options_(options), cache_(16, EntryHash{&model}) {
    struct Ev {
      std::size_t pos, op;
      bool call;
    };
    std::vector<Ev> evs;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      evs.push_back({ops[i].call, i, true});
      if (ops[i].pending()) continue;  // no return node: it need never be placed
      ITN_CHECK(ops[i].ret != kPending && ops[i].ret > ops[i].call,
                "lin::check(): a completed operation must return after its call");
      evs.push_back({ops[i].ret, i, false});
      ++completed_;
    }
    std::stable_sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) {
      return a.pos != b.pos ? a.pos < b.pos : a.op < b.op;
    });
    const std::size_t n = evs.size();
    nodes_.resize(n + 2);
    call_node_.assign(ops.size(), 0);
    for (std::size_t k = 0; k < n + 2; ++k) {
      nodes_[k].prev = k == 0 ? 0 : k - 1;
      nodes_[k].next = k == n + 1 ? k : k + 1;
    }
    for (std::size_t k = 0; k < n; ++k) {
      Node& node = nodes_[k + 1];
      node.op = evs[k].op;
      node.call = evs[k].call;
      if (node.call) {
        call_node_[node.op] = k + 1;
      } else {
        nodes_[call_node_[node.op]].match = k + 1;
      }
    }
    tail_ = n + 1;
    bits_.assign((ops.size() + 63) / 64, 0);
  }

  Verdict run() {
    State state = model_.initial();
    std::size_t remaining = completed_;  // completed operations not yet linearized
    std::size_t cur = nodes_[0].next;
    // Invariant: the operations in stack_ (bits_) are linearized in stack order, giving
    // `state`; the list holds exactly the events of the others; cur walks it.
    while (remaining > 0) {
      if (steps_ >= options_.max_steps) return Verdict::kUnknown;
      if (cur != tail_ && nodes_[cur].call) {
        const auto& o = ops_[nodes_[cur].op];
        ++steps_;
        std::optional<State> next = model_.step(state, o.op, o.pending() ? nullptr : &*o.result);
        if (next.has_value()) {
          flip(nodes_[cur].op);
          if (!options_.memoize || cache_.insert(Entry{bits_, *next}).second) {
            ++states_;
            stack_.push_back(Frame{cur, std::move(state)});
            state = std::move(*next);
            lift(cur);
            if (!o.pending()) --remaining;
            if (stack_.size() > best_.size()) {
              best_.clear();
              for (const Frame& f : stack_) best_.push_back(nodes_[f.node].op);
              best_state_ = state;
            }
            cur = nodes_[0].next;
            continue;
          }
          flip(nodes_[cur].op);  // seen before: nothing new down there
        }
        cur = nodes_[cur].next;
        continue;
      }
      // A return: its operation cannot be placed after this prefix. Backtrack.
      if (stack_.empty()) return Verdict::kNotLinearizable;
      Frame f = std::move(stack_.back());
      stack_.pop_back();
      state = std::move(f.state);
      flip(nodes_[f.node].op);
      unlift(f.node);
      if (!ops_[nodes_[f.node].op].pending()) ++remaining;
      cur = nodes_[f.node].next;
    }
    return Verdict::kLinearizable;
  }

  std::size_t states() const { return states_; }
  std::size_t steps() const { return steps_; }
  // The longest linearized prefix met (op indices) and the model state after it.
  const std::vector<std::size_t>& best() const { return best_; }
  const std::optional<State>& best_state() const { return best_state_; }

 private:
  struct Node {
    std::size_t op = 0;
    bool call = false;
    std::size_t prev = 0, next = 0;
    std::size_t match = 0;  // a call's return node; 0 if pending
  };
  struct Frame {
    std::size_t node;
    State state;  // before the call at `node` was linearized
  };
  struct Entry {
    std::vector<std::uint64_t> bits;
    State state;
    bool operator==(const Entry& o) const { return bits == o.bits && state == o.state; }
  };
  struct EntryHash {
    const M* model;
    std::size_t operator()(const Entry& e) const {
      return hash_words(e.bits) ^
             (static_cast<std::size_t>(model->hash(e.state)) * 0x9e3779b97f4a7c15ull);
    }
  };

  void flip(std::size_t op) { bits_[op / 64] ^= std::uint64_t{1} << (op % 64); }
  void unlink(std::size_t k) {
    nodes_[nodes_[k].prev].next = nodes_[k].next;
    nodes_[nodes_[k].next].prev = nodes_[k].prev;
  }
  void relink(std::size_t k) {
    nodes_[nodes_[k].prev].next = k;
    nodes_[nodes_[k].next].prev = k;
  }
  // Dancing links: unlift() restores in the reverse order of lift().
  void lift(std::size_t call) {
    unlink(call);
    if (nodes_[call].match != 0) unlink(nodes_[call].match);
  }
  void unlift(std::size_t call) {
    if (nodes_[call].match != 0) relink(nodes_[call].match);
    relink(call);
  }

  const M& model_;
  const Ops& ops_;
  const CheckOptions& options_;
  std::vector<Node> nodes_;
  std::vector<std::size_t> call_node_;
  std::size_t tail_ = 0;
  std::size_t completed_ = 0;
  std::vector<std::uint64_t> bits_;
  std::vector<Frame> stack_;
  std::unordered_set<Entry, EntryHash> cache_;
  std::size_t states_ = 0, steps_ = 0;
  std::vector<std::size_t> best_;
  std::optional<State> best_state_;
};

template <SequentialModel M>
std::string show_op(const M& model, const Operation<typename M::Op, typename M::Result>& o) {
  std::string s = "#" + std::to_string(o.id) + " " + model.show(o.op);
  return o.pending() ? s + " (pending)" : s + " -> " + model.show(o.op, *o.result);
}

template <SequentialModel M>
std::string explain(const M& model, const typename Search<M>::Ops& ops, const Search<M>& search,
                    Verdict verdict) {
  std::ostringstream os;
  if (verdict == Verdict::kUnknown) {
    os << "gave up after " << search.steps() << " model steps (CheckOptions::max_steps)\n";
  } else {
    os << "no linearization of these " << ops.size() << " operations\n";
  }
  std::vector<TimelineRow> rows;
  for (const auto& o : ops) {
    rows.push_back({o.call, o.thread, "#" + std::to_string(o.id) + " " + model.show(o.op)});
    rows.push_back({o.ret, o.thread,
                    "#" + std::to_string(o.id) +
                        (o.pending() ? " pending" : " -> " + model.show(o.op, *o.result))});
  }
  os << render_timeline(std::move(rows));
  const std::vector<std::size_t>& best = search.best();
  os << "longest linearizable prefix (" << best.size() << " of " << ops.size() << "):";
  std::vector<bool> placed(ops.size(), false);
  for (std::size_t i : best) {
    os << "\n  " << show_op(model, ops[i]);
    placed[i] = true;
  }
  if (best.empty()) os << " none";
  if constexpr (requires(const typename M::State& s) { model.show_state(s); }) {
    os << "\nmodel state after it: "
       << model.show_state(search.best_state() ? *search.best_state() : model.initial());
  }
  // The candidates at that point: unplaced operations called before the first unplaced
  // return (each was rejected by the model or led only to dead ends).
  std::size_t first_ret = kPending;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (!placed[i] && !ops[i].pending()) first_ret = std::min(first_ret, ops[i].ret);
  }
  os << "\nnone of these can take effect next:";
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (!placed[i] && ops[i].call < first_ret) os << "\n  " << show_op(model, ops[i]);
  }
  os << "\n";
  return os.str();
}

}  // namespace lin_internal

// check()
//
// Checks one history (e.g. History::operations(), or one part of a partition) against
// `model`. On failure CheckResult::explanation shows why.
template <SequentialModel M>
CheckResult check(const M& model,
                  const std::vector<Operation<typename M::Op, typename M::Result>>& ops,
                  const CheckOptions& options = {}) {
  lin_internal::Search<M> search(model, ops, options);
  CheckResult r;
  r.verdict = search.run();
  r.histories = 1;
  r.states = r.max_states = search.states();
  r.steps = search.steps();
  if (!r.ok()) r.explanation = lin_internal::explain(model, ops, search, r.verdict);
  return r;
}

// Projection: what a projection function returns for each recorded operation, once per
// part the operation belongs to. `result` must be nullopt exactly when the recorded
// operation is pending.
template <class Key, class Op, class Result>
struct Projection {
  using key_type = Key;
  using op_type = Op;
  using result_type = Result;
  Key key;
  Op op;
  std::optional<Result> result;
};

// partition()
//
// Splits `ops` with `project` (const Operation<Op, Result>& ->
// std::vector<Projection<Key, SubOp, SubResult>>) into one history per key. The parts keep
// each operation's thread, id and event positions. Keys need operator< (and operator<<
// to be printed on failure).
template <class Op, class Result, class Project>
auto partition(const std::vector<Operation<Op, Result>>& ops, Project&& project) {
  using List = std::invoke_result_t<Project&, const Operation<Op, Result>&>;
  using P = typename List::value_type;
  using Part = Operation<typename P::op_type, typename P::result_type>;
  std::map<typename P::key_type, std::vector<Part>> parts;
  for (const Operation<Op, Result>& o : ops) {
    for (P& p : project(o)) {
      ITN_CHECK(p.result.has_value() != o.pending(),
                "lin::partition(): a projection is pending iff its operation is");
      Part s;
      s.thread = o.thread;
      s.op = std::move(p.op);
      s.result = std::move(p.result);
      s.call = o.call;
      s.ret = o.ret;
      s.id = o.id;
      parts[p.key].push_back(std::move(s));
    }
  }
  return parts;
}

// by_key()
//
// The common projection: every operation, unchanged, to the one part key_fn(op) names.
template <class KeyFn>
auto by_key(KeyFn key_fn) {
  return [key_fn = std::move(key_fn)](const auto& o) {
    using O = std::decay_t<decltype(o)>;
    using Key = std::decay_t<std::invoke_result_t<const KeyFn&, const typename O::op_type&>>;
    using P = Projection<Key, typename O::op_type, typename O::result_type>;
    return std::vector<P>{P{key_fn(o.op), o.op, o.result}};
  };
}

// check_partitioned()
//
// partition(), then check() of every part, in key order, stopping at the first part that
// is not linearizable (CheckResult::failed_key names it). Counts are summed.
template <SequentialModel M, class Op, class Result, class Project>
CheckResult check_partitioned(const M& model, const std::vector<Operation<Op, Result>>& ops,
                              Project&& project, const CheckOptions& options = {}) {
  CheckResult total;
  for (const auto& [key, part] : partition(ops, project)) {
    CheckResult r = check(model, part, options);
    total.histories += 1;
    total.states += r.states;
    total.max_states = std::max(total.max_states, r.states);
    total.steps += r.steps;
    if (!r.ok()) {
      total.verdict = r.verdict;
      total.failed_key = lin_internal::to_text(key);
      total.explanation = "part " + total.failed_key + ": " + r.explanation;
      return total;
    }
  }
  return total;
}

}  // namespace itn::lin

#endif  // ITN_TESTING_LIN_CHECKER_H_
