// L1: NotifierDomain against the serial model (proptests/models/domain_model.h), as
// RapidCheck command sequences: inserts (the caller keeping its reference or dropping it
// at once), inserts again of removed notifiers, removes, finds (some results held across
// later commands), invalidation starts (blockable
// and refused non-blockable) and their ends in any order, read_begin/read_retry pairs,
// whole-space register/unregister, get/put, release. Commands that would block a single
// thread (a remove, read_begin or unregister that must wait) are excluded by their
// preconditions;
// the real-thread tests cover waiting. After every command the domain's sequence, active
// count, tree size and every notifier's call count, sequence and callbacks must match.
// Defaults: 500 sequences of up to 100 commands; replay with the printed RC_PARAMS.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"
#include "rapidcheck/state.h"

#include "notifier/domain.h"
#include "notifier/test_support.h"
#include "proptests/models/domain_model.h"
#include "rapidcheck.h"

namespace itn {
namespace {

using models::DomainModel;
using models::ModelSub;
using models::ModelWhole;
constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kMax = kRangeEndMax;

class Sub : public IntervalNotifier {
 public:
  explicit Sub(bool refuses) : refuses_(refuses) {}
  bool invalidate(const Range& r, std::uint64_t cur_seq) override {
    if (!r.blockable && refuses_) return false;
    MutexLock l(mu);
    set_seq(cur_seq);
    ++calls;
    return true;
  }
  Mutex mu;
  int calls = 0;

 private:
  bool refuses_;
};

class Whole : public Notifier {
 public:
  void release(NotifierDomain&) override { ++releases; }
  bool invalidate_range_start(const Range&) override {
    ++starts;
    return true;
  }
  void invalidate_range_end(const Range&) override { ++ends; }
  int starts = 0, ends = 0, releases = 0;
};

// find() owner tags.
const int kOwners[3] = {0, 1, 2};

const NotifierOps kOps{
    [](NotifierDomain&, void*) -> absl::StatusOr<Notifier*> { return new Whole; },
    [](Notifier* n) { delete n; }};

struct Sut {
  Ref<NotifierDomain> domain = testing::domain_freeing_each_node();
  // Every notifier by id; the domain holds the only reference to those not kept.
  std::vector<Sub*> subs;
  std::vector<bool> in_domain;  // by id: inserted (by the last successful insert or remove)
  std::vector<Ref<Sub>> kept;
  std::vector<Ref<IntervalNotifier>> held;  // find() results kept across commands
  std::vector<std::unique_ptr<Whole>> wholes;
  std::vector<InvalidationToken> active;  // in the model's order
  Notifier* got = nullptr;
  int got_users = 0;

