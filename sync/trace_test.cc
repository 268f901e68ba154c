// The timeline recorder: what trace points record with a recorder installed and without
// one, the cap, the JSON it writes (parsed back) and its I/O errors, and that recording
// adds no scheduling point.
#include "sync/trace.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "gtest/gtest.h"

#include "sync/test_util.h"
#include "sync/trace_test_util.h"

namespace itn::trace {
namespace {

using itn::testing::Json;
using itn::testing::JsonParser;

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/itn_trace_test_" +
         std::to_string(::getpid()) + "_" + name;
}

// Every trace point kind once; counts the argument lambdas that ran.
void run_trace_points(int& lambdas) {
  Span outer("test", "outer", [&] {
    ++lambdas;
    return Args{{"n", 1}};
  });
  outer.end_arg("result", "done");
  instant("test", "tick");
  instant("test", "tock", [&] {
    ++lambdas;
    return Args{{"k", -2}};
  });
  const std::uint64_t handle = async_begin("test", "async", [&] {
    ++lambdas;
    return Args{};
  });
  async_end(handle, "test", "async");
}

TEST(TraceTest, NothingIsRecordedWithoutARecorder) {
  ASSERT_FALSE(enabled());
  Recorder never_started;
  int lambdas = 0;
  run_trace_points(lambdas);
  EXPECT_EQ(lambdas, 0) << "argument lambdas run only while recording";
  EXPECT_TRUE(never_started.events().empty());

  // A recorder that was stopped records nothing more.
  Recorder stopped;
  {
    ScopedRecording recording(stopped);
    instant("test", "while recording");
  }
  EXPECT_FALSE(enabled());
  run_trace_points(lambdas);
  EXPECT_EQ(lambdas, 0);
  ASSERT_EQ(stopped.events().size(), 1u);
  EXPECT_EQ(stopped.events()[0].name, "while recording");
}

TEST(TraceTest, RecordsSpansInstantsAndAsyncSpansInOrder) {
  Recorder recorder;
  int lambdas = 0;
  {
    ScopedRecording recording(recorder);
    EXPECT_TRUE(enabled());
    EXPECT_TRUE(recorder.recording());
    run_trace_points(lambdas);
  }
  EXPECT_FALSE(recorder.recording());
  EXPECT_EQ(lambdas, 3);
  const std::vector<Event> ev = recorder.events();
  ASSERT_EQ(ev.size(), 6u);
  const Phase phases[] = {Phase::kBegin,      Phase::kInstant,  Phase::kInstant,
                          Phase::kAsyncBegin, Phase::kAsyncEnd, Phase::kEnd};
  const char* names[] = {"tick", "tock", "async", "async", "outer"};
  for (std::size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].phase, phases[i]) << i;
    EXPECT_EQ(ev[i].category, "test");
    EXPECT_EQ(ev[i].name, i == 0 ? "outer" : names[i - 1]) << i;
    EXPECT_EQ(ev[i].tid, 1u) << "the first thread to record is 1";
    if (i > 0) {
      EXPECT_GE(ev[i].ts_ns, ev[i - 1].ts_ns);
    }
  }
  EXPECT_EQ(ev[0].number("n"), 1u);
  EXPECT_EQ(ev[5].text("result"), "done") << "end_arg() goes to the end event";
  EXPECT_TRUE(ev[1].args.empty());
  EXPECT_EQ(std::get<std::int64_t>(ev[2].args.at(0).value), -2);
  EXPECT_EQ(ev[2].number("k"), std::nullopt) << "negative";
  EXPECT_NE(ev[3].id, 0u);
  EXPECT_EQ(ev[3].id, ev[4].id);
  EXPECT_EQ(ev[0].id, 0u);
}

