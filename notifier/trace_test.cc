// The notifier layer's trace points (sync/trace.h): a known sequence (a fast miss, an
// invalidation that reaches a notifier, a deferred insert, a retry, a read_begin() that
// waits, the teardown) records exactly the expected spans and instants, with their ranges,
// in order; the written file parses back to the same events, every span closed on its own
// thread; and without a recorder nothing is recorded.
#include "sync/trace.h"

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include "gtest/gtest.h"

#include "notifier/domain.h"
#include "notifier/test_support.h"
#include "sync/trace_test_util.h"

namespace itn {
namespace {

using testing::CountedNotifier;
using testing::Json;
using testing::JsonParser;
using testing::start_ok;
using TraceEvent = trace::Event;
using trace::Phase;

std::string value_text(const trace::Value& v) {
  if (const auto* u = std::get_if<std::uint64_t>(&v)) return std::to_string(*u);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return std::get<std::string>(v);
}

// "B notifier/invalidate {notifier=0x...,seq=3}"
std::string describe(const TraceEvent& e) {
  std::string out(1, static_cast<char>(e.phase));
  out += " " + std::string(e.category) + "/" + std::string(e.name) + " {";
  for (std::size_t i = 0; i < e.args.size(); ++i) {
    out += (i > 0 ? "," : "") + std::string(e.args[i].key) + "=" + value_text(e.args[i].value);
  }
  return out + "}";
}

std::vector<std::string> describe_thread(const std::vector<TraceEvent>& events, std::uint32_t tid) {
  std::vector<std::string> out;
  for (const TraceEvent& e : events) {
    if (e.tid == tid && e.category == "notifier") out.push_back(describe(e));
  }
  return out;
}

// The sequence the tests record. Returns what the expectations need to know.
struct Sequence {
  Ref<NotifierDomain> domain = make_ref<NotifierDomain>();
  Ref<CountedNotifier> a = make_ref<CountedNotifier>();  // [0x1000, 0x3000)
  Ref<CountedNotifier> b = make_ref<CountedNotifier>();  // [0x10000, 0x11000)
  Ref<CountedNotifier> c = make_ref<CountedNotifier>();  // [0x4000, 0x5000), inserted late
  std::uint64_t odd_seq = 0;                             // the hitting invalidation's
  std::uint64_t read_seq = 0;                            // a's read_begin() before it

  Sequence() {
    ITN_CHECK_OK(domain->insert(a, Interval::sized(0x1000, 0x2000), nullptr), "test");
    ITN_CHECK_OK(domain->insert(b, Interval::sized(0x10000, 0x1000), nullptr), "test");
  }
  ~Sequence() {
    for (CountedNotifier* n : {a.get(), b.get(), c.get()}) (void)domain->remove(*n);
  }

