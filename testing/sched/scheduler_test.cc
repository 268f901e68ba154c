// The deterministic scheduler itself: schedule strings, each strategy finding a lost
// update that real threads on two cores almost never show, exact replay of a printed
// schedule (directly and through ITN_SCHEDULE), determinism per seed, the exhaustive
// search's preemption bound, blocked threads, polling loops and deadlock reports.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "sync/atomic.h"
#include "sync/backoff.h"
#include "sync/cond_var.h"
#include "sync/mutex.h"
#include "sync/thread.h"
#include "sync/trace.h"
#include "sync/trace_test_util.h"
#include "testing/lin/history.h"
#include "testing/sched/explore.h"

namespace itn::sched {
namespace {

TEST(ScheduleTest, EncodesRunsAndDecodesThemBack) {
  const Schedule s = {0, 0, 0, 1, 1, 0, 2};
  EXPECT_EQ(encode_schedule(s), "v1:0*3.1*2.0*1.2*1");
  EXPECT_EQ(*decode_schedule(encode_schedule(s)), s);
  EXPECT_TRUE(decode_schedule("v1:")->empty());
  for (const char* bad : {"", "0*3", "v1:0*", "v1:0*0", "v1:a*1", "v1:0*1.", "v1:-1*2"}) {
    EXPECT_EQ(decode_schedule(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// Two threads increment a counter with a load and a separate store: an update is lost
// when both load before either stores.
absl::Status lost_update(Execution& ex) {
  Atomic<int> counter{0};
  auto increment = [&] {
    const int v = counter.load(std::memory_order_relaxed);
    counter.store(v + 1, std::memory_order_relaxed);
  };
  ex.run({increment, increment});
  const int final_value = counter.load(std::memory_order_relaxed);
  if (final_value != 2) return absl::InternalError(absl::StrCat("counter is ", final_value));
  return absl::OkStatus();
}

TEST(ExploreTest, EachStrategyFindsTheLostUpdate) {
  for (StrategyKind kind : {StrategyKind::kPct, StrategyKind::kRandom, StrategyKind::kExhaustive}) {
    ExploreOptions o;
    o.strategy = kind;
    o.executions = 200;
    ExploreResult r = explore(o, lost_update);
    EXPECT_TRUE(r.failed) << "strategy " << static_cast<int>(kind) << ": " << r.report();
    EXPECT_EQ(r.failure, "counter is 1");
  }
}

TEST(ExploreTest, APrintedScheduleReplaysTheFailureExactly) {
  ExploreOptions o;
  o.seed = 7;
  const ExploreResult found = explore(o, lost_update);
  ASSERT_TRUE(found.failed);
  const ExploreResult again = replay(*decode_schedule(found.schedule), lost_update);
  EXPECT_TRUE(again.failed);
  EXPECT_EQ(again.failure, found.failure);
  EXPECT_EQ(again.schedule, found.schedule) << "the same decisions, one by one";

  // The same through the environment, as a developer would replay a printed failure.
  ASSERT_EQ(setenv("ITN_SCHEDULE", found.schedule.c_str(), 1), 0);
  const ExploreResult via_env = explore(ExploreOptions{}, lost_update);
  unsetenv("ITN_SCHEDULE");
  EXPECT_TRUE(via_env.replayed);
  EXPECT_EQ(via_env.executions, 1);
  EXPECT_TRUE(via_env.failed);
  EXPECT_EQ(via_env.schedule, found.schedule);

  // A schedule that does not fit the program is reported, not silently followed.
  const ExploreResult wrong = replay(*decode_schedule("v1:5*3"), lost_update);
  EXPECT_TRUE(wrong.failed);
  EXPECT_NE(wrong.failure.find("replay diverged"), std::string::npos) << wrong.failure;
}

TEST(ExploreTest, TheSameSeedExploresTheSameSchedules) {
  std::vector<std::string> first, second;
  for (std::vector<std::string>* out : {&first, &second}) {
    ExploreOptions o;
    o.seed = 3;
    o.executions = 20;
    explore(o, [&](Execution& ex) {
      absl::Status s = lost_update(ex);
      (void)s;  // keep exploring whatever happens
      out->push_back(std::string(ex.status().message()));
      return absl::OkStatus();
    });
  }
  EXPECT_EQ(first, second);
}

TEST(ExploreTest, ExhaustiveSearchRespectsItsPreemptionBound) {
  ExploreOptions o;
  o.strategy = StrategyKind::kExhaustive;
  o.preemption_bound = 0;  // each thread runs until it blocks or ends: no lost update
  o.executions = 1000;
  const ExploreResult none = explore(o, lost_update);
  EXPECT_FALSE(none.failed) << none.report();
  EXPECT_LT(none.executions, 1000) << "the bounded search space is finite and was exhausted";
  o.preemption_bound = 1;
  EXPECT_TRUE(explore(o, lost_update).failed);
}

TEST(ExploreTest, MutexesExcludeEachOtherUnderEverySchedule) {
  ExploreOptions o;
  o.executions = 300;
  const ExploreResult r = explore(o, [](Execution& ex) {
    Mutex mu;
    int counter = 0;
    auto increment = [&] {
      for (int i = 0; i < 3; ++i) {
        MutexLock l(mu);
        const int v = counter;
        counter = v + 1;
      }
    };
    ex.run({increment, increment, increment});
    return counter == 9 ? absl::OkStatus() : absl::InternalError("lost an increment");
  });
  EXPECT_FALSE(r.failed) << r.report();
}

TEST(ExploreTest, WaitersSleepUntilNotifiedAndPollersLetOthersRun) {
  ExploreOptions o;
  o.executions = 300;
  const ExploreResult r = explore(o, [](Execution& ex) {
    Mutex mu;
    CondVar cv;
    bool ready = false;
    Atomic<bool> flag{false};
    ex.run({
        [&] {
          MutexLock l(mu);
          while (!ready) cv.wait(mu);
        },
        [&] {
          {
            MutexLock l(mu);
            ready = true;
          }
          cv.notify_all();
        },
        [&] {  // a spin-wait on a flag another thread sets: must not starve it
          Backoff backoff;
          while (!flag.load(std::memory_order_acquire)) backoff.pause(&flag);
        },
        [&] { flag.store(true, std::memory_order_release); },
    });
    return absl::OkStatus();
  });
  EXPECT_FALSE(r.failed) << r.report();
  EXPECT_EQ(r.executions, 300);
}

TEST(ExploreTest, ThreadsTheLibraryStartsAreScheduledToo) {
  const ExploreResult r = explore(ExploreOptions{.executions = 100}, [](Execution& ex) {
    Atomic<int> value{0};
    ex.run({[&] {
      Thread child([&] { value.store(1, std::memory_order_relaxed); });
      child.join();
    }});
    return value.load(std::memory_order_relaxed) == 1 ? absl::OkStatus()
                                                      : absl::InternalError("child lost");
  });
  EXPECT_FALSE(r.failed) << r.report();
  EXPECT_GT(r.max_steps_seen, 2);
}

// Two threads take two mutexes in opposite orders: some schedules deadlock.
absl::Status lock_order_inversion(Execution& ex) {
  Mutex a, b;
  ex.run({[&] {
            MutexLock la(a);
            MutexLock lb(b);
          },
          [&] {
            MutexLock lb(b);
            MutexLock la(a);
          }});
  return absl::OkStatus();
}

TEST(ExploreDeathTest, ADeadlockIsReportedWithEveryThreadsPosition) {
  EXPECT_DEATH(
      { explore(ExploreOptions{.executions = 500}, lock_order_inversion); },
      "DEADLOCK(.|\n)*thread 0 \\(body\\): blocked(.|\n)*thread 1 \\(body\\): blocked(.|\n)*"
      "ITN_SCHEDULE='v1:");
}

TEST(ExploreTest, ALivelockFailsTheExecutionInsteadOfHanging) {
  ExploreOptions o;
  o.executions = 1;
  o.max_steps = 1000;
  const ExploreResult r = explore(o, [](Execution& ex) {
    Atomic<bool> never{false};
    ex.run({[&] {  // spins on a flag nobody sets (bounded, so that it ends once freed)
      for (int i = 0; i < 100000 && !never.load(std::memory_order_relaxed); ++i) {
      }
    }});
    return absl::OkStatus();
  });
  EXPECT_TRUE(r.failed);
  EXPECT_NE(r.failure.find("livelock"), std::string::npos) << r.failure;
}

TEST(ExploreTest, ALivelockReplaysAsALivelockWithItsOwnStepBound) {
  ExploreOptions o;
  o.executions = 1;
  o.max_steps = 1000;
  const auto spin = [](Execution& ex) {
    Atomic<bool> never{false};
    ex.run({[&] {
      for (int i = 0; i < 100000 && !never.load(std::memory_order_relaxed); ++i) {
      }
    }});
    return absl::OkStatus();
  };
  ::testing::internal::CaptureStderr();
  const ExploreResult r = explore(o, spin);
  const std::string printed = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.failed);
  // Printed when the bound is hit, before the threads are let go (they might never end).
  EXPECT_NE(printed.find("the threads now run unmanaged"), std::string::npos) << printed;
  EXPECT_NE(printed.find("ITN_SCHEDULE='" + r.schedule + "'"), std::string::npos) << printed;
  const auto first_line = [](const std::string& text) { return text.substr(0, text.find('\n')); };
  const ExploreResult again = replay(*decode_schedule(r.schedule), spin, o.max_steps);
  EXPECT_EQ(first_line(again.failure), first_line(r.failure));
  ASSERT_EQ(setenv("ITN_SCHEDULE", r.schedule.c_str(), 1), 0);
  const ExploreResult from_env = explore(o, spin);
  unsetenv("ITN_SCHEDULE");
  EXPECT_TRUE(from_env.replayed);
  EXPECT_EQ(first_line(from_env.failure), first_line(r.failure));
  // Its trace replay ends the same way (the positions in the message are addresses).
  EXPECT_EQ(r.trace.find("ended otherwise"), std::string::npos) << r.trace;
}

TEST(ExploreTest, AReplayThatCannotFollowItsScheduleSaysSoEvenIfTheScenarioFails) {
  const auto failing = [](Execution& ex) {
    Atomic<int> x{0};
    ex.run({[&] { x.store(1, std::memory_order_relaxed); }});
    return absl::InternalError("the scenario's own failure");
  };
  const ExploreResult found = explore(ExploreOptions{.executions = 1}, failing);
  ASSERT_TRUE(found.failed);
  Schedule longer = *decode_schedule(found.schedule);
  longer.push_back(0);
  const ExploreResult r = replay(longer, failing);
  EXPECT_NE(r.failure.find("replay diverged: the execution ended after"), std::string::npos)
      << r.failure;
  Schedule other = *decode_schedule(found.schedule);
  other[0] = 5;  // no thread 5
  EXPECT_NE(replay(other, failing).failure.find("replay diverged: decision 0"), std::string::npos);
}

TEST(ExploreTest, RunningBodiesTwiceInOneExecutionFailsInsteadOfRunningThemUnmanaged) {
  int second_ran = 0;
  const ExploreResult r = explore(ExploreOptions{.executions = 3}, [&](Execution& ex) {
    ex.run({[] {}});
    ex.run({[&] { ++second_ran; }});
    return absl::OkStatus();
  });
  EXPECT_TRUE(r.failed);
  EXPECT_EQ(r.executions, 1);
  EXPECT_NE(r.failure.find("Execution::run() called twice"), std::string::npos) << r.failure;
  EXPECT_EQ(second_ran, 0);
}

TEST(ExploreTest, AThreadStartedAsTheLastBodysLastActionIsSafe) {
  // The child registers after the last body ended and the scheduler let go: it must run
  // unmanaged without touching a thread slot it never got, and the scheduler must wait
  // for it before it is destroyed.
  for (int round = 0; round < 40; ++round) {
    const ExploreResult r = explore(ExploreOptions{.executions = 5}, [](Execution& ex) {
      std::unique_ptr<Thread> child;
      Atomic<int> value{0};
      ex.run({[&] {
        child = std::make_unique<Thread>([&] { value.store(1, std::memory_order_relaxed); });
      }});
      child->join();
      return value.load(std::memory_order_relaxed) == 1 ? absl::OkStatus()
                                                        : absl::InternalError("child lost");
    });
    ASSERT_FALSE(r.failed) << r.report();
  }
}

TEST(ExploreTest, ThreadsStartedBackToBackGetTheSameIdsEveryTime) {
  // Two children started with no scheduling point between them: which one is thread 1
  // must not depend on which reached the scheduler first, or a seed explores different
  // schedules from run to run and a replay drives the wrong threads.
  const auto winners = [] {
    std::vector<int> out;
    explore(ExploreOptions{.strategy = StrategyKind::kRandom, .seed = 7, .executions = 40},
            [&](Execution& ex) {
              Atomic<int> first{0};
              ex.run({[&] {
                Thread a([&] {
                  int none = 0;
                  first.compare_exchange_strong(none, 1, std::memory_order_relaxed,
                                                std::memory_order_relaxed);
                });
                Thread b([&] {
                  int none = 0;
                  first.compare_exchange_strong(none, 2, std::memory_order_relaxed,
                                                std::memory_order_relaxed);
                });
                a.join();
                b.join();
              }});
              out.push_back(first.load(std::memory_order_relaxed));
              return absl::OkStatus();
            });
    return out;
  };
  const std::vector<int> reference = winners();
  for (int round = 0; round < 15; ++round) ASSERT_EQ(winners(), reference) << "round " << round;
}

TEST(ExploreTest, AMutexAnUnmanagedThreadHoldsIsTakenOnceItLetsGo) {
  // The unmanaged holder's unlock wakes nobody in the scheduler: the managed thread must
  // try again instead of being reported as a deadlock.
  const ExploreResult r = explore(ExploreOptions{.executions = 3}, [](Execution& ex) {
    Mutex mu;
    std::atomic<bool> held{false};
    int value = 0;
    std::thread holder([&] {
      MutexLock l(mu);
      held.store(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      value = 1;
    });
    while (!held.load()) std::this_thread::yield();
    ex.run({[&] {
      MutexLock l(mu);
      value += 1;
    }});
    holder.join();
    return value == 2 ? absl::OkStatus()
                      : absl::InternalError("the update under the lock was lost");
  });
  EXPECT_FALSE(r.failed) << r.report();
}

// Two threads record an increment each in a history and lose one of them: the
// exploration fails, and the trace of the failing schedule shows both operations.
absl::Status lost_update_in_a_history(Execution& ex) {
  lin::History<int, int> history;
  Atomic<int> counter{0};
  const auto add = [&](int thread) {
    history.record(thread, 1, [&] {
      const int seen = counter.load(std::memory_order_relaxed);
      counter.store(seen + 1, std::memory_order_relaxed);
      return seen;
    });
  };
  ex.run({[&] { add(0); }, [&] { add(1); }});
  return counter.load(std::memory_order_relaxed) == 2 ? absl::OkStatus()
                                                      : absl::InternalError("lost update");
}

TEST(ExploreTest, AFailureWritesTheTraceOfItsScheduleNextToTheReplayLine) {
  const std::string dir = ::testing::TempDir() + "/itn_failure_trace";
  std::filesystem::create_directories(dir);
  ASSERT_EQ(setenv("ITN_TRACE_DIR", dir.c_str(), 1), 0);
  const ExploreResult r = explore(ExploreOptions{.executions = 200}, lost_update_in_a_history);
  unsetenv("ITN_TRACE_DIR");
  ASSERT_TRUE(r.failed);
  ASSERT_EQ(r.trace.rfind(dir + "/itn-sched-", 0), 0u) << r.trace;
  EXPECT_NE(r.report().find("'\ntrace: " + r.trace + "\n"), std::string::npos) << r.report();
  const std::optional<std::string> text = itn::testing::read_file(r.trace);
  ASSERT_TRUE(text.has_value()) << r.trace;
  const std::optional<itn::testing::Json> json = itn::testing::JsonParser::parse(*text);
  ASSERT_TRUE(json.has_value()) << "not JSON: " << *text;
  // Both increments, as async spans of category "lin", each begun and ended, and both
  // begun before either ended (the lost update needs them to overlap).
  std::string phases;
  std::vector<std::string> ids;
  for (const itn::testing::Json& e : json->get("traceEvents")->items) {
    if (e.str("cat") != "lin") continue;
    EXPECT_EQ(e.str("name"), "operation");
    phases += e.str("ph");
    if (e.str("ph") == "b") ids.push_back(e.get("args")->get("id")->text);
  }
  EXPECT_EQ(phases, "bbee") << *text;
  EXPECT_EQ(ids, (std::vector<std::string>{"0", "1"})) << *text;
  std::filesystem::remove_all(dir);
}

TEST(ExploreTest, NoTraceIsWrittenWhenAskedNotToOrWhileAnotherRecordingRuns) {
  const ExploreResult off =
      explore(ExploreOptions{.executions = 200, .trace_failures = false}, lost_update_in_a_history);
  ASSERT_TRUE(off.failed);
  EXPECT_EQ(off.trace, "");
  EXPECT_EQ(off.report().find("trace:"), std::string::npos);
  trace::Recorder outer;
  ASSERT_TRUE(outer.start().ok());
  const ExploreResult busy = explore(ExploreOptions{.executions = 200}, lost_update_in_a_history);
  outer.stop();
  ASSERT_TRUE(busy.failed);
  EXPECT_EQ(busy.trace.rfind("(not written: ", 0), 0u) << busy.trace;
}

TEST(ExploreDeathTest, ADeadlockUnderASmallStepBoundIsStillADeadlock) {
  // The retries of the two blocked threads add decisions; reaching the bound among them
  // must not set the threads free (they would spin on their locks forever).
  EXPECT_DEATH(
      {
        ExploreOptions o;
        o.executions = 500;
        o.max_steps = 1000;
        explore(o, lock_order_inversion);
      },
      "DEADLOCK");
}

TEST(ExploreTest, RunCalledFromABodyFailsTheExecutionAndReturns) {
  const ExploreResult r = explore(ExploreOptions{.executions = 2}, [](Execution& ex) {
    ex.run({[&] { ex.run({[] {}}); }});
    return absl::OkStatus();
  });
  EXPECT_TRUE(r.failed);
  EXPECT_NE(r.failure.find("from one of the execution's own threads"), std::string::npos)
      << r.failure;
}

TEST(ExploreTest, TheSchedulerOutlivesEveryThreadStartedUnderIt) {
  // The child still calls into the scheduler when it ends (it holds a pointer to it): the
  // destructor must wait for that, not only for the child to leave the schedule.
  std::unique_ptr<Thread> child;
  std::atomic<bool> child_done{false};
  {
    RandomStrategy strategy(1);
    Scheduler scheduler(strategy, 1000);
    ASSERT_TRUE(scheduler
                    .run({[&] {
                      child = std::make_unique<Thread>([&] {
                        std::this_thread::sleep_for(std::chrono::milliseconds(20));
                        child_done.store(true);
                      });
                    }})
                    .ok());
  }
  EXPECT_TRUE(child_done.load()) << "the scheduler was destroyed under a running child";
  child->join();
}

TEST(ExploreTest, APollerDoesNotHideAThreadBlockedOnAnUnmanagedHolder) {
  // Body 1 polls for what body 0 does once it has the mutex an unmanaged thread holds:
  // only the poller can run, and body 0 must be let to try again, not a livelock.
  ExploreOptions o;
  o.executions = 2;
  o.max_steps = 20000;
  const ExploreResult r = explore(o, [](Execution& ex) {
    Mutex mu;
    Atomic<bool> flag{false};
    std::atomic<bool> held{false};
    std::thread holder([&] {
      MutexLock l(mu);
      held.store(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    });
    while (!held.load()) std::this_thread::yield();
    ex.run({[&] {
              MutexLock l(mu);
              flag.store(true, std::memory_order_release);
            },
            [&] {
              Backoff backoff;
              while (!flag.load(std::memory_order_acquire)) backoff.pause(&flag);
            }});
    holder.join();
    return absl::OkStatus();
  });
  EXPECT_FALSE(r.failed) << r.report();
}

TEST(ExploreTest, AThreadStartedAsTheLastActionDoesNotMakeASeedDependOnTiming) {
  // Whether the child registers (and PCT draws its priority) before the body's end is
  // handled must not depend on how soon the child's OS thread gets going.
  const auto outcomes = [](bool body_lingers) {
    std::vector<int> out;
    explore(ExploreOptions{.seed = 7, .executions = 40}, [&](Execution& ex) {
      Atomic<int> x{0};
      std::unique_ptr<Thread> child;
      ex.run({[&] {
                x.store(1, std::memory_order_relaxed);
                child = std::make_unique<Thread>([] {});
                if (body_lingers) std::this_thread::sleep_for(std::chrono::milliseconds(2));
              },
              [&] { x.store(2, std::memory_order_relaxed); }});
      child->join();
      out.push_back(x.load(std::memory_order_relaxed));
      return absl::OkStatus();
    });
    return out;
  };
  EXPECT_EQ(outcomes(false), outcomes(true));
}

TEST(ExploreDeathTest, AFailureIsReportedBeforeItsTraceIsRecorded) {
  // A scenario that records on its own cannot be replayed under explore()'s recorder
  // (it dies installing its own): its failure and replay line must be out already.
  EXPECT_DEATH(explore(ExploreOptions{.executions = 200},
                       [](Execution& ex) {
                         trace::Recorder own;
                         trace::ScopedRecording recording(own);
                         return lost_update_in_a_history(ex);
                       }),
               "FAILED in execution [0-9]+: lost update\nreplay: ITN_SCHEDULE='v1:");
}

TEST(ExploreTest, ExhaustiveSearchOfAProgramThatChangesBetweenExecutionsStopsAndSaysSo) {
  // Thread 0 does work in the first execution only: replaying the first execution's
  // prefix later would pick it after it finished.
  int round = 0;
  const ExploreResult r = explore(
      ExploreOptions{.strategy = StrategyKind::kExhaustive, .executions = 50}, [&](Execution& ex) {
        Atomic<int> x{0};
        const bool first = round++ == 0;
        ex.run({[&] {
                  if (!first) return;
                  for (int i = 0; i < 4; ++i) x.store(i, std::memory_order_relaxed);
                },
                [&] { x.store(9, std::memory_order_relaxed); }});
        return absl::OkStatus();
      });
  EXPECT_TRUE(r.failed);
  EXPECT_NE(r.failure.find("depends on more than the schedule"), std::string::npos) << r.failure;
}

}  // namespace
}  // namespace itn::sched
