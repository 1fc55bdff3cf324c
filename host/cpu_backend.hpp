#pragma once
// The CPU backend: the reference kernels of kernels/cpu, with the batch split across threads.
// Weight gradients are summed from per-thread partials in thread order, so results do not depend
// on timing (but do depend on the thread count).
#include <algorithm>
#include <cstddef>
#include <memory>

#include "host/backend.hpp"
#include "host/worker_pool.hpp"

namespace cnnrt {

// What a layer unit needs to run reference kernels on several threads: the batch split into
// contiguous slices, one per thread.
class CpuContext {
 public:
  explicit CpuContext(int threads) : pool_(threads) {}

  int threads() const { return pool_.threads(); }

  // Calls fn(first, count) for each slice of [0, n), slice s covering [s * per, min((s + 1) * per,
  // n)), one per thread; returns the number of slices.
  template <typename Fn>
  int for_batch_slices(int n, Fn&& fn) const {
    const int slices = slices_for(n);
    const int per = (n + slices - 1) / slices;
    const int used = (n + per - 1) / per;
    pool_.run(used, [&](int slice) {
      const int first = slice * per;
      fn(first, std::min(per, n - first));
    });
    return used;
  }
  // The slice that starts at `first` (for per-slice partial results).
  int slice_index(int n, int first) const {
    const int per = (n + slices_for(n) - 1) / slices_for(n);
    return first / per;
  }

 private:
  int slices_for(int n) const { return std::max(1, std::min(threads(), n)); }

  mutable WorkerPool pool_;
};

// Sums `slices` partial results laid out `stride` apart, in slice order: out[i] = sum_s
// partials[s * stride + i] for i < count.
template <typename T>
void sum_slice_partials(const T* partials, int slices, std::size_t stride, std::size_t count,
                        T* out) {
  for (std::size_t i = 0; i < count; ++i) {
    T sum = partials[i];
    for (int s = 1; s < slices; ++s) sum += partials[std::size_t(s) * stride + i];
    out[i] = sum;
  }
}

// threads <= 0: one per hardware thread.
template <typename T>
std::unique_ptr<Backend<T>> make_cpu_backend(int threads);

}  // namespace cnnrt