  void run() {
    read_seq = a->read_begin();  // returns at once: nothing to record
    // A miss past every notifier: the fast path.
    testing::invalidate(*domain, Range{.start = 0x100000, .end = 0x101000, .event = Event::kUnmap});
    // One that reaches a; c's insert waits for its end, and so does c's first read_begin().
    InvalidationToken token =
        start_ok(*domain, Range{.start = 0x2000, .end = 0x2800, .event = Event::kClear});
    odd_seq = domain->seq_for_testing();
    ITN_CHECK_OK(domain->insert(c, Interval::sized(0x4000, 0x1000), nullptr), "test");
    EXPECT_TRUE(a->read_retry(read_seq));
    {
      testing::ReadBeginCall reader(*domain, *c);
      EXPECT_FALSE(reader.returned());
      domain->invalidate_range_end(std::move(token));
    }
    domain->release();
  }
};

TEST(NotifierTraceTest, AKnownSequenceRecordsExactlyTheseEventsInOrder) {
  Sequence s;
  trace::Recorder recorder;
  {
    trace::ScopedRecording recording(recorder);
    trace::set_thread_name("test main");
    s.run();
  }
  const std::vector<TraceEvent> events = recorder.events();
  ASSERT_FALSE(events.empty());
  const std::uint32_t main = 1;  // named first
  const std::string a = trace::hex(s.a.get()), b = trace::hex(s.b.get()), c = trace::hex(s.c.get()),
                    d = trace::hex(s.domain.get());
  const std::string odd = std::to_string(s.odd_seq);
  const std::string release_seq = std::to_string(s.odd_seq + 2);  // the next odd one
  const std::vector<std::string> want = {
      // The fast miss.
      "B notifier/invalidate_range_start {start=0x100000,end=0x101000,event=unmap}",
      "b notifier/invalidation {start=0x100000,end=0x101000,event=unmap}",
      "E notifier/invalidate_range_start {fast=1,calls=0}",
      "B notifier/invalidate_range_end {start=0x100000,end=0x101000,event=unmap}",
      "e notifier/invalidation {}",
      "E notifier/invalidate_range_end {}",
      // The hit: a's callback inside the start.
      "B notifier/invalidate_range_start {start=0x2000,end=0x2800,event=clear}",
      "b notifier/invalidation {start=0x2000,end=0x2800,event=clear}",
      "B notifier/invalidate {notifier=" + a + ",seq=" + odd + "}",
      "E notifier/invalidate {}",
      "E notifier/invalidate_range_start {fast=0,calls=1}",
      "i notifier/retry {notifier=" + a + ",by=read_retry,seq=" + std::to_string(s.read_seq) +
          ",now=" + odd + "}",
      // Its end applies c's insert.
      "B notifier/invalidate_range_end {start=0x2000,end=0x2800,event=clear}",
      "i notifier/deferred ops applied {domain=" + d + ",count=1,inserts=1,removes=0}",
      "e notifier/invalidation {}",
      "E notifier/invalidate_range_end {}",
      // The teardown: every notifier, in address order.
      "B notifier/release {start=0x0,end=0xffffffffffffffff,event=release,domain=" + d + "}",
      "B notifier/invalidate {notifier=" + a + ",seq=" + release_seq + "}",
      "E notifier/invalidate {}",
      "B notifier/invalidate {notifier=" + c + ",seq=" + release_seq + "}",
      "E notifier/invalidate {}",
      "B notifier/invalidate {notifier=" + b + ",seq=" + release_seq + "}",
      "E notifier/invalidate {}",
      "E notifier/release {}",
  };
  EXPECT_EQ(describe_thread(events, main), want);

  // The reader waited on a thread of its own, for the hitting invalidation.
  std::map<std::uint32_t, int> tids;
  for (const TraceEvent& e : events) ++tids[e.tid];
  ASSERT_EQ(tids.size(), 2u) << "the test thread and the reader";
  const std::uint32_t reader = tids.rbegin()->first;
  EXPECT_NE(reader, main);
  EXPECT_EQ(
      describe_thread(events, reader),
      (std::vector<std::string>{"B notifier/read_begin wait {notifier=" + c + ",seq=" + odd + "}",
                                "E notifier/read_begin wait {}"}));

  // Each async span's end names its begin.
  std::vector<std::uint64_t> begun, ended;
  for (const TraceEvent& e : events) {
    if (e.phase == Phase::kAsyncBegin) begun.push_back(e.id);
    if (e.phase == Phase::kAsyncEnd) ended.push_back(e.id);
  }
  EXPECT_EQ(begun.size(), 2u);
  EXPECT_EQ(begun, ended);
  EXPECT_NE(begun[0], begun[1]);
}

TEST(NotifierTraceTest, TheWrittenFileParsesBackToTheRecordedEvents) {
  Sequence s;
  trace::Recorder recorder;
  {
    trace::ScopedRecording recording(recorder);
    s.run();
  }
  const std::string path = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") +
                           "/itn_notifier_trace_" + std::to_string(::getpid()) + ".json";
  ASSERT_TRUE(recorder.write_json(path).ok());
  const std::optional<std::string> text = testing::read_file(path);
  std::remove(path.c_str());
  ASSERT_TRUE(text);
  const std::optional<Json> json = JsonParser::parse(*text);
  ASSERT_TRUE(json) << "not JSON";
  ASSERT_TRUE(json->get("traceEvents"));
  EXPECT_EQ(json->str("displayTimeUnit"), "ns");
  std::vector<const Json*> written;
  for (const Json& e : json->get("traceEvents")->items) {
    if (e.str("ph") != "M") written.push_back(&e);
  }
  const std::vector<TraceEvent> events = recorder.events();
  ASSERT_EQ(written.size(), events.size());
  std::map<std::string, std::vector<std::string>> open;  // tid -> names of open spans
  for (std::size_t i = 0; i < events.size(); ++i) {
    const Json& w = *written[i];
    const TraceEvent& e = events[i];
    EXPECT_EQ(w.str("ph"), std::string(1, static_cast<char>(e.phase))) << i;
    EXPECT_EQ(w.str("name"), e.name) << i;
    EXPECT_EQ(w.str("cat"), e.category) << i;
    EXPECT_EQ(w.get("tid")->text, std::to_string(e.tid)) << i;
    for (const trace::Arg& arg : e.args) {
      const Json* v = w.get("args") ? w.get("args")->get(std::string(arg.key)) : nullptr;
      ASSERT_TRUE(v) << i << " " << arg.key;
      EXPECT_EQ(v->text, value_text(arg.value)) << i << " " << arg.key;
    }
    std::vector<std::string>& stack = open[w.get("tid")->text];
    if (w.str("ph") == "B") stack.push_back(w.str("name"));
    if (w.str("ph") == "E") {
      ASSERT_FALSE(stack.empty()) << "an E with no B at " << i;
      EXPECT_EQ(stack.back(), w.str("name")) << i;
      stack.pop_back();
    }
  }
  for (const auto& [tid, stack] : open) EXPECT_TRUE(stack.empty()) << "tid " << tid;
  EXPECT_EQ(json->get("otherData")->get("unfinished_spans")->text, "0");
}

// The instrumented paths pass exactly the scheduling points they pass without a
// recording, so a deterministic schedule replays the same recorded or not.
TEST(NotifierTraceTest, RecordingAddsNoSchedulingPoint) {
  const auto points_of_one_run = [](bool record) {
    Ref<NotifierDomain> domain = make_ref<NotifierDomain>();
    Ref<CountedNotifier> a = make_ref<CountedNotifier>(), c = make_ref<CountedNotifier>();
    trace::Recorder recorder;
    testing::CountingHooks hooks;
    std::uint64_t points = 0;
    {
      std::optional<trace::ScopedRecording> recording;
      if (record) recording.emplace(recorder);
      if (!set_thread_hooks(&hooks)) return points;
      ITN_CHECK_OK(domain->insert(a, Interval::sized(0x1000, 0x2000), nullptr), "test");
      const std::uint64_t seq = a->read_begin();
      testing::invalidate(*domain, Range{.start = 0x100000, .end = 0x101000});  // fast
      InvalidationToken token = start_ok(*domain, Range{.start = 0x2000, .end = 0x2800});
      ITN_CHECK_OK(domain->insert(c, Interval::sized(0x4000, 0x1000), nullptr), "test");
      EXPECT_TRUE(a->read_retry(seq));
      domain->invalidate_range_end(std::move(token));
      domain->release();
      set_thread_hooks(nullptr);
      for (const auto& p : hooks.points) points += p.load();
    }
    EXPECT_EQ(recorder.events().empty(), !record);
    (void)domain->remove(*a);
    (void)domain->remove(*c);
    return points;
  };
  // A first run also passes the points of this thread's first use of the domain's
  // per-thread shards (their assignment): not part of the comparison.
  if (points_of_one_run(false) == 0) GTEST_SKIP() << "seam compiled out (ITN_SCHED_SEAM=0)";
  const std::uint64_t plain = points_of_one_run(false);
  EXPECT_EQ(points_of_one_run(true), plain);
}

TEST(NotifierTraceTest, NothingIsRecordedWithoutARecorder) {
  trace::Recorder recorder;  // never started
  {
    Sequence s;
    ASSERT_FALSE(trace::enabled());
    s.run();
  }
  EXPECT_TRUE(recorder.events().empty());

  // Recorded once, then the same sequence after stop(): nothing more.
  std::size_t recorded = 0;
  {
    Sequence s;
    trace::ScopedRecording recording(recorder);
    s.run();
  }
  recorded = recorder.event_count();
  EXPECT_GT(recorded, 0u);
  {
    Sequence s;
    s.run();
  }
  EXPECT_EQ(recorder.event_count(), recorded);
}

}  // namespace
}  // namespace itn