TEST(TraceTest, AsyncSpansEndOnAnotherThreadAndThreadsGetIndicesAndNames) {
  Recorder recorder;
  {
    ScopedRecording recording(recorder);
    set_thread_name("main test thread");
    const std::uint64_t handle = async_begin("test", "travels", [] { return Args{}; });
    std::thread other([&] {
      set_thread_name("other");
      async_end(handle, "test", "travels", {{"where", "other thread"}});
      Span span("test", "on other");
    });
    other.join();
    std::thread unnamed([] { instant("test", "unnamed"); });
    unnamed.join();
  }
  const std::vector<Event> ev = recorder.events();
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].phase, Phase::kAsyncBegin);
  EXPECT_EQ(ev[1].phase, Phase::kAsyncEnd);
  EXPECT_EQ(ev[1].id, ev[0].id);
  EXPECT_EQ(ev[1].text("where"), "other thread");
  EXPECT_EQ(ev[0].tid, 1u);
  EXPECT_EQ(ev[1].tid, 2u);
  EXPECT_EQ(ev[2].tid, 2u);
  EXPECT_EQ(ev[4].tid, 3u);
  const auto names = recorder.thread_names();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], (std::pair<std::uint32_t, std::string>(1, "main test thread")));
  EXPECT_EQ(names[1], (std::pair<std::uint32_t, std::string>(2, "other")));
}

TEST(TraceTest, TheCapDropsBeginsAndInstantsButKeepsTheEndsOfKeptBegins) {
  Recorder recorder({.max_events = 3});
  {
    ScopedRecording recording(recorder);
    Span kept("test", "kept");
    instant("test", "1");
    instant("test", "2");
    instant("test", "dropped");
    {
      Span dropped("test", "dropped span");
      EXPECT_FALSE(dropped.active());
    }
    EXPECT_TRUE(kept.active());
  }
  const std::vector<Event> ev = recorder.events();
  ASSERT_EQ(ev.size(), 4u) << "the cap is passed by the one open span's end";
  EXPECT_EQ(ev[3].phase, Phase::kEnd);
  EXPECT_EQ(ev[3].name, "kept");
  EXPECT_EQ(recorder.dropped(), 2u);
}

TEST(TraceTest, ASpanBegunInOneRecordingDoesNotEndInTheNext) {
  Recorder first, second;
  std::optional<ScopedRecording> recording(std::in_place, first);
  auto span = std::make_unique<Span>("test", "straddles");
  const std::uint64_t handle = async_begin("test", "async straddles", [] { return Args{}; });
  recording.reset();
  recording.emplace(second);
  span.reset();
  async_end(handle, "test", "async straddles");
  instant("test", "in second");
  recording.reset();
  EXPECT_EQ(first.events().size(), 2u);
  ASSERT_EQ(second.events().size(), 1u);
  EXPECT_EQ(second.events()[0].name, "in second");

  // The same recorder started again: a fresh recording.
  {
    ScopedRecording again(first);
    instant("test", "again");
  }
  ASSERT_EQ(first.events().size(), 1u);
  EXPECT_EQ(first.events()[0].name, "again");
}

TEST(TraceTest, OneRecorderAtATime) {
  Recorder a, b;
  ASSERT_TRUE(a.start().ok());
  EXPECT_EQ(a.start().code(), absl::StatusCode::kFailedPrecondition);
  const absl::Status other = b.start();
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(other.message().find("another recorder"), std::string_view::npos) << other;
  b.stop();  // not installed: nothing happens
  EXPECT_TRUE(a.recording());
  a.stop();
  EXPECT_TRUE(b.start().ok());
  b.stop();
}

// Parses `text` and returns its traceEvents, checking the top-level keys.
std::vector<Json> parse_trace(const std::string& text) {
  const std::optional<Json> json = JsonParser::parse(text);
  EXPECT_TRUE(json.has_value()) << text;
  if (!json) return {};
  EXPECT_EQ(json->kind, Json::Kind::kObject);
  EXPECT_EQ(json->str("displayTimeUnit"), "ns");
  const Json* other = json->get("otherData");
  EXPECT_TRUE(other != nullptr && other->kind == Json::Kind::kObject);
  const Json* events = json->get("traceEvents");
  EXPECT_TRUE(events != nullptr && events->kind == Json::Kind::kArray);
  return events != nullptr ? events->items : std::vector<Json>{};
}

