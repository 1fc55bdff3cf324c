#pragma once
// The CPU backend: the kernels of kernels/cpu, with the batch split across threads. Two paths:
// the reference (the plain-loop twins, float and double, the oracle of the tests) and the fast
// one (float only: the *_fast kernels over oneDNN's sgemm, where a unit has them; a unit without them
// runs its reference kernels on either). Weight gradients are summed from per-thread partials in
// thread order, so results do not depend on timing (but do depend on the thread count).
#include <algorithm>
#include <cstddef>
#include <memory>

#include "host/backend.hpp"
#include "host/worker_pool.hpp"

namespace cnnrt {

// What a layer unit needs to run its CPU kernels on several threads: the batch split into
// contiguous slices, one per thread, and which path to take.
class CpuContext {
 public:
  // fast: float layers may run their fast kernels (make_cpu_backend).
  CpuContext(int threads, bool fast);

  int threads() const { return pool_.threads(); }
  // Float passes run the fast kernels where a unit has them; double passes never do.
  bool fast() const { return fast_; }

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
  // Calls fn(begin, end) for contiguous ranges covering [0, count), one per thread, each at least
  // `min_per_range` long (short arrays are not worth waking the threads for).
  template <typename Fn>
  void for_ranges(std::size_t count, std::size_t min_per_range, Fn&& fn) const {
    const std::size_t wanted =
        (count + min_per_range - 1) / std::max<std::size_t>(1, min_per_range);
    const int parts = int(std::max<std::size_t>(1, std::min<std::size_t>(threads(), wanted)));
    const std::size_t per = (count + parts - 1) / parts;
    pool_.run(parts, [&](int part) {
      const std::size_t begin = std::min(count, std::size_t(part) * per);
      fn(begin, std::min(count, begin + per));
    });
  }
  // The slice that starts at `first` (for per-slice partial results).
  int slice_index(int n, int first) const {
    const int per = (n + slices_for(n) - 1) / slices_for(n);
    return first / per;
  }

 private:
  int slices_for(int n) const { return std::max(1, std::min(threads(), n)); }

  mutable WorkerPool pool_;
  bool fast_ = false;
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

// threads <= 0: one per hardware thread. fast: the fast path (float layers), else the reference.
template <typename T>
std::unique_ptr<Backend<T>> make_cpu_backend(int threads, bool fast);

}  // namespace cnnrt
