#include "sync/srcu.h"

#include <optional>
#include <utility>

#include "sync/backoff.h"
#include "sync/trace.h"

namespace itn {
namespace {

constexpr std::string_view kTrace = "srcu";

}  // namespace

namespace srcu_internal {

unsigned assign_shard() {
  static Atomic<unsigned> next{0};
  // Relaxed: only spreads threads over shards; any value is correct.
  return next.fetch_add(1, std::memory_order_relaxed) % kShards;
}

}  // namespace srcu_internal

SrcuDomain::~SrcuDomain() {
  ITN_CHECK(!on_worker_thread(),
            "SrcuDomain destroyed by one of its own callbacks (its destructor would join the "
            "thread it runs on)");
  std::unique_ptr<Thread> worker;
  {
    MutexLock l(cb_mu_);
    stopping_ = true;
    work_cv_.notify_all();
    worker = std::move(worker_);
  }
  // The worker drains pending_ before it sees stopping_ with nothing left to do.
  if (worker) worker->join();
  for (const Shard& shard : shards_) {
    for (const auto& count : shard.count) {
      ITN_CHECK(count.load(std::memory_order_relaxed) == 0,
                "SrcuDomain destroyed while a read section is active");
    }
  }
}

bool SrcuDomain::in_read_section() const {
  for (const ReadGuard* g = srcu_internal::tl_state.innermost; g != nullptr; g = g->outer_) {
    if (g->domain_ == this) return true;
  }
  return false;
}

bool SrcuDomain::on_worker_thread() const {
  return srcu_internal::tl_state.running_callbacks_of == this;
}

void SrcuDomain::synchronize() {
  ITN_CHECK(!in_read_section(),
            "I23: SrcuDomain::synchronize() called inside a read section of the same domain "
            "(it would wait for the caller itself)");
  trace::Span span(kTrace, "synchronize", [&] { return trace::Args{{"srcu", trace::hex(this)}}; });
  MutexLock l(gp_mu_);
  // Relaxed: the epoch is written only under gp_mu_, which we hold.
  const std::uint64_t epoch = epoch_.load(std::memory_order_relaxed);
  const int current = static_cast<int>(epoch & 1);
  // Readers that read the epoch before the previous flip may still be entering the idle
  // index; drain them first so that the flip below never strands a reader.
  wait_for_readers(current ^ 1);
  // Relaxed: readers use the epoch only to choose an index (see srcu.h).
  epoch_.store(epoch + 1, std::memory_order_relaxed);
  wait_for_readers(current);
  grace_periods_.fetch_add(1, std::memory_order_relaxed);  // statistic only
}

void SrcuDomain::wait_for_readers(int index) {
  Backoff backoff;
  std::optional<trace::Span> waiting;  // from the first poll that finds a reader
  for (;;) {
    bool drained = true;
    for (Shard& shard : shards_) {
      // acq_rel RMW, not a load: the acquire half pairs with the release fetch_sub in
      // ~ReadGuard (sections that ended are ordered before us); the release half pairs
      // with the acquire fetch_add in ReadGuard() (sections that start after this point
      // in the counter's order see the updater's earlier stores). See srcu.h.
      if (shard.count[index].fetch_add(0, std::memory_order_acq_rel) != 0) {
        drained = false;
        break;
      }
    }
    if (drained) return;
    if (!waiting) {
      waiting.emplace(kTrace, "wait for readers", [&] {
        return trace::Args{{"srcu", trace::hex(this)}, {"index", index}};
      });
    }
    reader_waits_.fetch_add(1, std::memory_order_relaxed);  // statistic only
    backoff.pause(this);
  }
}

void SrcuDomain::call(absl::AnyInvocable<void() &&> fn) {
  MutexLock l(cb_mu_);
  ITN_CHECK(!stopping_ || on_worker_thread(),
            "SrcuDomain::call() on a domain that is being destroyed");
  pending_.push_back(std::move(fn));
  ++queued_;
  // While stopping, the caller is the worker itself (checked above); it drains pending_.
  if (!worker_ && !stopping_) {
    worker_ = std::make_unique<Thread>([this] { worker_loop(); });
  }
  // A busy worker rechecks pending_ before it waits again; waking it would cost a syscall.
  if (worker_waiting_) work_cv_.notify_one();
}

void SrcuDomain::barrier() {
  ITN_CHECK(!in_read_section(),
            "I23: SrcuDomain::barrier() called inside a read section of the same domain "
            "(it would wait for the caller itself)");
  ITN_CHECK(!on_worker_thread(),
            "SrcuDomain::barrier() called from a callback of the same domain (it would wait "
            "for itself)");
  trace::Span span(kTrace, "barrier", [&] { return trace::Args{{"srcu", trace::hex(this)}}; });
  MutexLock l(cb_mu_);
  const std::uint64_t target = queued_;
  while (completed_ < target) done_cv_.wait(cb_mu_);
}

void SrcuDomain::worker_loop() {
  srcu_internal::tl_state.running_callbacks_of = this;
  trace::set_thread_name("srcu worker");
  cb_mu_.lock();
  for (;;) {
    while (pending_.empty() && !stopping_) {
      worker_waiting_ = true;
      work_cv_.wait(cb_mu_);
      worker_waiting_ = false;
    }
    if (pending_.empty()) break;  // stopping, and everything queued has run
    std::vector<absl::AnyInvocable<void() &&>> batch;
    batch.swap(pending_);
    const std::uint64_t upto = queued_;
    cb_mu_.unlock();

    // Every callback in the batch was queued before this grace period began.
    synchronize();
    {
      trace::Span span(kTrace, "callbacks", [&] {
        return trace::Args{{"srcu", trace::hex(this)}, {"count", batch.size()}};
      });
      for (auto& fn : batch) std::move(fn)();
    }

    cb_mu_.lock();
    completed_ = upto;
    done_cv_.notify_all();
  }
  cb_mu_.unlock();
  srcu_internal::tl_state.running_callbacks_of = nullptr;
}

SrcuStats SrcuDomain::stats() const {
  SrcuStats s;
  // Relaxed: statistics carry no ordering.
  s.grace_periods = grace_periods_.load(std::memory_order_relaxed);
  s.reader_waits = reader_waits_.load(std::memory_order_relaxed);
  MutexLock l(cb_mu_);
  s.callbacks_queued = queued_;
  s.callbacks_run = completed_;
  return s;
}

}  // namespace itn