TEST(TraceTest, JsonIsTraceEventFormatWithEscapedStringsAndClosedSpans) {
  Recorder recorder({.max_events = 100, .process_name = "proc \"x\""});
  std::optional<Span> open;
  {
    ScopedRecording recording(recorder);
    set_thread_name("tab\there");
    {
      Span span("cat", "span", [] {
        return Args{{"text", std::string("quote\" backslash\\ nl\n ctl\x01 bad\xff ok\xc3\xa9")},
                    {"big", ~std::uint64_t{0}},
                    {"neg", -5}};
      });
    }
    instant("cat", "instant");
    open.emplace("cat", "left open");
  }
  open.reset();  // after stop(): no end recorded
  const std::string text = recorder.to_json();
  EXPECT_NE(text.find(R"("text":"quote\" backslash\\ nl\n ctl\u0001 bad\ufffd ok)"),
            std::string::npos)
      << text;
  const std::vector<Json> events = parse_trace(text);
  ASSERT_EQ(events.size(), 7u) << text;  // 2 metadata, B E i B, the closing E
  EXPECT_EQ(events[0].str("ph"), "M");
  EXPECT_EQ(events[0].str("name"), "process_name");
  EXPECT_EQ(events[0].get("args")->str("name"), "proc \"x\"");
  EXPECT_EQ(events[1].str("name"), "thread_name");
  EXPECT_EQ(events[1].get("args")->str("name"), "tab\there");
  const Json& begin = events[2];
  EXPECT_EQ(begin.str("ph"), "B");
  EXPECT_EQ(begin.str("cat"), "cat");
  EXPECT_EQ(begin.get("tid")->text, "1");
  EXPECT_EQ(begin.get("pid")->text, "1");
  EXPECT_EQ(begin.get("ts")->kind, Json::Kind::kNumber);
  EXPECT_NE(begin.get("ts")->text.find('.'), std::string::npos) << "microseconds, fractions";
  EXPECT_EQ(begin.get("args")->str("text"),
            "quote\" backslash\\ nl\n ctl\x01 bad\xef\xbf\xbd ok\xc3\xa9");
  EXPECT_EQ(begin.get("args")->get("big")->text, "18446744073709551615");
  EXPECT_EQ(begin.get("args")->get("neg")->text, "-5");
  EXPECT_EQ(events[3].str("ph"), "E");
  EXPECT_EQ(events[4].str("ph"), "i");
  EXPECT_EQ(events[4].str("s"), "t");
  EXPECT_EQ(events[5].str("ph"), "B");
  EXPECT_EQ(events[6].str("ph"), "E");
  EXPECT_EQ(events[6].str("name"), "left open");
  EXPECT_EQ(events[6].get("args")->get("unfinished")->text, "1");
  const std::optional<Json> whole = JsonParser::parse(text);
  ASSERT_TRUE(whole);
  const Json* other = whole->get("otherData");
  EXPECT_EQ(other->get("events")->text, "4");
  EXPECT_EQ(other->get("dropped_events")->text, "0");
  EXPECT_EQ(other->get("unfinished_spans")->text, "1");
}

