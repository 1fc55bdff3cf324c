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
#include <mutex>
#include <thread>
#include <vector>

namespace cnnrt {

// A borrowed callable void(int): run() calls it where it lies. A std::function would copy a lambda
// that captures more than two references to the heap, once per run: dozens of allocations a step.
class TaskRef {
 public:
  template <typename Fn>
  TaskRef(const Fn& fn)  // NOLINT(google-explicit-constructor): lambdas convert as they did
      : object_(&fn),
        call_([](const void* object, int task) { (*static_cast<const Fn*>(object))(task); }) {}
  void operator()(int task) const { call_(object_, task); }

 private:
  const void* object_;
  void (*call_)(const void*, int);
};

class WorkerPool {
 public:
  explicit WorkerPool(int threads);  // threads - 1 workers; the caller is the last thread
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // tasks <= threads(); more would be run by the caller one after another.
  // fn must outlive the call (a lambda written in the call does).
  void run(int tasks, TaskRef fn);

 private:
  void work(int index);
  void record_error() noexcept;

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  // Written under mutex_ before generation_ moves on; read by a worker after it sees the move.
  const TaskRef* job_ = nullptr;
  int tasks_ = 0;                // of the run in progress; 0 between runs
  std::atomic<int> pending_{0};  // workers of the run in progress that have not finished
  std::atomic<std::uint64_t> generation_{0};  // one more per run; changed under mutex_
  std::atomic<bool> stop_{false};             // changed under mutex_
  std::exception_ptr error_;
};

}  // namespace cnnrt
