// The CPU backend's worker pool: every task runs exactly once per run, on distinct threads when
// there are enough, over many runs; an exception in any task reaches the caller; a run allocates
// nothing (this binary counts operator new).
#include "host/worker_pool.hpp"

#include <atomic>
#include <cstdlib>
#include <new>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/test_util.hpp"

// Every allocation through operator new in this test binary, counted.
std::atomic<long> g_allocations{0};

void* operator new(std::size_t bytes) {
  g_allocations.fetch_add(1);
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace cnnrt {
namespace {

// A training step is dozens of runs with lambdas capturing several references (more than a
// std::function holds without the heap): none of them may allocate.
TEST(WorkerPool, ARunAllocatesNothing) {
  WorkerPool pool(3);
  std::vector<std::atomic<int>> sums(3);
  int a = 1, b = 2, c = 3, d = 4;
  pool.run(3, [&](int task) { sums[std::size_t(task)] += a + b + c + d; });  // threads settle
  const long before = g_allocations.load();
  for (int run = 0; run < 100; ++run)
    pool.run(3, [&](int task) { sums[std::size_t(task)] += a + b + c + d; });
  EXPECT_EQ(g_allocations.load() - before, 0);
  for (const std::atomic<int>& sum : sums) EXPECT_EQ(sum.load(), 101 * 10);
}

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
