// sync/trace.h
//
// itn::trace: a timeline recorder. Trace points in the library (invalidations and their
// callbacks, read_begin() waits, retries, deferred ops, SRCU grace periods, device faults)
// record spans and instants into the Recorder installed process-wide; the recording is
// written as Trace Event Format JSON, which Perfetto (ui.perfetto.dev) and chrome://tracing
// open, and can be read back in memory by tests.
//
//   itn::trace::Recorder recorder;
//   {
//     itn::trace::ScopedRecording recording(recorder);   // installs it; dies if one is
//     run_the_workload();                                // installed already
//   }                                                    // uninstalled here
//   ITN_CHECK_OK(recorder.write_json("/tmp/run.json"), "trace written");
//
// A trace point:
//
//   trace::Span span("notifier", "invalidate", [&] {     // the lambda runs only while
//     return trace::Args{{"seq", cur_seq}};              // a recorder is installed
//   });
//   trace::instant("notifier", "retry");
//
// Events: spans (a begin "B" and an end "E" on the same thread, nested like scopes),
// async spans ("b"/"e", joined by an id, which may end on another thread: an
// invalidation's token travels) and instants ("i"). Each has a category and a name (string
// literals, as are argument keys: the recorder keeps the pointers), the recording's index
// of the calling thread (1, 2, ... in the order threads first record; named by
// set_thread_name()), a timestamp (steady clock, nanoseconds since start(); written in
// microseconds with three decimals) and a few arguments (numbers, or texts such as hex
// addresses from hex()).
//
// Cost: with no recorder installed a trace point is one atomic load and a branch (the
// argument lambda is not called; a Span's end is a branch on a member). Trace points
// are no scheduling points: the recorder uses bare std::mutex/std::atomic, invisible to
// the scheduling seam (sync/sched_hooks.h), so recording does not change the decisions
// of the deterministic scheduler and a schedule replays the same with or without it.
// (tests/seam_lint.sh allows this file and sync/trace.cc for that reason.)
//
// The cap: a recorder keeps at most max_events events; later begins and instants are
// counted in dropped() instead. The end of a span whose begin was kept is always kept (the
// cap is passed by at most the spans open at that moment), so that every end has its
// begin; an end whose begin was dropped, or recorded by an earlier recording, is not
// recorded. A span still open at stop() has no end in events(); to_json() closes it at
// the recording's last timestamp with the argument "unfinished": 1.
//
// Thread safety: every function may be called from any thread. One recorder is installed
// at a time; start() of a second fails.
// Lifetime: stop() (also run by ~Recorder) returns only once no trace point is still
// recording into the recorder, so a recorder may be destroyed while other threads keep
// running trace points (they then record nothing, or into the next recorder).
// Memory ordering: enabled() is an acquire load of the installed recorder, pairing with the
// seq_cst compare-exchange in start() (and stop()). It only decides whether to take the
// slow path, which loads the pointer again (seq_cst, against stop(): see sync/trace.cc)
// and then works under the recorder's mutex. Recording orders nothing in the traced code:
// a trace point is no synchronisation between the threads it observes.
#ifndef ITN_SYNC_TRACE_H_
#define ITN_SYNC_TRACE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"

namespace itn::trace {

// An argument's value: an unsigned or a signed number, or a text.
using Value = std::variant<std::uint64_t, std::int64_t, std::string>;

struct Arg {
  template <class T>
  requires std::is_integral_v<T> Arg(std::string_view k, T v)
      : key(k),
        value(std::is_signed_v<T> ? Value(static_cast<std::int64_t>(v))
                                  : Value(static_cast<std::uint64_t>(v))) {}
  Arg(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  Arg(std::string_view k, std::string_view v) : key(k), value(std::string(v)) {}
  Arg(std::string_view k, const char* v) : key(k), value(std::string(v)) {}

  std::string_view key;  // static storage (a string literal)
  Value value;
};
using Args = std::vector<Arg>;

// "0x1f00": addresses, pointers and ids as texts (JSON numbers past 2^53 lose digits in
// the viewers).
std::string hex(std::uint64_t value);
std::string hex(const void* pointer);

enum class Phase : char {
  kBegin = 'B',
  kEnd = 'E',
  kInstant = 'i',
  kAsyncBegin = 'b',
  kAsyncEnd = 'e',
};

struct Event {
  Phase phase = Phase::kInstant;
  std::string_view category;
  std::string_view name;
  std::uint32_t tid = 0;    // the recording's index of the thread, from 1
  std::uint64_t ts_ns = 0;  // since the recording's start()
  std::uint64_t id = 0;     // async begin/end: what joins them (unique in the recording)
  Args args;