TEST(TraceTest, WriteJsonWritesTheFileAndReportsIoErrors) {
  Recorder recorder;
  {
    ScopedRecording recording(recorder);
    Span span("test", "written");
  }
  const std::string path = temp_path("write.json");
  ASSERT_TRUE(recorder.write_json(path).ok());
  EXPECT_EQ(itn::testing::read_file(path), recorder.to_json());
  std::size_t non_metadata = 0;
  for (const Json& e : parse_trace(*itn::testing::read_file(path))) {
    non_metadata += e.str("ph") != "M" ? 1 : 0;
  }
  EXPECT_EQ(non_metadata, 2u);
  std::remove(path.c_str());

  const absl::Status missing = recorder.write_json("/nonexistent-dir-itn/trace.json");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_NE(missing.message().find("/nonexistent-dir-itn/trace.json"), std::string_view::npos);
  if (std::FILE* full = std::fopen("/dev/full", "w")) {
    std::fclose(full);
    const absl::Status no_space = recorder.write_json("/dev/full");
    EXPECT_EQ(no_space.code(), absl::StatusCode::kResourceExhausted) << no_space;
  }
}

TEST(TraceTest, RecordingAddsNoSchedulingPoint) {
  itn::testing::CountingHooks hooks;
  if (!set_thread_hooks(&hooks)) GTEST_SKIP() << "seam compiled out (ITN_SCHED_SEAM=0)";
  Recorder recorder;
  {
    ScopedRecording recording(recorder);
    int lambdas = 0;
    run_trace_points(lambdas);
    (void)recorder.to_json();
  }
  set_thread_hooks(nullptr);
  EXPECT_EQ(recorder.events().size(), 6u);
  std::uint64_t points = 0;
  for (const auto& p : hooks.points) points += p.load();
  EXPECT_EQ(points, 0u);
  EXPECT_EQ(hooks.blocks.load() + hooks.wakes.load(), 0u);
}

// Recorders come and go while other threads keep tracing: stop() waits for the trace
// points in flight, so a destroyed recorder is never written (ASan and TSan builds check).
TEST(TraceTest, RecordersMayBeDestroyedWhileOtherThreadsTrace) {
  std::atomic<bool> done{false};
  std::vector<std::thread> tracers;
  for (int t = 0; t < 3; ++t) {
    tracers.emplace_back([&] {
      while (!done.load()) {
        Span span("test", "busy", [] { return Args{{"x", 1}}; });
        instant("test", "tick");
      }
    });
  }
  std::uint64_t recorded = 0;
  for (int i = 0; i < 50; ++i) {
    auto recorder = std::make_unique<Recorder>(RecorderOptions{.max_events = 64});
    ASSERT_TRUE(recorder->start().ok());
    std::this_thread::yield();
    recorded += recorder->events().size();
    recorder.reset();  // stops while the tracers run
  }
  done.store(true);
  for (auto& t : tracers) t.join();
  EXPECT_GT(recorded, 0u);
}

// Two threads stop one recorder at once: the one whose stop() finds it already
// uninstalled must still wait for the trace point the other is waiting for, so that no
// trace point still records into the recorder once either call has returned. The trace
// point is held up on the recorder's mutex by a long to_json().
TEST(TraceTest, EveryConcurrentStopWaitsForTheTracePointsInFlight) {
  Recorder recorder(RecorderOptions{.max_events = 1 << 18});
  ASSERT_TRUE(recorder.start().ok());
  for (int i = 0; i < 150000; ++i) instant("test", "fill", [&] { return Args{{"i", i}}; });
  const auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); };
  std::atomic<bool> json_started{false}, traced{false};
  std::thread reader([&] {
    json_started.store(true);
    (void)recorder.to_json();  // takes the mutex for much longer than the pauses below
  });
  while (!json_started.load()) std::this_thread::yield();
  pause();
  std::thread tracer([&] {
    instant("test", "late");  // counted in flight, then waits for the mutex
    traced.store(true);
  });
  pause();
  std::thread first([&] { recorder.stop(); });  // uninstalls it, waits for the tracer
  pause();
  recorder.stop();  // finds it uninstalled already
  EXPECT_TRUE(traced.load()) << "stop() returned while a trace point still used the recorder";
  first.join();
  tracer.join();
  reader.join();
}

}  // namespace
}  // namespace itn::trace
