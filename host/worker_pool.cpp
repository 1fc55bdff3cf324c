#include "host/worker_pool.hpp"

#include <algorithm>
#include <utility>

namespace cnnrt {

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
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    if (index >= tasks_) continue;  // not needed in this run (or woke after it ended)
    const std::function<void(int)>& job = *job_;
    lock.unlock();
    try {
      job(index);
    } catch (...) {
      record_error();
    }
    lock.lock();
    if (--pending_ == 0) done_.notify_one();
  }
}

void WorkerPool::run(int tasks, const std::function<void(int)>& fn) {
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
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  tasks_ = 0;
  job_ = nullptr;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace cnnrt
