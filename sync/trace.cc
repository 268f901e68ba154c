#include "sync/trace.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <thread>

#include "sync/check.h"

// How stop() knows that no trace point still uses the recorder: a trace point's slow path
// counts itself in `in_flight` before it loads `installed` and uncounts itself once done
// with the recorder it found; stop() clears `installed`, then waits for the count to be
// zero. Both sides are seq_cst (a store then a load each, Dekker-style): either the trace
// point's load sees null, or stop()'s load sees the count. Nothing in between is a
// scheduling point or waits for anything but the recorder's own mutex, so the wait ends.

namespace itn::trace {

using trace_internal::PlainLock;

namespace {

std::atomic<std::uint64_t> in_flight{0};
// Recording serials: unique in the process, so that a span begun in one recording never
// ends in another. Below 2^32: async handles carry one in their upper half.
std::atomic<std::uint64_t> next_serial{1};

// The calling thread's index in the recording `serial`.
struct ThreadSlot {
  std::uint64_t serial = 0;
  std::uint32_t tid = 0;
};
thread_local ThreadSlot tl_slot;
// Trivially destructible, so that trace points in other thread_local destructors still
// find it intact.
constexpr std::size_t kMaxThreadName = 63;
thread_local char tl_name[kMaxThreadName + 1] = {};
thread_local std::size_t tl_name_size = 0;

std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// Counts a trace point in `in_flight` for its scope.
class InFlight {
 public:
  InFlight() {
    // Seq_cst: before the load in recorder(); pairs with stop()'s exchange and load.
    in_flight.fetch_add(1, std::memory_order_seq_cst);
  }
  ~InFlight() {
    // Release: this trace point's use of the recorder happens-before the acquire load in
    // stop() that sees the count drop (every later change of the count is an RMW, which
    // continues the release sequence).
    in_flight.fetch_sub(1, std::memory_order_release);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

  Recorder* recorder() const {
    // Seq_cst: pairs with the exchanges in start() and stop() (see the top of this file).
    return trace_internal::installed.load(std::memory_order_seq_cst);
  }
};

// --- JSON -------------------------------------------------------------------------------

// The length of the well-formed UTF-8 sequence at s[i] (a byte >= 0x80), or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) lo = 0xA0;  // no overlong forms
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

// `s` as a JSON string: quotes, backslashes and control characters escaped, bytes that
// are not UTF-8 replaced by U+FFFD.
void append_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_length(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

void append_value(std::string& out, const Value& v) {
  if (const auto* u = std::get_if<std::uint64_t>(&v)) {
    out += std::to_string(*u);
  } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
    out += std::to_string(*i);
  } else {
    append_string(out, std::get<std::string>(v));
  }
}

// Microseconds with three decimals, e.g. 12.345.
void append_ts(std::string& out, std::uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIu64 ".%03" PRIu64, ns / 1000, ns % 1000);
  out += buf;
}

void append_event(std::string& out, const Event& e, std::uint64_t ts_ns, const Args& args) {
  out += "{\"ph\":\"";
  out += static_cast<char>(e.phase);
  out += "\",\"pid\":1,\"tid\":";
  out += std::to_string(e.tid);
  out += ",\"ts\":";
  append_ts(out, ts_ns);
  out += ",\"cat\":";
  append_string(out, e.category);
  out += ",\"name\":";
  append_string(out, e.name);
  if (e.phase == Phase::kInstant) out += ",\"s\":\"t\"";  // thread scope
  if (e.phase == Phase::kAsyncBegin || e.phase == Phase::kAsyncEnd) {
    out += ",\"id\":";
    append_string(out, hex(e.id));
  }
  if (!args.empty()) {
    out += ",\"args\":{";
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (i > 0) out += ',';
      append_string(out, args[i].key);
      out += ':';
      append_value(out, args[i].value);
    }
    out += '}';
  }
  out += '}';
}

void append_metadata(std::string& out, std::string_view what, std::uint32_t tid,
                     std::string_view name) {
  out += "{\"ph\":\"M\",\"pid\":1,\"tid\":";
  out += std::to_string(tid);
  out += ",\"ts\":0,\"name\":";
  append_string(out, what);
  out += ",\"args\":{\"name\":";
  append_string(out, name);
  out += "}}";
}

}  // namespace

// --- Values and events --------------------------------------------------------------------

std::string hex(std::uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, value);
  return buf;
}

std::string hex(const void* pointer) { return hex(reinterpret_cast<std::uintptr_t>(pointer)); }

