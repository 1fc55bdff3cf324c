// The CPU backend's worker pool: every task runs exactly once per run, on distinct threads when
// there are enough, over many runs; an exception in any task reaches the caller.
#include "host/worker_pool.hpp"

#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

TEST(WorkerPool, EveryTaskRunsOncePerRunOverManyRuns) {
  WorkerPool pool(4);
  ASSERT_EQ(pool.threads(), 4);
  for (int run = 0; run < 200; ++run) {
    const int tasks = 1 + run % 6;  // fewer, as many and more tasks than threads
    std::vector<std::atomic<int>> calls(static_cast<std::size_t>(tasks));
    pool.run(tasks, [&](int task) { calls[static_cast<std::size_t>(task)].fetch_add(1); });
    for (int task = 0; task < tasks; ++task)
      ASSERT_EQ(calls[static_cast<std::size_t>(task)].load(), 1)
          << "run " << run << " task " << task;
  }
}

TEST(WorkerPool, TasksRunOnDistinctThreads) {
  WorkerPool pool(3);
  std::mutex mutex;
  std::set<std::thread::id> ids;
  std::atomic<int> arrived{0};
  pool.run(3, [&](int) {
    // Each task waits for the others, so three tasks can only finish on three threads.
    arrived.fetch_add(1);
    while (arrived.load() < 3) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(mutex);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 1u);  // task 0 runs on the caller
}

TEST(WorkerPool, AnExceptionInAWorkerReachesTheCaller) {
  WorkerPool pool(2);
  EXPECT_THROW(pool.run(2,
                        [](int task) {
                          if (task == 1) throw std::runtime_error("worker failed");
                        }),
               std::runtime_error);
  // The pool stays usable after a failed run.
  std::atomic<int> calls{0};
  pool.run(2, [&](int) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 2);
}

}  // namespace
}  // namespace cnnrt
