#pragma once
// A fixed set of worker threads for the CPU backend, started once per backend so a training step
// starts no threads. run(tasks, fn) calls fn(0) .. fn(tasks - 1), task 0 on the calling thread,
// and returns when all are done; the first exception a task throws is rethrown by run().
//
// A training step is a few dozen runs back to back, each often shorter than the time a sleeping
// thread takes to wake. So a worker that finishes spins for a short while on the run counter
// before it sleeps, and the caller spins on the count of pending workers before it sleeps: runs
// in quick succession never sleep, and an idle pool costs nothing after the spin.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cnnrt {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);  // threads - 1 workers; the caller is the last thread
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // tasks <= threads(); more would be run by the caller one after another.
  void run(int tasks, const std::function<void(int)>& fn);

 private:
  void work(int index);
  void record_error() noexcept;

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  // Written under mutex_ before generation_ moves on; read by a worker after it sees the move.
  const std::function<void(int)>* job_ = nullptr;
  int tasks_ = 0;                // of the run in progress; 0 between runs
  std::atomic<int> pending_{0};  // workers of the run in progress that have not finished
  std::atomic<std::uint64_t> generation_{0};  // one more per run; changed under mutex_
  std::atomic<bool> stop_{false};             // changed under mutex_
  std::exception_ptr error_;
};

}  // namespace cnnrt