std::optional<std::uint64_t> Event::number(std::string_view key) const {
  for (const Arg& a : args) {
    if (a.key != key) continue;
    if (const auto* u = std::get_if<std::uint64_t>(&a.value)) return *u;
    if (const auto* i = std::get_if<std::int64_t>(&a.value); i != nullptr && *i >= 0) {
      return static_cast<std::uint64_t>(*i);
    }
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::string> Event::text(std::string_view key) const {
  for (const Arg& a : args) {
    if (a.key != key) continue;
    if (const auto* s = std::get_if<std::string>(&a.value)) return *s;
    return std::nullopt;
  }
  return std::nullopt;
}

// --- Trace points -----------------------------------------------------------------------

std::uint64_t trace_internal::record(Phase phase, std::string_view category, std::string_view name,
                                     std::uint64_t handle, Args args) {
  InFlight guard;
  Recorder* const recorder = guard.recorder();
  if (recorder == nullptr) return 0;
  return recorder->append(phase, category, name, handle, std::move(args));
}

void Span::begin(std::string_view category, std::string_view name, Args args) {
  recording_ = trace_internal::record(Phase::kBegin, category, name, 0, std::move(args));
  if (recording_ == 0) return;
  category_ = category;
  name_ = name;
}

void Span::end() {
  trace_internal::record(Phase::kEnd, category_, name_, recording_, std::move(end_args_));
  recording_ = 0;
}

void set_thread_name(std::string_view name) {
  tl_name_size = std::min(name.size(), kMaxThreadName);
  std::copy_n(name.data(), tl_name_size, tl_name);
  tl_name[tl_name_size] = '\0';
  InFlight guard;
  if (Recorder* recorder = guard.recorder()) recorder->name_thread(name);
}

// --- Recorder -----------------------------------------------------------------------------

Recorder::Recorder(RecorderOptions options) : options_(std::move(options)) {}

Recorder::~Recorder() { stop(); }

absl::Status Recorder::start() {
  Recorder* expected = nullptr;
  // Seq_cst: pairs with the load in InFlight::recorder(), and (acquire) with enabled().
  if (!trace_internal::installed.compare_exchange_strong(expected, this,
                                                         std::memory_order_seq_cst)) {
    return absl::FailedPreconditionError(
        expected == this ? "trace::Recorder::start(): this recorder is recording already"
                         : "trace::Recorder::start(): another recorder is installed");
  }
  PlainLock l(mu_);
  // A trace point that found the recorder before this reset recorded under the old
  // serial (or none): its begin is discarded below and its end will not match.
  // Relaxed: only unique values are needed.
  serial_ = next_serial.fetch_add(1, std::memory_order_relaxed);
  ITN_CHECK(serial_ < (std::uint64_t{1} << 32), "trace: more than 2^32 recordings");
  start_ns_ = steady_ns();
  events_.clear();
  dropped_ = 0;
  next_tid_ = 1;
  next_async_id_ = 1;
  open_.assign(1, 0);
  thread_names_.clear();
  return absl::OkStatus();
}

void Recorder::stop() {
  Recorder* expected = this;
  // Seq_cst: see the top of this file. If it fails, this recorder is not installed (any
  // more): another stop() may have uninstalled it and still be waiting for trace points
  // that use it, so this one waits as well before it returns.
  (void)trace_internal::installed.compare_exchange_strong(expected, nullptr,
                                                          std::memory_order_seq_cst);
  // Seq_cst (acquire at least): pairs with InFlight's increment and its release decrement.
  while (in_flight.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

bool Recorder::recording() const {
  // Acquire: as enabled().
  return trace_internal::installed.load(std::memory_order_acquire) == this;
}

std::uint32_t Recorder::thread_index_locked() {
  if (tl_slot.serial != serial_) {
    tl_slot = {serial_, next_tid_++};
    open_.resize(next_tid_, 0);
    if (tl_name_size > 0) {
      thread_names_.emplace_back(tl_slot.tid, std::string(tl_name, tl_name_size));
    }
  }
  return tl_slot.tid;
}

std::uint64_t Recorder::append(Phase phase, std::string_view category, std::string_view name,
                               std::uint64_t handle, Args args) {
  PlainLock l(mu_);
  if (serial_ == 0) return 0;  // start() has not reset the recorder yet
  const std::uint32_t tid = thread_index_locked();
  std::uint64_t id = 0;
  switch (phase) {
    case Phase::kEnd:
      // Begun in an earlier recording (or never): not this recording's end.
      if (handle != serial_ || open_[tid] == 0) return 0;
      --open_[tid];
      break;
    case Phase::kAsyncEnd:
      if (handle >> 32 != serial_) return 0;
      id = handle & 0xFFFFFFFF;
      break;
    default:
      if (events_.size() >= options_.max_events) {
        ++dropped_;
        return 0;
      }
      if (phase == Phase::kBegin) ++open_[tid];
      if (phase == Phase::kAsyncBegin) id = next_async_id_++;
  }
  Event& e = events_.emplace_back();
  e.phase = phase;
  e.category = category;
  e.name = name;
  e.tid = tid;
  e.ts_ns = steady_ns() - start_ns_;  // under mu_: events_ is in timestamp order
  e.id = id;
  e.args = std::move(args);
  if (phase == Phase::kAsyncBegin) return serial_ << 32 | id;
  return serial_;
}

void Recorder::name_thread(std::string_view name) {
  PlainLock l(mu_);
  if (serial_ == 0) return;
  const std::uint32_t tid = thread_index_locked();  // may add the name already
  for (auto& [index, known] : thread_names_) {
    if (index == tid) {
      known = std::string(name.substr(0, kMaxThreadName));
      return;
    }
  }
  thread_names_.emplace_back(tid, std::string(name.substr(0, kMaxThreadName)));
}

std::vector<Event> Recorder::events() const {
  PlainLock l(mu_);
  return events_;
}

std::size_t Recorder::event_count() const {
  PlainLock l(mu_);
  return events_.size();
}

std::uint64_t Recorder::dropped() const {
  PlainLock l(mu_);
  return dropped_;
}

std::vector<std::pair<std::uint32_t, std::string>> Recorder::thread_names() const {
  PlainLock l(mu_);
  return thread_names_;
}

std::string Recorder::to_json() const {
  PlainLock l(mu_);
  std::string out;
  out.reserve(128 + events_.size() * 160);
  out += "{\"traceEvents\":[\n";
  append_metadata(out, "process_name", 0, options_.process_name);
  for (const auto& [tid, name] : thread_names_) {
    out += ",\n";
    append_metadata(out, "thread_name", tid, name);
  }
  // The spans open at the end, closed below: per thread, the stack of open begins; the
  // open async begins by id.
  std::map<std::uint32_t, std::vector<std::size_t>> open;
  std::map<std::uint64_t, std::size_t> open_async;
  std::uint64_t last_ts = 0;
  for (std::size_t i = 0; i < events_.size(); ++i) {
    const Event& e = events_[i];
    out += ",\n";
    append_event(out, e, e.ts_ns, e.args);
    last_ts = std::max(last_ts, e.ts_ns);
    switch (e.phase) {
      case Phase::kBegin:
        open[e.tid].push_back(i);
        break;
      case Phase::kEnd:
        if (!open[e.tid].empty()) open[e.tid].pop_back();
        break;
      case Phase::kAsyncBegin:
        open_async[e.id] = i;
        break;
      case Phase::kAsyncEnd:
        open_async.erase(e.id);
        break;
      default:
        break;
    }
  }
  std::uint64_t unfinished = 0;
  const Args closing = {Arg("unfinished", 1)};
  for (const auto& [tid, stack] : open) {
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
      Event e = events_[*it];
      e.phase = Phase::kEnd;
      out += ",\n";
      append_event(out, e, last_ts, closing);
      ++unfinished;
    }
  }
  for (const auto& [id, index] : open_async) {
    Event e = events_[index];
    e.phase = Phase::kAsyncEnd;
    out += ",\n";
    append_event(out, e, last_ts, closing);
    ++unfinished;
  }
  out += "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"recorder\":\"itn::trace\",";
  out += "\"clock\":\"steady_clock, microseconds since start()\",\"events\":";
  out += std::to_string(events_.size());
  out += ",\"dropped_events\":";
  out += std::to_string(dropped_);
  out += ",\"max_events\":";
  out += std::to_string(options_.max_events);
  out += ",\"unfinished_spans\":";
  out += std::to_string(unfinished);
  out += "}}\n";
  return out;
}

absl::Status Recorder::write_json(const std::string& path) const {
  const std::string json = to_json();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::ErrnoToStatus(errno, "trace: cannot open '" + path + "' for writing");
  }
  errno = 0;
  const std::size_t written = std::fwrite(json.data(), 1, json.size(), f);
  const int write_errno = errno;
  if (written != json.size()) {
    std::fclose(f);
    return absl::ErrnoToStatus(write_errno != 0 ? write_errno : EIO,
                               "trace: cannot write '" + path + "'");
  }
  if (std::fclose(f) != 0) {
    return absl::ErrnoToStatus(errno, "trace: cannot finish writing '" + path + "'");
  }
  return absl::OkStatus();
}

// --- ScopedRecording --------------------------------------------------------------------

ScopedRecording::ScopedRecording(Recorder& recorder) : recorder_(recorder) {
  ITN_CHECK_OK(recorder_.start(), "trace::ScopedRecording: a recorder is installed already");
}

ScopedRecording::~ScopedRecording() { recorder_.stop(); }

}  // namespace itn::trace