  // The argument `key` as a number (either signedness, if it fits), or as a text.
  std::optional<std::uint64_t> number(std::string_view key) const;
  std::optional<std::string> text(std::string_view key) const;
};

struct RecorderOptions {
  // Events kept, beyond which begins and instants are dropped (counted).
  std::size_t max_events = std::size_t{1} << 18;
  // The process's name in the JSON (a "process_name" metadata event).
  std::string process_name = "itn";
};

class Recorder;

namespace trace_internal {

// The installed recorder, or null. Written by Recorder::start() and stop() (seq_cst).
inline std::atomic<Recorder*> installed{nullptr};

// std::mutex with the annotations -Wthread-safety needs (libstdc++'s carries none).
class ABSL_LOCKABLE PlainMutex {
 public:
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};
class ABSL_SCOPED_LOCKABLE PlainLock {
 public:
  explicit PlainLock(PlainMutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  ~PlainLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  PlainLock(const PlainLock&) = delete;
  PlainLock& operator=(const PlainLock&) = delete;

 private:
  PlainMutex& mu_;
};

// The slow path of every trace point: records into the installed recorder, if any.
// `handle` is, for an end, what its begin returned. Returns for a begin what its end
// needs (nonzero), 0 if nothing was recorded.
std::uint64_t record(Phase phase, std::string_view category, std::string_view name,
                     std::uint64_t handle, Args args);

}  // namespace trace_internal

// enabled()
//
// True while a recorder is installed. One atomic load: the whole cost of a trace point
// when none is.
inline bool enabled() noexcept {
  // Acquire: pairs with the seq_cst exchange in Recorder::start(). A stale answer either
  // way is harmless: record() looks again under its own protocol (see trace.cc).
  return trace_internal::installed.load(std::memory_order_acquire) != nullptr;
}

// instant()
//
// Records an instant event; `make_args` (returning Args) runs only when recording.
inline void instant(std::string_view category, std::string_view name) {
  if (enabled()) [[unlikely]]
    trace_internal::record(Phase::kInstant, category, name, 0, {});
}
template <class MakeArgs>
void instant(std::string_view category, std::string_view name, MakeArgs&& make_args) {
  if (enabled()) [[unlikely]]
    trace_internal::record(Phase::kInstant, category, name, 0, make_args());
}

// async_begin() / async_end()
//
// A span that may end on another thread: async_begin() returns the handle to pass to
// async_end() (0 when nothing was recorded, and async_end(0, ...) costs one branch).
template <class MakeArgs>
[[nodiscard]] std::uint64_t async_begin(std::string_view category, std::string_view name,
                                        MakeArgs&& make_args) {
  if (!enabled()) [[likely]]
    return 0;
  return trace_internal::record(Phase::kAsyncBegin, category, name, 0, make_args());
}
inline void async_end(std::uint64_t handle, std::string_view category, std::string_view name,
                      Args args = {}) {
  if (handle != 0) [[unlikely]]
    trace_internal::record(Phase::kAsyncEnd, category, name, handle, std::move(args));
}

// Span
//
// A begin event at construction and its end at destruction, on the constructing thread.
// Not movable: spans nest like the scopes that hold them.
class Span {
 public:
  Span(std::string_view category, std::string_view name) {
    if (enabled()) [[unlikely]]
      begin(category, name, {});
  }
  template <class MakeArgs>
  Span(std::string_view category, std::string_view name, MakeArgs&& make_args) {
    if (enabled()) [[unlikely]]
      begin(category, name, make_args());
  }
  ~Span() {
    if (recording_ != 0) [[unlikely]]
      end();
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

  // True if the begin was recorded (the end will be).
  bool active() const { return recording_ != 0; }

  // Span::end_arg()
  //
  // Adds an argument to the end event. Does nothing unless active(); build costly values
  // only under `if (span.active())`.
  template <class T>
  void end_arg(std::string_view key, T&& value) {
    if (recording_ != 0) [[unlikely]]
      end_args_.emplace_back(key, std::forward<T>(value));
  }

 private:
  void begin(std::string_view category, std::string_view name, Args args);
  void end();

  std::uint64_t recording_ = 0;  // the recording that holds the begin; 0: none
  std::string_view category_, name_;
  Args end_args_;
};

// set_thread_name()
//
// Names the calling thread in this and later recordings (a "thread_name" metadata event).
void set_thread_name(std::string_view name);

// Recorder
//
// Holds the events of one recording in memory. See the top of this file.
class Recorder {
 public:
  explicit Recorder(RecorderOptions options = {});
  ~Recorder();  // stop()s first
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Recorder::start()
  //
  // Discards what an earlier recording left, resets the clock and installs the recorder
  // process-wide. Errors: kFailedPrecondition if a recorder (this one or another) is
  // installed.
  [[nodiscard]] absl::Status start() ABSL_LOCKS_EXCLUDED(mu_);

