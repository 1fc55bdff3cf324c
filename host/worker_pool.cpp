#include "host/worker_pool.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace cnnrt {

namespace {

// How long a thread spins for the next run (a worker) or for the workers (the caller) before it
// sleeps: longer than the gaps between a step's parallel runs, short against an idle pool.
constexpr std::chrono::microseconds kSpin{50};

// Waits until ready() or kSpin has passed, yielding the core between tests (to another process's
// thread, when the cores are shared); returns ready().
template <typename Ready>
bool spin_until(Ready&& ready) {
  const auto give_up = std::chrono::steady_clock::now() + kSpin;
  while (!ready()) {
    if (std::chrono::steady_clock::now() >= give_up) return ready();
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

WorkerPool::WorkerPool(int threads) {
  for (int index = 1; index < threads; ++index)
    workers_.emplace_back([this, index] { work(index); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void WorkerPool::record_error() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!error_) error_ = std::current_exception();
}

void WorkerPool::work(int index) {
  std::uint64_t seen = 0;
  auto woken = [&] { return stop_.load() || generation_.load() != seen; };
  for (;;) {
    if (!spin_until(woken)) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, woken);
    }
    if (stop_) return;
    const TaskRef* job = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      seen = generation_;
      if (index < tasks_) job = job_;  // else not needed in this run (or woke after it ended)
    }
    if (job == nullptr) continue;
    try {
      (*job)(index);
    } catch (...) {
      record_error();
    }
    if (pending_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);  // the caller may be between its test and wait
      done_.notify_one();
    }
  }
}

void WorkerPool::run(int tasks, TaskRef fn) {
  const int parallel = std::min(tasks, threads());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    tasks_ = parallel;
    pending_ = parallel - 1;
    error_ = nullptr;
    ++generation_;
  }
  if (parallel > 1) wake_.notify_all();
  try {
    fn(0);
    for (int task = parallel; task < tasks; ++task) fn(task);
  } catch (...) {
    record_error();
  }
  auto finished = [&] { return pending_.load() == 0; };
  if (!spin_until(finished)) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, finished);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  tasks_ = 0;
  job_ = nullptr;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace cnnrt