  // Ends what is active, then takes everything out, so domain and notifiers are freed.
  ~Sut() {
    for (InvalidationToken& token : active) domain->invalidate_range_end(std::move(token));
    held.clear();
    for (std::size_t id = 0; id < subs.size(); ++id) {
      if (in_domain[id]) (void)domain->remove(*subs[id]);
    }
    for (auto& w : wholes) (void)domain->unregister_notifier(*w);
    while (got_users-- > 0) (void)domain->put_notifier(*got);
  }
};

using Command = rc::state::Command<DomainModel, Sut>;

Range to_range(std::uint64_t start, std::uint64_t last, bool blockable) {
  return Range{.start = start,
               .end = last == kMax ? kRangeEndMax : last + 1,
               .event = Event::kClear,
               .blockable = blockable};
}

rc::Gen<std::pair<std::uint64_t, std::uint64_t>> gen_span() {
  return rc::gen::apply(
      [](std::uint64_t page, std::uint64_t pages) {
        return std::make_pair(page * kPage, (page + pages) * kPage - 1);
      },
      rc::gen::inRange<std::uint64_t>(0, 16), rc::gen::inRange<std::uint64_t>(1, 4));
}

bool inserted_state(const ModelSub& s) { return s.state != ModelSub::State::kRemoved; }

// Every check that ends a command: the domain and every notifier agree with the model.
void check_state(const DomainModel& m, Sut& sut) {
  RC_ASSERT(sut.domain->seq_for_testing() == m.seq);
  RC_ASSERT(sut.domain->active_for_testing() == m.active.size());
  RC_ASSERT(sut.domain->inserted_count() == m.in_tree());
  for (std::size_t id = 0; id < m.subs.size(); ++id) {
    if (!inserted_state(m.subs[id]) && !m.subs[id].kept) continue;  // may be freed
    RC_ASSERT(sut.subs[id]->calls == m.subs[id].calls);
    if (inserted_state(m.subs[id])) {
      MutexLock l(sut.subs[id]->mu);
      RC_ASSERT(!sut.subs[id]->read_retry(m.subs[id].seq));  // its sequence is the model's (I4)
    }
  }
  for (std::size_t id = 0; id < m.wholes.size(); ++id) {
    RC_ASSERT(sut.wholes[id]->starts == m.wholes[id].starts);
    RC_ASSERT(sut.wholes[id]->ends == m.wholes[id].ends);
    RC_ASSERT(sut.wholes[id]->releases == m.wholes[id].releases);
  }
}

DomainModel after(const DomainModel& m, const Command& c) {
  DomainModel next = m;
  c.apply(next);
  return next;
}

bool inserted(const ModelSub& s) { return inserted_state(s); }

struct Insert : Command {
  std::pair<std::uint64_t, std::uint64_t> span = *gen_span();
  int owner = *rc::gen::inRange(0, 3);
  bool refuses = *rc::gen::arbitrary<bool>();
  bool keep = *rc::gen::arbitrary<bool>();  // else the caller drops its reference at once
  void apply(DomainModel& m) const override {
    if (m.released) return;
    ModelSub s{span.first, span.second, owner, refuses, ModelSub::State::kLive, 0};
    s.kept = keep;
    m.insert(s);
  }
  void run(const DomainModel& m, Sut& sut) const override {
    auto sub = make_ref<Sub>(refuses);
    Sub* raw = sub.get();
    if (keep) sut.kept.push_back(sub);
    const absl::Status s = sut.domain->insert(
        std::move(sub), Interval::closed(span.first, span.second), &kOwners[owner]);
    RC_ASSERT(s.code() ==
              (m.released ? absl::StatusCode::kFailedPrecondition : absl::StatusCode::kOk));
    if (s.ok()) {
      sut.subs.push_back(raw);
      sut.in_domain.push_back(true);
    }
    check_state(after(m, *this), sut);
  }
  void show(std::ostream& os) const override {
    os << "insert [" << span.first << ", " << span.second << "] owner " << owner
       << (refuses ? " refuses" : "") << (keep ? "" : " (reference dropped)");
  }
};

// A removed notifier the caller kept, inserted again (I27).
struct Reinsert : Command {
  int id;
  std::pair<std::uint64_t, std::uint64_t> span = *gen_span();
  int owner = *rc::gen::inRange(0, 3);
  explicit Reinsert(const DomainModel& m) {
    RC_PRE(!m.subs.empty());
    id = *rc::gen::inRange<int>(0, static_cast<int>(m.subs.size()));
  }
  void checkPreconditions(const DomainModel& m) const override {
    RC_PRE((id < static_cast<int>(m.subs.size()) && m.subs[id].kept &&
            m.subs[id].state == ModelSub::State::kRemoved));  // (( )): short-circuit
  }
  void apply(DomainModel& m) const override {
    if (!m.released) m.reinsert(id, span.first, span.second, owner);
  }
  void run(const DomainModel& m, Sut& sut) const override {
    const absl::Status s =
        sut.domain->insert(Ref<IntervalNotifier>::from_this(sut.subs[id]),
                           Interval::closed(span.first, span.second), &kOwners[owner]);
    RC_ASSERT(s.code() ==
              (m.released ? absl::StatusCode::kFailedPrecondition : absl::StatusCode::kOk));
    if (s.ok()) sut.in_domain[id] = true;
    check_state(after(m, *this), sut);
  }
  void show(std::ostream& os) const override {
    os << "insert #" << id << " again [" << span.first << ", " << span.second << "] owner "
       << owner;
  }
};

struct Remove : Command {
  int id;
  explicit Remove(const DomainModel& m) {
    RC_PRE(!m.subs.empty());
    id = *rc::gen::inRange<int>(0, static_cast<int>(m.subs.size()));
  }
  void checkPreconditions(const DomainModel& m) const override {
    RC_PRE(id < static_cast<int>(m.subs.size()));
    // A live notifier removed while the sequence is odd waits for the end: not serially.
    RC_PRE(!(m.odd() && m.subs[id].state == ModelSub::State::kLive));
    RC_PRE((inserted(m.subs[id]) || m.subs[id].kept));  // else it may be freed
  }
  void apply(DomainModel& m) const override {
    ModelSub& s = m.subs[id];
    if (s.state == ModelSub::State::kDeferred) std::erase(m.deferred, id);
    s.state = ModelSub::State::kRemoved;
  }
  void run(const DomainModel& m, Sut& sut) const override {
    const absl::Status s = sut.domain->remove(*sut.subs[id]);
    RC_ASSERT(s.code() ==
              (inserted(m.subs[id]) ? absl::StatusCode::kOk : absl::StatusCode::kInvalidArgument));
    if (s.ok()) sut.in_domain[id] = false;
    check_state(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "remove #" << id; }
};

struct Find : Command {
  std::pair<std::uint64_t, std::uint64_t> span = *gen_span();
  int owner = *rc::gen::inRange(0, 3);
  bool hold = *rc::gen::arbitrary<bool>();
  void apply(DomainModel&) const override {}
  void run(const DomainModel& m, Sut& sut) const override {
    // Expected: lowest (start, last, address) among inserted notifiers of that owner.
    IntervalNotifier* expected = nullptr;
    auto key = [&](int id) {
      return std::make_tuple(m.subs[id].start, m.subs[id].last,
                             static_cast<IntervalNotifier*>(sut.subs[id]));
    };
    for (int id = 0; id < static_cast<int>(m.subs.size()); ++id) {
      const ModelSub& s = m.subs[id];
      if (!inserted(s) || s.owner != owner || !DomainModel::overlaps(s, span.first, span.second)) {
        continue;
      }
      if (expected == nullptr || key(id) < std::make_tuple(expected->interval().start(),
                                                           expected->interval().last(), expected)) {
        expected = sut.subs[id];
      }
    }
    Ref<IntervalNotifier> got =
        sut.domain->find(&kOwners[owner], Interval::closed(span.first, span.second));
    RC_ASSERT(got.get() == expected);
    // Held on (as another thread would): it must stay valid after its remove() (I10).
    if (hold && got) sut.held.push_back(std::move(got));
    for (const Ref<IntervalNotifier>& h : sut.held) {
      RC_ASSERT(static_cast<Sub*>(h.get())->calls >= 0);  // readable; ASan checks the rest
    }
  }
  void show(std::ostream& os) const override {
    os << "find owner " << owner << " [" << span.first << ", " << span.second << "]"
       << (hold ? " and hold" : "");
  }
};

struct Start : Command {
  std::pair<std::uint64_t, std::uint64_t> span = *gen_span();
  void apply(DomainModel& m) const override {
    for (int id : m.begin_invalidation(span.first, span.second)) m.call(id);
    m.start_wholes();
  }
  void run(const DomainModel& m, Sut& sut) const override {
    absl::StatusOr<InvalidationToken> token =
        sut.domain->invalidate_range_start(to_range(span.first, span.second, true));
    RC_ASSERT(token.ok());
    sut.active.push_back(*std::move(token));
    check_state(after(m, *this), sut);
  }
  void show(std::ostream& os) const override {
    os << "start [" << span.first << ", " << span.second << "]";
  }
};

// A non-blockable start over notifiers of which some refuse. Keys of the notifiers it
// reaches are distinct, so the walk order (and so who is called before the refusal) is
// the key order the model can see.
struct StartNonBlocking : Command {
  std::pair<std::uint64_t, std::uint64_t> span = *gen_span();
  std::vector<int> order(const DomainModel& m) const {
    std::vector<int> hit;
    for (int id = 0; id < static_cast<int>(m.subs.size()); ++id) {
      if (m.walked(m.subs[id]) && DomainModel::overlaps(m.subs[id], span.first, span.second)) {
        hit.push_back(id);
      }
    }
    std::sort(hit.begin(), hit.end(), [&](int a, int b) {
      return std::tie(m.subs[a].start, m.subs[a].last) < std::tie(m.subs[b].start, m.subs[b].last);
    });
    return hit;
  }
  void checkPreconditions(const DomainModel& m) const override {
    const std::vector<int> hit = order(m);
    for (std::size_t i = 1; i < hit.size(); ++i) {
      RC_PRE(std::tie(m.subs[hit[i - 1]].start, m.subs[hit[i - 1]].last) !=
             std::tie(m.subs[hit[i]].start, m.subs[hit[i]].last));
    }
  }
  bool refused(const DomainModel& m) const {
    for (int id : order(m)) {
      if (m.subs[id].refuses) return true;
    }
    return false;
  }
  void apply(DomainModel& m) const override {
    const std::vector<int> hit = order(m);
    const bool refuse = refused(m);
    m.begin_invalidation(span.first, span.second);
    for (int id : hit) {
      if (m.subs[id].refuses) break;
      m.call(id);
    }
    if (refuse) {
      m.finish_invalidation(m.active.size() - 1);  // undone by the start itself (R5)
      return;
    }
    m.start_wholes();
  }
  void run(const DomainModel& m, Sut& sut) const override {
    absl::StatusOr<InvalidationToken> token =
        sut.domain->invalidate_range_start(to_range(span.first, span.second, false));
    RC_ASSERT(token.status().code() ==
              (refused(m) ? absl::StatusCode::kUnavailable : absl::StatusCode::kOk));
    if (token.ok()) sut.active.push_back(*std::move(token));
    check_state(after(m, *this), sut);
  }
  void show(std::ostream& os) const override {
    os << "start non-blocking [" << span.first << ", " << span.second << "]";
  }
};

struct End : Command {
  std::size_t index;
  explicit End(const DomainModel& m) {
    RC_PRE(!m.active.empty());
    index = *rc::gen::inRange<std::size_t>(0, m.active.size());
  }
  void checkPreconditions(const DomainModel& m) const override { RC_PRE(index < m.active.size()); }
  void apply(DomainModel& m) const override { m.end_invalidation(index); }
  void run(const DomainModel& m, Sut& sut) const override {
    RC_ASSERT(sut.active[index].range().start == m.active[index].start);
    sut.domain->invalidate_range_end(std::move(sut.active[index]));
    sut.active.erase(sut.active.begin() + static_cast<long>(index));
    check_state(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "end active #" << index; }
};

struct ReadBegin : Command {
  int id;
  explicit ReadBegin(const DomainModel& m) {
    RC_PRE(!m.subs.empty());
    id = *rc::gen::inRange<int>(0, static_cast<int>(m.subs.size()));
  }
  void checkPreconditions(const DomainModel& m) const override {
    RC_PRE((id < static_cast<int>(m.subs.size()) && inserted(m.subs[id])));  // (( )): short-circuit
    RC_PRE(m.subs[id].seq != m.seq);  // otherwise it waits (I7): not serially
  }
  void apply(DomainModel& m) const override {
    m.subs[id].read_seq = m.subs[id].seq;
    m.subs[id].has_read = true;
  }
  void run(const DomainModel& m, Sut& sut) const override {
    RC_ASSERT(sut.subs[id]->read_begin() == m.subs[id].seq);
  }
  void show(std::ostream& os) const override { os << "read_begin #" << id; }
};

struct ReadRetry : Command {
  int id;
  explicit ReadRetry(const DomainModel& m) {
    RC_PRE(!m.subs.empty());
    id = *rc::gen::inRange<int>(0, static_cast<int>(m.subs.size()));
  }
  void checkPreconditions(const DomainModel& m) const override {
    RC_PRE((id < static_cast<int>(m.subs.size()) && m.subs[id].has_read &&
            (inserted(m.subs[id]) || m.subs[id].kept)));  // (( )): short-circuit
  }
  void apply(DomainModel&) const override {}
  void run(const DomainModel& m, Sut& sut) const override {
    const ModelSub& s = m.subs[id];
    const bool expected = s.seq != s.read_seq;  // I6: an invalidation reached it since
    RC_ASSERT(sut.subs[id]->check_retry(s.read_seq) == expected);
    MutexLock l(sut.subs[id]->mu);
    RC_ASSERT(sut.subs[id]->read_retry(s.read_seq) == expected);
  }
  void show(std::ostream& os) const override { os << "read_retry #" << id; }
};

struct Register : Command {
  void apply(DomainModel& m) const override {
    if (m.released) return;
    m.wholes.push_back(ModelWhole{});
  }
  void run(const DomainModel& m, Sut& sut) const override {
    auto w = std::make_unique<Whole>();
    const absl::Status s = sut.domain->register_notifier(*w);
    RC_ASSERT(s.code() ==
              (m.released ? absl::StatusCode::kFailedPrecondition : absl::StatusCode::kOk));
    if (s.ok()) sut.wholes.push_back(std::move(w));
    check_state(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "register"; }
};

struct Unregister : Command {
  int id;
  explicit Unregister(const DomainModel& m) {
    RC_PRE(!m.wholes.empty());
    id = *rc::gen::inRange<int>(0, static_cast<int>(m.wholes.size()));
  }
  void checkPreconditions(const DomainModel& m) const override {
    RC_PRE(id < static_cast<int>(m.wholes.size()));
    // It would wait for the active invalidations to end (I15, I25): the real-thread
    // tests cover that.
    RC_PRE(m.active.empty());
  }
  void apply(DomainModel& m) const override {
    ModelWhole& w = m.wholes[id];
    if (!w.registered) return;
    w.registered = false;
    w.releases = 1;  // delivered now unless the teardown did (I14)
  }
  void run(const DomainModel& m, Sut& sut) const override {
    const absl::Status s = sut.domain->unregister_notifier(*sut.wholes[id]);
    RC_ASSERT(s.code() == (m.wholes[id].registered ? absl::StatusCode::kOk
                                                   : absl::StatusCode::kInvalidArgument));
    check_state(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "unregister #" << id; }
};

struct GetPut : Command {
  bool get = *rc::gen::arbitrary<bool>();
  void checkPreconditions(const DomainModel& m) const override { RC_PRE(get || m.got_users > 0); }
  void apply(DomainModel& m) const override {
    if (get && !m.released) ++m.got_users;
    if (!get) --m.got_users;
  }
  void run(const DomainModel& m, Sut& sut) const override {
    if (get) {
      absl::StatusOr<Notifier*> n = sut.domain->get_notifier(&kOps, nullptr);
      RC_ASSERT(n.ok() == !m.released);
      if (n.ok()) {
        RC_ASSERT(sut.got_users == 0 || *n == sut.got);  // one per (domain, ops) (I12)
        sut.got = *n;
        ++sut.got_users;
      }
    } else {
      RC_ASSERT(sut.domain->put_notifier(*sut.got).ok());
      --sut.got_users;
    }
    check_state(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << (get ? "get" : "put"); }
};

struct Release : Command {
  void apply(DomainModel& m) const override {
    if (m.released) return;
    m.released = true;
    for (int id : m.begin_invalidation(0, kMax, /*may_be_fast=*/false)) m.call(id);
    m.finish_invalidation(m.active.size() - 1);
    for (ModelWhole& w : m.wholes) {
      if (w.registered) w.releases = 1;
    }
  }
  void run(const DomainModel& m, Sut& sut) const override {
    sut.domain->release();
    RC_ASSERT(sut.domain->released());
    check_state(after(m, *this), sut);
  }
  void show(std::ostream& os) const override { os << "release"; }
};

RC_GTEST_PROP(NotifierDomainProperty, MatchesSerialModel, ()) {
  Sut sut;
  rc::state::check(
      DomainModel(), sut,
      rc::state::gen::execOneOfWithArgs<Insert, Insert, Reinsert, Remove, Find, Start, Start,
                                        StartNonBlocking, End, End, ReadBegin, ReadRetry, Register,
                                        Unregister, GetPut, Release>());
}

}  // namespace
}  // namespace itn