  // Recorder::stop()
  //
  // Uninstalls the recorder, if it is installed, and returns once no trace point is
  // recording into it. The events stay until the next start().
  void stop();

  bool recording() const;

  // Snapshots: the events in recording order (which is timestamp order), their number,
  // how many were dropped at the cap, and the names of the recording's threads (index,
  // name).
  std::vector<Event> events() const ABSL_LOCKS_EXCLUDED(mu_);
  std::size_t event_count() const ABSL_LOCKS_EXCLUDED(mu_);  // events().size(), no copy
  std::uint64_t dropped() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::pair<std::uint32_t, std::string>> thread_names() const ABSL_LOCKS_EXCLUDED(mu_);

  // Recorder::to_json()
  //
  // The recording as a Trace Event Format object:
  //   {"traceEvents":[...],"displayTimeUnit":"ns","otherData":{...}}
  // with metadata events naming the process and threads, and otherData counting events,
  // dropped events and the spans closed because they were open at stop().
  std::string to_json() const ABSL_LOCKS_EXCLUDED(mu_);

  // Recorder::write_json()
  //
  // Writes to_json() to `path` (replacing it). Errors: the errno of the failed open,
  // write or close, as its absl code (e.g. kNotFound for a missing directory,
  // kResourceExhausted for a full disk), with the path in the message.
  [[nodiscard]] absl::Status write_json(const std::string& path) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend std::uint64_t trace_internal::record(Phase, std::string_view, std::string_view,
                                              std::uint64_t, Args);
  friend void set_thread_name(std::string_view name);

  std::uint64_t append(Phase phase, std::string_view category, std::string_view name,
                       std::uint64_t handle, Args args) ABSL_LOCKS_EXCLUDED(mu_);
  void name_thread(std::string_view name) ABSL_LOCKS_EXCLUDED(mu_);
  std::uint32_t thread_index_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RecorderOptions options_;
  mutable trace_internal::PlainMutex mu_;
  std::uint64_t serial_ ABSL_GUARDED_BY(mu_) = 0;    // this recording's; unique in the process
  std::uint64_t start_ns_ ABSL_GUARDED_BY(mu_) = 0;  // steady clock at start()
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  std::uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  std::uint32_t next_tid_ ABSL_GUARDED_BY(mu_) = 1;
  std::uint64_t next_async_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Spans open per thread index (their ends pass the cap).
  std::vector<std::uint32_t> open_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::uint32_t, std::string>> thread_names_ ABSL_GUARDED_BY(mu_);
};

// ScopedRecording
//
// Starts `recorder` for the scope (dies if a recorder is installed already).
class ScopedRecording {
 public:
  explicit ScopedRecording(Recorder& recorder);
  ~ScopedRecording();
  ScopedRecording(const ScopedRecording&) = delete;
  ScopedRecording& operator=(const ScopedRecording&) = delete;

 private:
  Recorder& recorder_;
};

}  // namespace itn::trace

#endif  // ITN_SYNC_TRACE_H_
